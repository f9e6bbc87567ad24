--- Identity provider over the libcrypto nginx already links (no extra dependency):
-- SHA-256 of the leaf certificate's DER, after X509_check_private_key.
local _M = {}
local ffi = require("ffi")
local crypto = require("resty.mtls_pool.crypto")
local hex32 = crypto.hex32
local unavailable = crypto.unavailable
local messages = require("resty.mtls_pool.identity.messages")
local EMPTY_CHAIN = messages.EMPTY_CHAIN
local KEY_MISMATCH = messages.KEY_MISMATCH

local C = ffi.C
local ffi_string = ffi.string
local md_buffer = ffi.new("unsigned char[?]", 64)
local length_buffer = ffi.new("unsigned int[1]")

--- Why this provider cannot run here, or nil.
local function load()
    return unavailable()
end

--- The leaf of a chain, or nil when the chain is empty.
local function leaf_of(cert)
    if C.OPENSSL_sk_num(cert) < 1 then
        return nil
    end
    return C.OPENSSL_sk_value(cert, 0)
end

--- An error when `key` is not the private key of the chain's leaf, else nil.
-- Also used by the object provider when libcrypto is there.
local function check_possession(cert, key)
    local leaf = leaf_of(cert)
    if leaf == nil then
        return EMPTY_CHAIN
    end
    if C.X509_check_private_key(leaf, key) ~= 1 then
        -- Leave no error behind for the next TLS operation of this worker to trip over.
        C.ERR_clear_error()
        return KEY_MISMATCH
    end
    return nil
end

local function identity(cert, key)
    local err = check_possession(cert, key)
    if err ~= nil then
        return nil, err
    end
    local leaf = leaf_of(cert)
    if C.X509_digest(leaf, C.EVP_sha256(), md_buffer, length_buffer) ~= 1 then
        C.ERR_clear_error()
        return nil, "X509_digest() failed"
    end
    return "sha256:" .. hex32(ffi_string(md_buffer, 32)), nil
end

_M.name = "ffi"
_M.load = load
_M.check_possession = check_possession
_M.identity = identity

return _M
