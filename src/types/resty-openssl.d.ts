/**
 * The parts of lua-resty-openssl (optional dependency, loaded lazily with pcall(require, ...))
 * that the openssl identity provider calls. Reference: lua-resty-openssl README, x509 and pkey.
 */

declare interface OpensslPkey {
  readonly ctx: CData;
  /** Signs `data` (digested with `md`; nil: the key's own, as Ed25519 requires). */
  sign(this: OpensslPkey, data: string, md: string | undefined): LuaMultiReturn<[string | undefined, string | undefined]>;
  verify(this: OpensslPkey, signature: string, data: string, md: string | undefined): LuaMultiReturn<[boolean | undefined, string | undefined]>;
}

declare interface OpensslX509 {
  readonly ctx: CData;
  /** A copy of the certificate's public key. */
  get_pubkey(this: OpensslX509): OpensslPkey | undefined;
  /** Binary digest of the DER encoding. */
  digest(this: OpensslX509, algorithm: string): LuaMultiReturn<[string | undefined, string | undefined]>;
}

/** @noSelf */
declare interface OpensslX509Module {
  /** Takes ownership of an X509* cdata (attaches X509_free with ffi.gc). */
  "new"(ctx: CData): LuaMultiReturn<[OpensslX509 | undefined, string | undefined]>;
}

/** @noSelf */
declare interface OpensslPkeyModule {
  /** Takes ownership of an EVP_PKEY* cdata (attaches EVP_PKEY_free with ffi.gc). */
  "new"(ctx: CData): LuaMultiReturn<[OpensslPkey | undefined, string | undefined]>;
}

/** @noSelf ffi.C with the functions lua-resty-openssl declares (its include/ modules). */
declare interface OpensslC {
  OPENSSL_sk_num(stack: CData): number;
  OPENSSL_sk_value(stack: CData, index: number): CData;
  X509_up_ref(x509: CData): number;
  ERR_clear_error(): void;
}
