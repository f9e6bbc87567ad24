--- Identity provider over lua-resty-openssl (optional dependency, required lazily): SHA-256 of
-- the leaf certificate's DER, after proving the caller holds the private key (the key signs,
-- the certificate's public key verifies; once per pair and worker where the key's secret can be
-- read: resty.mtls_pool.identity.proofs). lua-resty-openssl picks the OpenSSL API of the
-- running version (EVP_MD_fetch or EVP_get_digestbyname, key types).
-- Reads the chain with OPENSSL_sk_num/value, not `#chain` (which needs LUAJIT_ENABLE_LUA52COMPAT)
-- nor chain:index() (which copies the certificate with X509_dup: ~120 µs).
local _M = {}
local ffi = require("ffi")
local crypto = require("resty.mtls_pool.crypto")
local hex32 = crypto.hex32
local messages = require("resty.mtls_pool.identity.messages")
local CHALLENGE = messages.CHALLENGE
local EMPTY_CHAIN = messages.EMPTY_CHAIN
local KEY_MISMATCH = messages.KEY_MISMATCH
local proofs = require("resty.mtls_pool.identity.proofs")
local prove = proofs.prove

local cast = ffi.cast
local gc = ffi.gc
local match = string.match
local x509_lib
local pkey_lib

-- ffi.C with the declarations lua-resty-openssl makes (typed pointers)
local C

--- The first line of a require() error, without its trailing colon.
local function first_line(message)
    local line = match(tostring(message), "^([^\n]-):?\n")
    return line or tostring(message)
end

--- Requires lua-resty-openssl; returns why it cannot be used, or nil.
local function load()
    if x509_lib ~= nil then
        return nil
    end
    local x509_ok, x509 = pcall(require, "resty.openssl.x509")
    if not x509_ok then
        return "lua-resty-openssl not found: " .. first_line(x509)
    end
    local pkey_ok, pkey = pcall(require, "resty.openssl.pkey")
    if not pkey_ok then
        return "lua-resty-openssl not found: " .. first_line(pkey)
    end
    x509_lib = x509
    pkey_lib = pkey
    C = ffi.C
    return nil
end

--- Whether `key` signs CHALLENGE with `md` (nil: the key's own) so that `public_key` verifies it.
local function signs_for(key, public_key, md)
    local signature = key:sign(CHALLENGE, md)
    if signature == nil then
        return false
    end
    local verified = public_key:verify(signature, CHALLENGE, md)
    return verified == true
end

--- KEY_MISMATCH unless `key` signs so that the leaf's public key verifies, else nil.
local function check_possession(leaf, key)
    local pkey, pkey_err = pkey_lib.new(cast("EVP_PKEY*", key))
    if pkey == nil then
        return "bad ssl_client_priv_key: " .. tostring(pkey_err)
    end
    -- pkey.new() took ownership of the caller's key; give it back.
    gc(pkey.ctx, nil)
    local public_key = leaf:get_pubkey()
    -- SHA-256 for RSA and EC keys; keys that take no digest (Ed25519, Ed448) refuse it.
    if public_key == nil
        or not (signs_for(pkey, public_key, "sha256") or signs_for(pkey, public_key, nil)) then
        C.ERR_clear_error()
        return KEY_MISMATCH
    end
    return nil
end

local function identity(cert, key)
    local libcrypto = C
    local stack = cast("OPENSSL_STACK*", cert)
    if libcrypto.OPENSSL_sk_num(stack) < 1 then
        return nil, EMPTY_CHAIN
    end
    -- The leaf, shared with the caller's chain: x509.new() frees what it wraps, so take a reference.
    local leaf_ptr = cast("X509*", libcrypto.OPENSSL_sk_value(stack, 0))
    libcrypto.X509_up_ref(leaf_ptr)
    local leaf, leaf_err = x509_lib.new(leaf_ptr)
    if leaf == nil then
        return nil, "bad ssl_client_cert: " .. tostring(leaf_err)
    end
    local digest, digest_err = leaf:digest("sha256")
    if digest == nil then
        return nil, "failed to digest ssl_client_cert: " .. tostring(digest_err)
    end
    local err = prove(digest, leaf, key, check_possession)
    if err ~= nil then
        return nil, err
    end
    return "sha256:" .. hex32(digest), nil
end

_M.name = "openssl"
_M.load = load
_M.identity = identity

return _M
