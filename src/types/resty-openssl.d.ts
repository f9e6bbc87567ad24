/**
 * The parts of lua-resty-openssl (optional dependency, loaded lazily with pcall(require, ...))
 * that the openssl identity provider calls. Reference: lua-resty-openssl README, x509 and pkey.
 */

declare interface OpensslPkey {
  readonly ctx: CData;
}

declare interface OpensslX509 {
  readonly ctx: CData;
  check_private_key(this: OpensslX509, key: OpensslPkey): LuaMultiReturn<[boolean, string | undefined]>;
  /** Binary digest of the DER encoding. */
  digest(this: OpensslX509, algorithm: string): LuaMultiReturn<[string | undefined, string | undefined]>;
}

declare interface OpensslX509Chain {
  /** Works with and without LUAJIT_ENABLE_LUA52COMPAT, unlike `#chain`. */
  count(this: OpensslX509Chain): number;
  /** 1-based; returns a copy of the element as an x509 instance. */
  index(this: OpensslX509Chain, i: number): OpensslX509 | undefined;
}

/** @noSelf */
declare interface OpensslX509ChainModule {
  dup(ctx: CData): LuaMultiReturn<[OpensslX509Chain | undefined, string | undefined]>;
}

/** @noSelf */
declare interface OpensslPkeyModule {
  /** Takes ownership of an EVP_PKEY* cdata (attaches EVP_PKEY_free with ffi.gc). */
  "new"(ctx: CData): LuaMultiReturn<[OpensslPkey | undefined, string | undefined]>;
}
