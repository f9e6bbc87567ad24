/**
 * Identity provider over the libcrypto nginx already links (no extra dependency):
 * SHA-256 of the leaf certificate's DER, after proving the caller holds the private key (once
 * per pair and worker where the key's secret can be read: resty.mtls_pool.identity.proofs).
 */
import * as ffi from "ffi";
import { hex32, libcrypto as C, unavailable } from "../crypto";
import { CHALLENGE, EMPTY_CHAIN, KEY_MISMATCH } from "./messages";
import { prove } from "./proofs";

const ffi_string = ffi.string;

const md_buffer = ffi.new("unsigned char[?]", 64);
const length_buffer = ffi.new("unsigned int[1]");

// Room for the signatures of common keys (RSA up to 8192 bits: 1,024 bytes); larger ones get
// a buffer of their own. Nothing here yields, so one buffer per worker is enough.
const SIGNATURE_ROOM = 1024;
const signature_buffer = ffi.new("unsigned char[?]", SIGNATURE_ROOM);
const signature_length = ffi.new("size_t[1]") as ffi.CArray<number>;

/** Why this provider cannot run here, or nil. */
function load(): string | undefined {
  return unavailable();
}

/** The leaf of a chain, or nil when the chain is empty. */
function leaf_of(cert: CertChain): CData | undefined {
  if (C.OPENSSL_sk_num(cert) < 1) {
    return undefined;
  }
  return C.OPENSSL_sk_value(cert, 0);
}

/** A fresh digest context, freed when collected; nil when OpenSSL cannot make one. */
function new_md_ctx(): CData | undefined {
  const ctx = C.EVP_MD_CTX_new();
  if (ctx === undefined) {
    return undefined;
  }
  return ffi.gc(ctx, C.EVP_MD_CTX_free);
}

/**
 * Whether `key` signs CHALLENGE with `md` (nil: the key's own, as Ed25519 requires) so that the
 * leaf's public key verifies it. Each step gets a fresh context: OpenSSL 1.1.1 would reuse the
 * key context of an earlier init, and verify with the very key under test.
 */
function signs_for(md: CData | undefined, key: PrivateKey, leaf: CData): boolean {
  const sign_ctx = new_md_ctx();
  if (sign_ctx === undefined || C.EVP_DigestSignInit(sign_ctx, undefined, md, undefined, key) !== 1) {
    return false;
  }
  signature_length.set(0, 0);
  if (C.EVP_DigestSign(sign_ctx, undefined, signature_length, CHALLENGE, CHALLENGE.length) !== 1) {
    return false;
  }
  // size_t reads back as a 64-bit cdata number
  const room = tonumber(signature_length.get(0)) as number;
  const signature = room > SIGNATURE_ROOM ? ffi.new("unsigned char[?]", room) : signature_buffer;
  if (C.EVP_DigestSign(sign_ctx, signature, signature_length, CHALLENGE, CHALLENGE.length) !== 1) {
    return false;
  }
  const length = tonumber(signature_length.get(0)) as number;
  const public_key = C.X509_get0_pubkey(leaf);
  const verify_ctx = new_md_ctx();
  if (
    public_key === undefined ||
    verify_ctx === undefined ||
    C.EVP_DigestVerifyInit(verify_ctx, undefined, md, undefined, public_key) !== 1
  ) {
    return false;
  }
  return C.EVP_DigestVerify(verify_ctx, signature, length, CHALLENGE, CHALLENGE.length) === 1;
}

/**
 * An error unless the caller proves that `key` is the private key of `leaf`, else nil.
 * X509_check_private_key alone compares public keys, and a key object can hold the victim's
 * public key next to private numbers of the attacker's (a forged PEM parses): so the key must
 * also sign, and the certificate verify.
 */
function check_possession(leaf: CData, key: PrivateKey): string | undefined {
  // SHA-256 for RSA and EC keys; keys that take no digest (Ed25519, Ed448) refuse it.
  const proven =
    C.X509_check_private_key(leaf, key) === 1 &&
    (signs_for(C.EVP_sha256(), key, leaf) || signs_for(undefined, key, leaf));
  // Leave no error behind for the next TLS operation of this worker to trip over.
  C.ERR_clear_error();
  return proven ? undefined : KEY_MISMATCH;
}

/**
 * The binary SHA-256 of the chain's leaf once the caller has proven it holds that certificate's
 * private key (or nil, err). Also used by the object provider.
 */
function proven_digest(cert: CertChain, key: PrivateKey): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const leaf = leaf_of(cert);
  if (leaf === undefined) {
    return $multi(undefined, EMPTY_CHAIN);
  }
  if (C.X509_digest(leaf, C.EVP_sha256(), md_buffer, length_buffer) !== 1) {
    C.ERR_clear_error();
    return $multi(undefined, "X509_digest() failed");
  }
  const digest = ffi_string(md_buffer, 32);
  const err = prove(digest, leaf, key, check_possession);
  if (err !== undefined) {
    return $multi(undefined, err);
  }
  return $multi(digest, undefined);
}

function identity(cert: CertChain, key: PrivateKey): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const [digest, err] = proven_digest(cert, key);
  if (digest === undefined) {
    return $multi(undefined, err);
  }
  return $multi("sha256:" + hex32(digest), undefined);
}

export const name = "ffi";

export { load, proven_digest, identity };
