/**
 * Proofs of possession already made in this worker. A signature proves that a key object holds
 * the certificate's private key, but costs 0.1-0.8 ms; callers that parse the same PEM per
 * request bring new objects of a proven pair each time. A pair is remembered by the leaf's digest
 * and a SHA-256 of the key's secret (RSA's d, the private scalar of EC, DSA and DH, the raw
 * private key of Ed25519/Ed448), which only a holder of that secret can present: a forged key
 * that carries the victim's public key has other secret numbers and is proven afresh (and fails).
 * Reading the secret needs OpenSSL 3.0; elsewhere, and for keys whose secret cannot be read
 * (hardware, providers that do not export it), every new key object is proven by a signature.
 */
import * as ffi from "ffi";
import { new_bounded, remember } from "../bounded";
import { libcrypto as C, libcrypto_secrets as S, secrets_unavailable, sha256 } from "../crypto";

const fill = ffi.fill;
const floor = math.floor;

// NIDs of the key types whose secret is not the BIGNUM "priv" parameter.
const RSA = 6;
const RSA_PSS = 912;

// Room for a secret: RSA's d up to 8192 bits. Larger keys are proven by a signature every time.
// Nothing here yields, so one buffer per worker is enough; it is wiped after each use.
const SECRET_ROOM = 1024;
const secret_buffer = ffi.new("unsigned char[?]", SECRET_ROOM);
const secret_length = ffi.new("size_t[1]") as ffi.CArray<number>;
const bignum = ffi.new("void *[1]") as ffi.CArray<CData | undefined>;

// leaf digest .. secret digest -> true. Bounded like every cache of caller input.
const MAX_PROOFS = 1024;
let proven = new_bounded<string, true>(MAX_PROOFS);

/** Copies a BIGNUM parameter of `key` into secret_buffer: its length, or nil. */
function bignum_secret(key: PrivateKey, name: string): number | undefined {
  bignum.set(0, undefined);
  if (S.EVP_PKEY_get_bn_param(key, name, bignum) !== 1) {
    return undefined;
  }
  const bn = bignum.get(0) as CData;
  let length: number | undefined = floor((S.BN_num_bits(bn) + 7) / 8);
  length = length <= SECRET_ROOM ? S.BN_bn2bin(bn, secret_buffer) : undefined;
  S.BN_clear_free(bn);
  return length;
}

/** Copies the raw private key of `key` (Ed25519, Ed448, ...) into secret_buffer: its length, or nil. */
function raw_secret(key: PrivateKey): number | undefined {
  secret_length.set(0, SECRET_ROOM);
  if (S.EVP_PKEY_get_raw_private_key(key, secret_buffer, secret_length) !== 1) {
    return undefined;
  }
  // size_t reads back as a 64-bit cdata number
  return tonumber(secret_length.get(0)) as number;
}

/**
 * The name under which a proof for (`leaf_digest`, `key`) is remembered, or nil when the key's
 * secret cannot be read here.
 */
function proof_key(leaf_digest: string, key: PrivateKey): string | undefined {
  if (secrets_unavailable() !== undefined) {
    return undefined;
  }
  const key_type = S.EVP_PKEY_get_base_id(key);
  let kind = "d";
  let length: number | undefined;
  if (key_type === RSA || key_type === RSA_PSS) {
    length = bignum_secret(key, "d");
  }
  if (length === undefined) {
    kind = "priv";
    length = bignum_secret(key, "priv");
  }
  if (length === undefined) {
    kind = "raw";
    length = raw_secret(key);
  }
  // The failed reads may have queued errors that the next TLS operation would trip over.
  C.ERR_clear_error();
  if (length === undefined) {
    return undefined;
  }
  const [digest] = sha256(secret_buffer, length);
  fill(secret_buffer, length);
  if (digest === undefined) {
    return undefined;
  }
  return leaf_digest + kind + digest;
}

/**
 * nil when `key` is proven to be the private key of `leaf` (whose SHA-256 is `leaf_digest`): by a
 * proof remembered for the same pair, else by `check` (a provider's signature check, which
 * returns an error or nil), remembered when it succeeds.
 */
function prove<Leaf>(
  leaf_digest: string,
  leaf: Leaf,
  key: PrivateKey,
  check: (this: void, leaf: Leaf, key: PrivateKey) => string | undefined,
): string | undefined {
  const proof = proof_key(leaf_digest, key);
  if (proof !== undefined && proven.entries.get(proof) === true) {
    return undefined;
  }
  const err = check(leaf, key);
  if (err === undefined && proof !== undefined) {
    remember(proven, proof, true);
  }
  return err;
}

/** Forgets every proof (configure(): identities start afresh). */
function forget_proofs(): void {
  proven = new_bounded<string, true>(MAX_PROOFS);
}

export { prove, forget_proofs };
