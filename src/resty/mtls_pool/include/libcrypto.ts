/**
 * The libcrypto functions we call through ffi.C (the libcrypto nginx is linked with): one entry
 * each, its C declaration (in the TypeScript source, also the signature callers are checked
 * against). Declarations only: resty.mtls_pool.crypto cdefs them and checks the process has
 * every one, so a function is called only if it is in this list, and the list is what gets checked.
 * OpenSSL 1.1.1 and 3.x export all of these (EVP_DigestSign and EVP_DigestVerify since 1.1.1).
 *
 * Pointers are `void *` on purpose: the cdata ngx.ssl hands us are `void *`. The functions are
 * declared under names of our own (see crypto.ts), so lua-resty-openssl and lua-resty-string keep
 * their typed declarations of the same functions, whichever library declares first.
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
    (data: string, count: number, md: CData, size: CData | undefined, type: CData, impl: undefined) => number
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

/** ffi.C as seen by our callers: exactly the functions of DECLARATIONS, with their signatures. */
export type Libcrypto = {
  [Name in keyof typeof DECLARATIONS]: (typeof DECLARATIONS)[Name] extends Declaration<infer Signature>
    ? Signature
    : never;
};
