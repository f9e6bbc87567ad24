--- SHA-256, HMAC-SHA-256 and random bytes over the libcrypto nginx already links, through FFI.
-- Declares the functions listed in resty.mtls_pool.include.libcrypto and says, through
-- unavailable(), whether this process has every one of them: when it does not, sha256_hex,
-- hmac_sha256_hex and random32 return nil, err, and clear_errors does nothing.
local _M = {}
local ffi = require("ffi")
local libcrypto = require("resty.mtls_pool.include.libcrypto")
local DECLARATIONS = libcrypto.DECLARATIONS

local C = ffi.C
local ffi_string = ffi.string
local byte = string.byte
local format = string.format
local rep = string.rep
local SHA256_LENGTH = 32
local HEX_FORMAT = rep("%02x", SHA256_LENGTH)

-- One cdef per function: lua-resty-openssl or lua-resty-string may have declared some of them
-- already, with typed pointers. LuaJIT refuses a redefinition, and the existing declaration
-- accepts our `void *` arguments, so a failed cdef here is expected and harmless.
for _, declaration in pairs(DECLARATIONS) do
    pcall(ffi.cdef, declaration)
end

local function lookup(name)
    return ffi.C[name]
end

-- nil: not checked yet; false: every function resolved; a string: why libcrypto is unusable.
local problem

--- Why the libcrypto functions cannot be called in this process, or nil when they can.
-- Resolves every declared function once, on first call: a missing one makes the FFI paths
-- unavailable (and `auto` choose another identity provider) instead of raising when called.
local function unavailable()
    if problem == nil then
        problem = false
        for name in pairs(DECLARATIONS) do
            local found = pcall(lookup, name)
            if not found then
                problem = "libcrypto function " .. name .. " not found in this nginx process"
                break
            end
        end
    end
    if problem == false then
        return nil
    end
    return problem
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

--- Lowercase hex SHA-256 of `data`.
local function sha256_hex(data)
    local evp_md, err = md()
    if evp_md == nil then
        return nil, err
    end
    if C.EVP_Digest(data, #data, md_buffer, nil, evp_md, nil) ~= 1 then
        C.ERR_clear_error()
        return nil, "EVP_Digest() failed"
    end
    return hex32(ffi_string(md_buffer, SHA256_LENGTH)), nil
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

_M.unavailable = unavailable
_M.hex32 = hex32
_M.sha256_hex = sha256_hex
_M.hmac_sha256_hex = hmac_sha256_hex
_M.random32 = random32
_M.clear_errors = clear_errors

return _M
