--- resty.mtls_pool: connection-pool names that make mutual-TLS connection reuse safe.
--
--   local name, err = mtls_pool.pool_name(options, default_proxy_opts)
--   local id, err   = mtls_pool.client_identity(cert, key)
--   mtls_pool.patch(require "resty.http")
--   mtls_pool.configure{ provider = "auto" | "openssl" | "ffi" | "object" }
--   mtls_pool.provider()
local _M = {}
_M._VERSION = "0.1.0"
do
    local ____name = require("resty.mtls_pool.name")
    _M.pool_name = ____name.pool_name
end
do
    local ____identity = require("resty.mtls_pool.identity")
    _M.client_identity = ____identity.client_identity
    _M.configure = ____identity.configure
    _M.provider = ____identity.provider
end
do
    local ____patch = require("resty.mtls_pool.patch")
    _M.patch = ____patch.patch
end
return _M
