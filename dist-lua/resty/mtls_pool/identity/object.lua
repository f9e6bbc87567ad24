--- Identity provider of last resort: a token per (certificate object, key object) pair, never
-- reused during the worker's life. Secure without any digest, but only requests that pass the
-- very same cdata objects share pooled connections. resty.mtls_pool.identity keeps the token per
-- pair.
local _M = {}
local crypto = require("resty.mtls_pool.crypto")
local unavailable = crypto.unavailable
local ffi_module = require("resty.mtls_pool.identity.ffi")
local proven_digest = ffi_module.proven_digest

local last_token = 0

local function load()
    return nil
end

local function identity(cert, key)
    -- With libcrypto at hand, refuse a mismatched key now; without it the handshake refuses it.
    if unavailable() == nil then
        local _, err = proven_digest(cert, key)
        if err ~= nil then
            return nil, err
        end
    end
    last_token = last_token + 1
    return "obj:" .. tostring(last_token), nil
end

_M.name = "object"
_M.load = load
_M.identity = identity

return _M
