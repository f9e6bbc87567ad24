--- The libcrypto functions we call through ffi.C (the libcrypto nginx is linked with): one entry
-- each, its C declaration (in the TypeScript source, also the signature callers are checked
-- against). Declarations only: resty.mtls_pool.crypto cdefs them and checks the process has
-- every one, so a function is called only if it is in this list, and the list is what gets checked.
-- OpenSSL 1.1.1 and 3.x export all of these (EVP_DigestSign and EVP_DigestVerify since 1.1.1).
--
-- Pointers are `void *` on purpose: the cdata ngx.ssl hands us are `void *`. The functions are
-- declared under names of our own (see resty.mtls_pool.crypto), so lua-resty-openssl and
-- lua-resty-string keep their typed declarations of the same functions, whichever library
-- declares first.
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
    X509_get0_pubkey = "void *X509_get0_pubkey(const void *x509);",
    EVP_MD_CTX_new = "void *EVP_MD_CTX_new(void);",
    EVP_MD_CTX_free = "void EVP_MD_CTX_free(void *ctx);",
    EVP_DigestSignInit = "int EVP_DigestSignInit(void *ctx, void *pctx, const void *type, void *engine, "
        .. "void *pkey);",
    EVP_DigestSign = "int EVP_DigestSign(void *ctx, unsigned char *sig, size_t *siglen, const void *tbs, "
        .. "size_t tbslen);",
    EVP_DigestVerifyInit = "int EVP_DigestVerifyInit(void *ctx, void *pctx, const void *type, void *engine, "
        .. "void *pkey);",
    EVP_DigestVerify = "int EVP_DigestVerify(void *ctx, const unsigned char *sig, size_t siglen, const void *tbs, "
        .. "size_t tbslen);",
    ERR_clear_error = "void ERR_clear_error(void);",
    RAND_bytes = "int RAND_bytes(unsigned char *buf, int num);"
}

--- Functions OpenSSL 3.0 added, for reading a private key's secret (resty.mtls_pool.identity.proofs).
-- Optional: without them (OpenSSL 1.1.1) nothing else changes, and every new key object is proven
-- by a signature.
_M.SECRET_DECLARATIONS = {
    EVP_PKEY_get_base_id = "int EVP_PKEY_get_base_id(const void *pkey);",
    EVP_PKEY_get_bn_param = "int EVP_PKEY_get_bn_param(const void *pkey, const char *name, void **bn);",
    EVP_PKEY_get_raw_private_key = "int EVP_PKEY_get_raw_private_key(const void *pkey, unsigned char *priv, "
        .. "size_t *len);",
    BN_num_bits = "int BN_num_bits(const void *bn);",
    BN_bn2bin = "int BN_bn2bin(const void *bn, unsigned char *to);",
    BN_clear_free = "void BN_clear_free(void *bn);"
}

return _M
