--- Identity provider over the libcrypto nginx already links (no extra dependency):
-- SHA-256 of the leaf certificate's DER, after proving the caller holds the private key (once
-- per pair and worker where the key's secret can be read: resty.mtls_pool.identity.proofs).
local _M = {}
local ffi = require("ffi")
local crypto = require("resty.mtls_pool.crypto")
local hex32 = crypto.hex32
local C = crypto.libcrypto
local unavailable = crypto.unavailable
local messages = require("resty.mtls_pool.identity.messages")
local CHALLENGE = messages.CHALLENGE
local EMPTY_CHAIN = messages.EMPTY_CHAIN
local KEY_MISMATCH = messages.KEY_MISMATCH
local proofs = require("resty.mtls_pool.identity.proofs")
local prove = proofs.prove

local ffi_string = ffi.string
local md_buffer = ffi.new("unsigned char[?]", 64)
local length_buffer = ffi.new("unsigned int[1]")

-- Room for the signatures of common keys (RSA up to 8192 bits: 1,024 bytes); larger ones get
-- a buffer of their own. Nothing here yields, so one buffer per worker is enough.
local SIGNATURE_ROOM = 1024
local signature_buffer = ffi.new("unsigned char[?]", SIGNATURE_ROOM)
local signature_length = ffi.new("size_t[1]")

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

--- A fresh digest context, freed when collected; nil when OpenSSL cannot make one.
local function new_md_ctx()
    local ctx = C.EVP_MD_CTX_new()
    if ctx == nil then
        return nil
    end
    return ffi.gc(ctx, C.EVP_MD_CTX_free)
end

--- Whether `key` signs CHALLENGE with `md` (nil: the key's own, as Ed25519 requires) so that the
-- leaf's public key verifies it. Each step gets a fresh context: OpenSSL 1.1.1 would reuse the
-- key context of an earlier init, and verify with the very key under test.
local function signs_for(md, key, leaf)
    local sign_ctx = new_md_ctx()
    if sign_ctx == nil or C.EVP_DigestSignInit(sign_ctx, nil, md, nil, key) ~= 1 then
        return false
    end
    signature_length[0] = 0
    if C.EVP_DigestSign(sign_ctx, nil, signature_length, CHALLENGE, #CHALLENGE) ~= 1 then
        return false
    end
    -- size_t reads back as a 64-bit cdata number
    local room = tonumber(signature_length[0])
    local signature = room > SIGNATURE_ROOM and ffi.new("unsigned char[?]", room) or signature_buffer
    if C.EVP_DigestSign(sign_ctx, signature, signature_length, CHALLENGE, #CHALLENGE) ~= 1 then
        return false
    end
    local length = tonumber(signature_length[0])
    local public_key = C.X509_get0_pubkey(leaf)
    local verify_ctx = new_md_ctx()
    if public_key == nil or verify_ctx == nil
        or C.EVP_DigestVerifyInit(verify_ctx, nil, md, nil, public_key) ~= 1 then
        return false
    end
    return C.EVP_DigestVerify(verify_ctx, signature, length, CHALLENGE, #CHALLENGE) == 1
end

--- An error unless the caller proves that `key` is the private key of `leaf`, else nil.
-- X509_check_private_key alone compares public keys, and a key object can hold the victim's
-- public key next to private numbers of the attacker's (a forged PEM parses): so the key must
-- also sign, and the certificate verify.
local function check_possession(leaf, key)
    -- SHA-256 for RSA and EC keys; keys that take no digest (Ed25519, Ed448) refuse it.
    local proven = C.X509_check_private_key(leaf, key) == 1
        and (signs_for(C.EVP_sha256(), key, leaf) or signs_for(nil, key, leaf))
    -- Leave no error behind for the next TLS operation of this worker to trip over.
    C.ERR_clear_error()
    local ____proven_0
    if proven then
        ____proven_0 = nil
    else
        ____proven_0 = KEY_MISMATCH
    end
    return ____proven_0
end

--- The binary SHA-256 of the chain's leaf once the caller has proven it holds that certificate's
-- private key (or nil, err). Also used by the object provider.
local function proven_digest(cert, key)
    local leaf = leaf_of(cert)
    if leaf == nil then
        return nil, EMPTY_CHAIN
    end
    if C.X509_digest(leaf, C.EVP_sha256(), md_buffer, length_buffer) ~= 1 then
        C.ERR_clear_error()
        return nil, "X509_digest() failed"
    end
    local digest = ffi_string(md_buffer, 32)
    local err = prove(digest, leaf, key, check_possession)
    if err ~= nil then
        return nil, err
    end
    return digest, nil
end

local function identity(cert, key)
    local digest, err = proven_digest(cert, key)
    if digest == nil then
        return nil, err
    end
    return "sha256:" .. hex32(digest), nil
end

_M.name = "ffi"
_M.load = load
_M.proven_digest = proven_digest
_M.identity = identity

return _M
