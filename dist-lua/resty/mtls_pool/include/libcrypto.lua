--- The libcrypto functions we call through ffi.C (the libcrypto nginx is linked with): one entry
-- each, its C declaration (in the TypeScript source, also the signature callers are checked
-- against). Declarations only: resty.mtls_pool.crypto cdefs them and checks the process has
-- every one, so a function is called only if it is in this list, and the list is what gets checked.
-- OpenSSL 1.1.1 and 3.x export all of these.
--
-- Pointers are `void *` on purpose: the cdata ngx.ssl hands us are `void *`, and lua-resty-openssl
-- or lua-resty-string may have declared the same functions with typed pointers already.
local _M = {}

_M.DECLARATIONS = {
    OPENSSL_sk_num = "int OPENSSL_sk_num(const void *stack);",
    OPENSSL_sk_value = "void *OPENSSL_sk_value(const void *stack, int i);",
    EVP_sha256 = "const void *EVP_sha256(void);",
    EVP_Digest = "int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size, "
        .. "const void *type, void *impl);",
    HMAC = "unsigned char *HMAC(const void *evp_md, const void *key, int key_len, const unsigned char *d, "
        .. "size_t n, unsigned char *md, unsigned int *md_len);",
    X509_digest = "int X509_digest(const void *x509, const void *type, unsigned char *md, unsigned int *len);",
    X509_check_private_key = "int X509_check_private_key(const void *x509, const void *pkey);",
    ERR_clear_error = "void ERR_clear_error(void);",
    RAND_bytes = "int RAND_bytes(unsigned char *buf, int num);"
}

return _M
