local ____exports = {}
local ____libcrypto = require("resty.mtls_pool.include.libcrypto")
local unavailable = ____libcrypto.unavailable
local ____ffi = require("resty.mtls_pool.identity.ffi")
local check_possession = ____ffi.check_possession
--- Identity provider of last resort: a token per (certificate object, key object) pair, never
-- reused during the worker's life. Secure without any digest, but only requests that pass the
-- very same cdata objects share pooled connections. identity.ts keeps the token per pair.
local last_token = 0
local function load()
    return nil
end
local function identity(cert, key)
    if unavailable() == nil then
        local err = check_possession(cert, key)
        if err ~= nil then
            return nil, err
        end
    end
    last_token = last_token + 1
    return "obj:" .. tostring(last_token), nil
end
____exports.load = load
____exports.identity = identity
return ____exports
