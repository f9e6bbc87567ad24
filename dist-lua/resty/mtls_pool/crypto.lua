--- SHA-256, HMAC-SHA-256 and random bytes over the libcrypto nginx already links, through FFI.
-- Declares the functions listed in resty.mtls_pool.include.libcrypto and says, through
-- unavailable(), whether this process has every one of them: when it does not, sha256,
-- sha256_hex, hmac_sha256_hex and random32 return nil, err, and clear_errors does nothing.
-- secrets_unavailable() says the same of the optional OpenSSL 3.0 functions that
-- resty.mtls_pool.identity.proofs calls.
local _M = {}
local ffi = require("ffi")
local libcrypto_module = require("resty.mtls_pool.include.libcrypto")
local DECLARATIONS = libcrypto_module.DECLARATIONS
local SECRET_DECLARATIONS = libcrypto_module.SECRET_DECLARATIONS

local ffi_string = ffi.string
local byte = string.byte
local gsub = string.gsub
local sub = string.sub
local format = string.format
local rep = string.rep
local SHA256_LENGTH = 32
local HEX_FORMAT = rep("%02x", SHA256_LENGTH)

-- Each function is declared as mtls_pool_<name> with asm("<name>"): libcrypto's symbol under a
-- Lua name of ours. The first declaration of a name is the one LuaJIT keeps, so declaring the
-- real names would impose our `void *` signatures on lua-resty-openssl (its EVP_MD_CTX_new would
-- return `void *`, which its own type checks refuse), or theirs on us. A module loaded twice
-- declares again: that cdef fails, harmlessly.
local PREFIX = "mtls_pool_"

local function declare(list)
    for name, declaration in pairs(list) do
        local own = gsub(declaration, name .. "%(", PREFIX .. name .. "(", 1)
        pcall(ffi.cdef, sub(own, 1, -2) .. ' asm("' .. name .. '");')
    end
end

declare(DECLARATIONS)
declare(SECRET_DECLARATIONS)
local resolved = {}

--- The functions of DECLARATIONS by their C names, once unavailable() has resolved them all.
local C = resolved

--- The functions of SECRET_DECLARATIONS, once secrets_unavailable() has resolved them all.
local S = resolved

local function lookup(name)
    return ffi.C[PREFIX .. name]
end

--- Resolves every function of `list` into `resolved`: false, or why one is missing.
local function resolve(list)
    for name in pairs(list) do
        local found, fn = pcall(lookup, name)
        if not found then
            return "libcrypto function " .. name .. " not found in this nginx process"
        end
        resolved[name] = fn
    end
    return false
end

-- nil: not checked yet; false: every function resolved; a string: why they are unusable.
local problem
local secrets_problem

--- Why the libcrypto functions cannot be called in this process, or nil when they can.
-- Resolves every declared function once, on first call: a missing one makes the FFI paths
-- unavailable (and `auto` choose another identity provider) instead of raising when called.
local function unavailable()
    if problem == nil then
        problem = resolve(DECLARATIONS)
    end
    if problem == false then
        return nil
    end
    return problem
end

--- As unavailable(), for the OpenSSL 3.0 functions of SECRET_DECLARATIONS (and the others).
local function secrets_unavailable()
    if secrets_problem == nil then
        secrets_problem = unavailable() or resolve(SECRET_DECLARATIONS)
    end
    if secrets_problem == false then
        return nil
    end
    return secrets_problem
end

-- Output buffers shared by every call: nothing here yields, so one per worker is enough.
local md_buffer = ffi.new("unsigned char[?]", 64)
local random_buffer = ffi.new("unsigned char[?]", 32)
local sha256_md

local function md()
    if sha256_md == nil then
        local err = unavailable()
        if err ~= nil then
            return nil, err
        end
        sha256_md = C.EVP_sha256()
    end
    return sha256_md, nil
end

--- Lowercase hex of a 32-byte binary string.
local function hex32(binary)
    return format(HEX_FORMAT, byte(binary, 1, SHA256_LENGTH))
end

--- Binary SHA-256 of the first `length` bytes of `data` (a string or a buffer).
local function sha256(data, length)
    local evp_md, err = md()
    if evp_md == nil then
        return nil, err
    end
    if C.EVP_Digest(data, length, md_buffer, nil, evp_md, nil) ~= 1 then
        C.ERR_clear_error()
        return nil, "EVP_Digest() failed"
    end
    return ffi_string(md_buffer, SHA256_LENGTH), nil
end

--- Lowercase hex SHA-256 of `data`.
local function sha256_hex(data)
    local digest, err = sha256(data, #data)
    if digest == nil then
        return nil, err
    end
    return hex32(digest), nil
end

--- Lowercase hex HMAC-SHA-256 of `data` under `key`.
local function hmac_sha256_hex(key, data)
    local evp_md, err = md()
    if evp_md == nil then
        return nil, err
    end
    if C.HMAC(evp_md, key, #key, data, #data, md_buffer, nil) == nil then
        C.ERR_clear_error()
        return nil, "HMAC() failed"
    end
    return hex32(ffi_string(md_buffer, SHA256_LENGTH)), nil
end

--- 32 bytes from the OpenSSL CSPRNG.
local function random32()
    local err = unavailable()
    if err ~= nil then
        return nil, err
    end
    if C.RAND_bytes(random_buffer, 32) ~= 1 then
        C.ERR_clear_error()
        return nil, "RAND_bytes() failed"
    end
    return ffi_string(random_buffer, 32), nil
end

--- Empties this thread's OpenSSL error queue, where a failed TLS operation may have left errors
-- that ngx_lua would otherwise log as "[alert] ignoring stale global SSL error" later.
local function clear_errors()
    if unavailable() == nil then
        C.ERR_clear_error()
    end
end

_M.libcrypto = C
_M.libcrypto_secrets = S
_M.unavailable = unavailable
_M.secrets_unavailable = secrets_unavailable
_M.hex32 = hex32
_M.sha256 = sha256
_M.sha256_hex = sha256_hex
_M.hmac_sha256_hex = hmac_sha256_hex
_M.random32 = random32
_M.clear_errors = clear_errors

return _M
