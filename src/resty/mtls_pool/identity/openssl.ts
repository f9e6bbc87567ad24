/**
 * Identity provider over lua-resty-openssl (optional dependency, required lazily):
 * SHA-256 of the leaf certificate's DER, after x509:check_private_key.
 * Uses chain:count() and chain:index(), not `#chain`, which needs LUAJIT_ENABLE_LUA52COMPAT.
 */
import * as ffi from "ffi";
import { hex32 } from "../crypto";
import { EMPTY_CHAIN, KEY_MISMATCH } from "./messages";

const cast = ffi.cast;
const gc = ffi.gc;
const match = string.match;

let chain_lib: OpensslX509ChainModule | undefined;
let pkey_lib: OpensslPkeyModule | undefined;

/** The first line of a require() error, without its trailing colon. */
function first_line(message: unknown): string {
  const [line] = match(tostring(message), "^([^\n]-):?\n");
  return line ?? tostring(message);
}

/** Requires lua-resty-openssl; returns why it cannot be used, or nil. */
function load(): string | undefined {
  if (chain_lib !== undefined) {
    return undefined;
  }
  const [chain_ok, chain] = pcall(require, "resty.openssl.x509.chain");
  if (!chain_ok) {
    return "lua-resty-openssl not found: " + first_line(chain);
  }
  const [pkey_ok, pkey] = pcall(require, "resty.openssl.pkey");
  if (!pkey_ok) {
    return "lua-resty-openssl not found: " + first_line(pkey);
  }
  chain_lib = chain as OpensslX509ChainModule;
  pkey_lib = pkey as OpensslPkeyModule;
  return undefined;
}

function identity(cert: CertChain, key: PrivateKey): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const [chain, chain_err] = (chain_lib as OpensslX509ChainModule).dup(cast("OPENSSL_STACK*", cert));
  if (chain === undefined) {
    return $multi(undefined, "bad ssl_client_cert: " + tostring(chain_err));
  }
  if (chain.count() < 1) {
    return $multi(undefined, EMPTY_CHAIN);
  }
  const leaf = chain.index(1) as OpensslX509;
  const [pkey, pkey_err] = (pkey_lib as OpensslPkeyModule).new(cast("EVP_PKEY*", key));
  if (pkey === undefined) {
    return $multi(undefined, "bad ssl_client_priv_key: " + tostring(pkey_err));
  }
  // pkey.new() took ownership of the caller's key; give it back.
  gc(pkey.ctx, undefined);
  const [matches] = leaf.check_private_key(pkey);
  if (!matches) {
    return $multi(undefined, KEY_MISMATCH);
  }
  const [digest, digest_err] = leaf.digest("sha256");
  if (digest === undefined) {
    return $multi(undefined, "failed to digest ssl_client_cert: " + tostring(digest_err));
  }
  return $multi("sha256:" + hex32(digest), undefined);
}

export const name = "openssl";

export { load, identity };
