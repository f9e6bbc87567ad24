--- Proofs of possession already made in this worker. A signature proves that a key object holds
-- the certificate's private key, but costs 0.1-0.8 ms; callers that parse the same PEM per
-- request bring new objects of a proven pair each time. A pair is remembered by the leaf's digest
-- and a SHA-256 of the key's secret (RSA's d, the private scalar of EC, DSA and DH, the raw
-- private key of Ed25519/Ed448), which only a holder of that secret can present: a forged key
-- that carries the victim's public key has other secret numbers and is proven afresh (and fails).
-- Reading the secret needs OpenSSL 3.0; elsewhere, and for keys whose secret cannot be read
-- (hardware, providers that do not export it), every new key object is proven by a signature.
local _M = {}
local ffi = require("ffi")
local bounded = require("resty.mtls_pool.bounded")
local new_bounded = bounded.new_bounded
local remember = bounded.remember
local crypto = require("resty.mtls_pool.crypto")
local C = crypto.libcrypto
local S = crypto.libcrypto_secrets
local secrets_unavailable = crypto.secrets_unavailable
local sha256 = crypto.sha256

local fill = ffi.fill
local floor = math.floor

-- NIDs of the key types whose secret is not the BIGNUM "priv" parameter.
local RSA = 6
local RSA_PSS = 912

-- Room for a secret: RSA's d up to 8192 bits. Larger keys are proven by a signature every time.
-- Nothing here yields, so one buffer per worker is enough; it is wiped after each use.
local SECRET_ROOM = 1024
local secret_buffer = ffi.new("unsigned char[?]", SECRET_ROOM)
local secret_length = ffi.new("size_t[1]")
local bignum = ffi.new("void *[1]")

-- leaf digest .. secret digest -> true. Bounded like every cache of caller input.
local MAX_PROOFS = 1024
local proven = new_bounded(MAX_PROOFS)

--- Copies a BIGNUM parameter of `key` into secret_buffer: its length, or nil.
local function bignum_secret(key, name)
    bignum[0] = nil
    if S.EVP_PKEY_get_bn_param(key, name, bignum) ~= 1 then
        return nil
    end
    local bn = bignum[0]
    local length = floor((S.BN_num_bits(bn) + 7) / 8)
    length = length <= SECRET_ROOM and S.BN_bn2bin(bn, secret_buffer) or nil
    S.BN_clear_free(bn)
    return length
end

--- Copies the raw private key of `key` (Ed25519, Ed448, ...) into secret_buffer: its length, or nil.
local function raw_secret(key)
    secret_length[0] = SECRET_ROOM
    if S.EVP_PKEY_get_raw_private_key(key, secret_buffer, secret_length) ~= 1 then
        return nil
    end
    -- size_t reads back as a 64-bit cdata number
    return tonumber(secret_length[0])
end

--- The name under which a proof for (`leaf_digest`, `key`) is remembered, or nil when the key's
-- secret cannot be read here.
local function proof_key(leaf_digest, key)
    if secrets_unavailable() ~= nil then
        return nil
    end
    local key_type = S.EVP_PKEY_get_base_id(key)
    local kind = "d"
    local length
    if key_type == RSA or key_type == RSA_PSS then
        length = bignum_secret(key, "d")
    end
    if length == nil then
        kind = "priv"
        length = bignum_secret(key, "priv")
    end
    if length == nil then
        kind = "raw"
        length = raw_secret(key)
    end
    -- The failed reads may have queued errors that the next TLS operation would trip over.
    C.ERR_clear_error()
    if length == nil then
        return nil
    end
    local digest = sha256(secret_buffer, length)
    fill(secret_buffer, length)
    if digest == nil then
        return nil
    end
    return leaf_digest .. kind .. digest
end

--- nil when `key` is proven to be the private key of `leaf` (whose SHA-256 is `leaf_digest`): by a
-- proof remembered for the same pair, else by `check` (a provider's signature check, which
-- returns an error or nil), remembered when it succeeds.
local function prove(leaf_digest, leaf, key, check)
    local proof = proof_key(leaf_digest, key)
    if proof ~= nil and proven.entries[proof] == true then
        return nil
    end
    local err = check(leaf, key)
    if err == nil and proof ~= nil then
        remember(proven, proof, true)
    end
    return err
end

--- Forgets every proof (configure(): identities start afresh).
local function forget_proofs()
    proven = new_bounded(MAX_PROOFS)
end

_M.prove = prove
_M.forget_proofs = forget_proofs

return _M
