/**
 * The libcrypto functions we call through ffi.C (the libcrypto nginx is linked with): one entry
 * each, its C declaration (in the TypeScript source, also the signature callers are checked
 * against). Declarations only: resty.mtls_pool.crypto cdefs them and checks the process has
 * every one, so a function is called only if it is in this list, and the list is what gets checked.
 * OpenSSL 1.1.1 and 3.x export all of these (EVP_DigestSign and EVP_DigestVerify since 1.1.1).
 *
 * Pointers are `void *` on purpose: the cdata ngx.ssl hands us are `void *`. The functions are
 * declared under names of our own (see resty.mtls_pool.crypto), so lua-resty-openssl and
 * lua-resty-string keep their typed declarations of the same functions, whichever library
 * declares first.
 */

/** A C declaration, tagged at compile time with the signature its function has in Lua. */
type Declaration<Signature> = string & { readonly __signature?: Signature };

export const DECLARATIONS = {
  OPENSSL_sk_num: "int OPENSSL_sk_num(const void *stack);" as Declaration<(stack: CData) => number>,
  OPENSSL_sk_value: "void *OPENSSL_sk_value(const void *stack, int i);" as Declaration<
    (stack: CData, index: number) => CData
  >,
  EVP_sha256: "const void *EVP_sha256(void);" as Declaration<() => CData>,
  EVP_Digest: ("int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size, " +
    "const void *type, void *impl);") as Declaration<
    (data: string | CData, count: number, md: CData, size: CData | undefined, type: CData, impl: undefined) => number
  >,
  HMAC: ("unsigned char *HMAC(const void *evp_md, const void *key, int key_len, const unsigned char *d, " +
    "size_t n, unsigned char *md, unsigned int *md_len);") as Declaration<
    (md: CData, key: string, keyLen: number, data: string, count: number, out: CData, outLen: CData | undefined) => CData
  >,
  X509_digest: "int X509_digest(const void *x509, const void *type, unsigned char *md, unsigned int *len);" as Declaration<
    (x509: CData, md: CData, out: CData, len: CData) => number
  >,
  X509_check_private_key: "int X509_check_private_key(const void *x509, const void *pkey);" as Declaration<
    (x509: CData, pkey: CData) => number
  >,
  X509_get0_pubkey: "void *X509_get0_pubkey(const void *x509);" as Declaration<(x509: CData) => CData | undefined>,
  EVP_MD_CTX_new: "void *EVP_MD_CTX_new(void);" as Declaration<() => CData | undefined>,
  EVP_MD_CTX_free: "void EVP_MD_CTX_free(void *ctx);" as Declaration<(ctx: CData) => void>,
  EVP_DigestSignInit: ("int EVP_DigestSignInit(void *ctx, void *pctx, const void *type, void *engine, " +
    "void *pkey);") as Declaration<
    (ctx: CData, pctx: undefined, md: CData | undefined, engine: undefined, pkey: CData) => number
  >,
  EVP_DigestSign: ("int EVP_DigestSign(void *ctx, unsigned char *sig, size_t *siglen, const void *tbs, " +
    "size_t tbslen);") as Declaration<
    (ctx: CData, sig: CData | undefined, siglen: CData, tbs: string, tbslen: number) => number
  >,
  EVP_DigestVerifyInit: ("int EVP_DigestVerifyInit(void *ctx, void *pctx, const void *type, void *engine, " +
    "void *pkey);") as Declaration<
    (ctx: CData, pctx: undefined, md: CData | undefined, engine: undefined, pkey: CData) => number
  >,
  EVP_DigestVerify: ("int EVP_DigestVerify(void *ctx, const unsigned char *sig, size_t siglen, const void *tbs, " +
    "size_t tbslen);") as Declaration<(ctx: CData, sig: CData, siglen: number, tbs: string, tbslen: number) => number>,
  ERR_clear_error: "void ERR_clear_error(void);" as Declaration<() => void>,
  RAND_bytes: "int RAND_bytes(unsigned char *buf, int num);" as Declaration<(buf: CData, num: number) => number>,
};

/**
 * Functions OpenSSL 3.0 added, for reading a private key's secret (resty.mtls_pool.identity.proofs).
 * Optional: without them (OpenSSL 1.1.1) nothing else changes, and every new key object is proven
 * by a signature.
 */
export const SECRET_DECLARATIONS = {
  EVP_PKEY_get_base_id: "int EVP_PKEY_get_base_id(const void *pkey);" as Declaration<(pkey: CData) => number>,
  EVP_PKEY_get_bn_param: "int EVP_PKEY_get_bn_param(const void *pkey, const char *name, void **bn);" as Declaration<
    (pkey: CData, name: string, bn: CData) => number
  >,
  EVP_PKEY_get_raw_private_key: ("int EVP_PKEY_get_raw_private_key(const void *pkey, unsigned char *priv, " +
    "size_t *len);") as Declaration<(pkey: CData, priv: CData, len: CData) => number>,
  BN_num_bits: "int BN_num_bits(const void *bn);" as Declaration<(bn: CData) => number>,
  BN_bn2bin: "int BN_bn2bin(const void *bn, unsigned char *to);" as Declaration<(bn: CData, to: CData) => number>,
  BN_clear_free: "void BN_clear_free(void *bn);" as Declaration<(bn: CData) => void>,
};

/** The Lua signatures of a list of declarations. */
type Signatures<List> = {
  [Name in keyof List]: List[Name] extends Declaration<infer Signature> ? Signature : never;
};

/** ffi.C as seen by our callers: exactly the functions of DECLARATIONS, with their signatures. */
export type Libcrypto = Signatures<typeof DECLARATIONS>;
/** The same for SECRET_DECLARATIONS, callable once crypto's secrets_unavailable() returns nil. */
export type LibcryptoSecrets = Signatures<typeof SECRET_DECLARATIONS>;
