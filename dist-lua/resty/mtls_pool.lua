local ____exports = {}
do
    local ____name = require("resty.mtls_pool.name")
    ____exports.pool_name = ____name.pool_name
end
do
    local ____identity = require("resty.mtls_pool.identity")
    ____exports.client_identity = ____identity.client_identity
    ____exports.configure = ____identity.configure
    ____exports.provider = ____identity.provider
end
do
    local ____patch = require("resty.mtls_pool.patch")
    ____exports.patch = ____patch.patch
end
____exports._VERSION = "0.1.0"
return ____exports
