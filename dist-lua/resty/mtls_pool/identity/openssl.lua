--- Identity provider over lua-resty-openssl (optional dependency, required lazily):
-- SHA-256 of the leaf certificate's DER, after x509:check_private_key.
-- Uses chain:count() and chain:index(), not `#chain`, which needs LUAJIT_ENABLE_LUA52COMPAT.
local _M = {}
local ffi = require("ffi")
local crypto = require("resty.mtls_pool.crypto")
local hex32 = crypto.hex32
local messages = require("resty.mtls_pool.identity.messages")
local EMPTY_CHAIN = messages.EMPTY_CHAIN
local KEY_MISMATCH = messages.KEY_MISMATCH

local cast = ffi.cast
local gc = ffi.gc
local match = string.match
local chain_lib
local pkey_lib

--- The first line of a require() error, without its trailing colon.
local function first_line(message)
    local line = match(tostring(message), "^([^\n]-):?\n")
    return line or tostring(message)
end

--- Requires lua-resty-openssl; returns why it cannot be used, or nil.
local function load()
    if chain_lib ~= nil then
        return nil
    end
    local chain_ok, chain = pcall(require, "resty.openssl.x509.chain")
    if not chain_ok then
        return "lua-resty-openssl not found: " .. first_line(chain)
    end
    local pkey_ok, pkey = pcall(require, "resty.openssl.pkey")
    if not pkey_ok then
        return "lua-resty-openssl not found: " .. first_line(pkey)
    end
    chain_lib = chain
    pkey_lib = pkey
    return nil
end

local function identity(cert, key)
    local chain, chain_err = chain_lib.dup(cast("OPENSSL_STACK*", cert))
    if chain == nil then
        return nil, "bad ssl_client_cert: " .. tostring(chain_err)
    end
    if chain:count() < 1 then
        return nil, EMPTY_CHAIN
    end
    local leaf = chain:index(1)
    local pkey, pkey_err = pkey_lib.new(cast("EVP_PKEY*", key))
    if pkey == nil then
        return nil, "bad ssl_client_priv_key: " .. tostring(pkey_err)
    end
    -- pkey.new() took ownership of the caller's key; give it back.
    gc(pkey.ctx, nil)
    local matches = leaf:check_private_key(pkey)
    if not matches then
        return nil, KEY_MISMATCH
    end
    local digest, digest_err = leaf:digest("sha256")
    if digest == nil then
        return nil, "failed to digest ssl_client_cert: " .. tostring(digest_err)
    end
    return "sha256:" .. hex32(digest), nil
end

_M.name = "openssl"
_M.load = load
_M.identity = identity

return _M
