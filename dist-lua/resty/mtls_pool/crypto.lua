local ____exports = {}
local ffi = require("ffi")
local ____libcrypto = require("resty.mtls_pool.include.libcrypto")
local unavailable = ____libcrypto.unavailable
--- SHA-256, HMAC-SHA-256 and random bytes over the libcrypto nginx already links, through FFI.
-- Every function returns nil, err when libcrypto cannot be used (see include/libcrypto).
local C = ffi.C
local ffi_string = ffi.string
local byte = string.byte
local format = string.format
local rep = string.rep
local SHA256_LENGTH = 32
local HEX_FORMAT = rep("%02x", SHA256_LENGTH)
local md_buffer = ffi.new("unsigned char[?]", 64)
local random_buffer = ffi.new("unsigned char[?]", 32)
local sha256_md
local function md()
    if sha256_md == nil then
        local problem = unavailable()
        if problem ~= nil then
            return nil, problem
        end
        sha256_md = C.EVP_sha256()
    end
    return sha256_md, nil
end
--- Lowercase hex of a 32-byte binary string.
local function hex32(binary)
    return format(
        HEX_FORMAT,
        byte(binary, 1, SHA256_LENGTH)
    )
end
--- Lowercase hex SHA-256 of `data`.
local function sha256_hex(data)
    local evp_md, err = md()
    if evp_md == nil then
        return nil, err
    end
    if C.EVP_Digest(
        data,
        #data,
        md_buffer,
        nil,
        evp_md,
        nil
    ) ~= 1 then
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
    if C.HMAC(
        evp_md,
        key,
        #key,
        data,
        #data,
        md_buffer,
        nil
    ) == nil then
        C.ERR_clear_error()
        return nil, "HMAC() failed"
    end
    return hex32(ffi_string(md_buffer, SHA256_LENGTH)), nil
end
--- 32 bytes from the OpenSSL CSPRNG.
local function random32()
    local problem = unavailable()
    if problem ~= nil then
        return nil, problem
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
____exports.hex32 = hex32
____exports.sha256_hex = sha256_hex
____exports.hmac_sha256_hex = hmac_sha256_hex
____exports.random32 = random32
____exports.clear_errors = clear_errors
return ____exports
