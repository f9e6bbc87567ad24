/**
 * Identity provider over lua-resty-openssl (optional dependency, required lazily): SHA-256 of
 * the leaf certificate's DER, after proving the caller holds the private key (the key signs,
 * the certificate's public key verifies; once per pair and worker where the key's secret can be
 * read: resty.mtls_pool.identity.proofs). lua-resty-openssl picks the OpenSSL API of the
 * running version (EVP_MD_fetch or EVP_get_digestbyname, key types).
 * Reads the chain with OPENSSL_sk_num/value, not `#chain` (which needs LUAJIT_ENABLE_LUA52COMPAT)
 * nor chain:index() (which copies the certificate with X509_dup: ~120 µs).
 */
import * as ffi from "ffi";
import { hex32 } from "../crypto";
import { CHALLENGE, EMPTY_CHAIN, KEY_MISMATCH } from "./messages";
import { prove } from "./proofs";

const cast = ffi.cast;
const gc = ffi.gc;
const match = string.match;

let x509_lib: OpensslX509Module | undefined;
let pkey_lib: OpensslPkeyModule | undefined;
// ffi.C with the declarations lua-resty-openssl makes (typed pointers)
let C: OpensslC | undefined;

/** The first line of a require() error, without its trailing colon. */
function first_line(message: unknown): string {
  const [line] = match(tostring(message), "^([^\n]-):?\n");
  return line ?? tostring(message);
}

/** Requires lua-resty-openssl; returns why it cannot be used, or nil. */
function load(): string | undefined {
  if (x509_lib !== undefined) {
    return undefined;
  }
  const [x509_ok, x509] = pcall(require, "resty.openssl.x509");
  if (!x509_ok) {
    return "lua-resty-openssl not found: " + first_line(x509);
  }
  const [pkey_ok, pkey] = pcall(require, "resty.openssl.pkey");
  if (!pkey_ok) {
    return "lua-resty-openssl not found: " + first_line(pkey);
  }
  x509_lib = x509 as OpensslX509Module;
  pkey_lib = pkey as OpensslPkeyModule;
  C = ffi.C as unknown as OpensslC;
  return undefined;
}

/** Whether `key` signs CHALLENGE with `md` (nil: the key's own) so that `public_key` verifies it. */
function signs_for(key: OpensslPkey, public_key: OpensslPkey, md: string | undefined): boolean {
  const [signature] = key.sign(CHALLENGE, md);
  if (signature === undefined) {
    return false;
  }
  const [verified] = public_key.verify(signature, CHALLENGE, md);
  return verified === true;
}

/** KEY_MISMATCH unless `key` signs so that the leaf's public key verifies, else nil. */
function check_possession(leaf: OpensslX509, key: PrivateKey): string | undefined {
  const [pkey, pkey_err] = (pkey_lib as OpensslPkeyModule).new(cast("EVP_PKEY*", key));
  if (pkey === undefined) {
    return "bad ssl_client_priv_key: " + tostring(pkey_err);
  }
  // pkey.new() took ownership of the caller's key; give it back.
  gc(pkey.ctx, undefined);
  const public_key = leaf.get_pubkey();
  // SHA-256 for RSA and EC keys; keys that take no digest (Ed25519, Ed448) refuse it.
  if (public_key === undefined || !(signs_for(pkey, public_key, "sha256") || signs_for(pkey, public_key, undefined))) {
    (C as OpensslC).ERR_clear_error();
    return KEY_MISMATCH;
  }
  return undefined;
}

function identity(cert: CertChain, key: PrivateKey): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const libcrypto = C as OpensslC;
  const stack = cast("OPENSSL_STACK*", cert);
  if (libcrypto.OPENSSL_sk_num(stack) < 1) {
    return $multi(undefined, EMPTY_CHAIN);
  }
  // The leaf, shared with the caller's chain: x509.new() frees what it wraps, so take a reference.
  const leaf_ptr = cast("X509*", libcrypto.OPENSSL_sk_value(stack, 0));
  libcrypto.X509_up_ref(leaf_ptr);
  const [leaf, leaf_err] = (x509_lib as OpensslX509Module).new(leaf_ptr);
  if (leaf === undefined) {
    return $multi(undefined, "bad ssl_client_cert: " + tostring(leaf_err));
  }
  const [digest, digest_err] = leaf.digest("sha256");
  if (digest === undefined) {
    return $multi(undefined, "failed to digest ssl_client_cert: " + tostring(digest_err));
  }
  const err = prove(digest, leaf, key, check_possession);
  if (err !== undefined) {
    return $multi(undefined, err);
  }
  return $multi("sha256:" + hex32(digest), undefined);
}

export const name = "openssl";

export { load, identity };
