/**
 * The libcrypto functions declared in resty/mtls_pool/include/libcrypto.ts, as seen through ffi.C.
 * Pointers are `void *` on purpose: the cdata handed to us by ngx.ssl are `void *`, and
 * lua-resty-openssl may already have declared the same functions with typed pointers.
 */
/** @noSelfInFile */

declare module "ffi" {
  /** @noSelf */
  interface Namespace {
    OPENSSL_sk_num(stack: CData): number;
    OPENSSL_sk_value(stack: CData, index: number): CData;
    EVP_sha256(): CData;
    EVP_Digest(data: string, count: number, md: CData, size: CData | undefined, type: CData, impl: undefined): number;
    HMAC(md: CData, key: string, keyLen: number, data: string, count: number, out: CData, outLen: CData | undefined): CData;
    X509_digest(x509: CData, md: CData, out: CData, len: CData): number;
    X509_check_private_key(x509: CData, pkey: CData): number;
    ERR_clear_error(): void;
    RAND_bytes(buf: CData, num: number): number;
  }
}
