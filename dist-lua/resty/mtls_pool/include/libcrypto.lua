local ____exports = {}
local ffi = require("ffi")
--- C declarations for the libcrypto functions we call through ffi.C (the libcrypto nginx is
-- linked with). Declarations only; the logic lives in crypto.ts and identity/ffi.ts.
-- OpenSSL 1.1.1 and 3.x export all of these.
local DECLARATIONS = {
    "int OPENSSL_sk_num(const void *stack);",
    "void *OPENSSL_sk_value(const void *stack, int i);",
    "const void *EVP_sha256(void);",
    "int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size, const void *type, void *impl);",
    "unsigned char *HMAC(const void *evp_md, const void *key, int key_len, const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);",
    "int X509_digest(const void *x509, const void *type, unsigned char *md, unsigned int *len);",
    "int X509_check_private_key(const void *x509, const void *pkey);",
    "void ERR_clear_error(void);",
    "int RAND_bytes(unsigned char *buf, int num);"
}
for ____, declaration in ipairs(DECLARATIONS) do
    pcall(ffi.cdef, declaration)
end
local SYMBOLS = {
    "OPENSSL_sk_num",
    "OPENSSL_sk_value",
    "EVP_sha256",
    "EVP_Digest",
    "HMAC",
    "X509_digest",
    "X509_check_private_key",
    "ERR_clear_error",
    "RAND_bytes"
}
local function lookup(name)
    return ffi.C[name]
end
local problem
--- Why the libcrypto functions cannot be called in this process, or undefined when they can.
-- Resolves the symbols once, on first call.
function ____exports.unavailable()
    if problem == nil then
        problem = false
        for ____, name in ipairs(SYMBOLS) do
            local ok = pcall(lookup, name)
            if not ok then
                problem = ("libcrypto function " .. name) .. " not found in this nginx process"
                break
            end
        end
    end
    if problem == false then
        return nil
    end
    return problem
end
return ____exports
