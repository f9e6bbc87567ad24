/**
 * Identity provider over the libcrypto nginx already links (no extra dependency):
 * SHA-256 of the leaf certificate's DER, after X509_check_private_key.
 */
import * as ffi from "ffi";
import { hex32, unavailable } from "../crypto";
import type { Libcrypto } from "../include/libcrypto";
import { EMPTY_CHAIN, KEY_MISMATCH } from "./messages";

const C = ffi.C as Libcrypto;
const ffi_string = ffi.string;

const md_buffer = ffi.new("unsigned char[?]", 64);
const length_buffer = ffi.new("unsigned int[1]");

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

/**
 * An error when `key` is not the private key of the chain's leaf, else nil.
 * Also used by the object provider when libcrypto is there.
 */
function check_possession(cert: CertChain, key: PrivateKey): string | undefined {
  const leaf = leaf_of(cert);
  if (leaf === undefined) {
    return EMPTY_CHAIN;
  }
  if (C.X509_check_private_key(leaf, key) !== 1) {
    // Leave no error behind for the next TLS operation of this worker to trip over.
    C.ERR_clear_error();
    return KEY_MISMATCH;
  }
  return undefined;
}

function identity(cert: CertChain, key: PrivateKey): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const err = check_possession(cert, key);
  if (err !== undefined) {
    return $multi(undefined, err);
  }
  const leaf = leaf_of(cert) as CData;
  if (C.X509_digest(leaf, C.EVP_sha256(), md_buffer, length_buffer) !== 1) {
    C.ERR_clear_error();
    return $multi(undefined, "X509_digest() failed");
  }
  return $multi("sha256:" + hex32(ffi_string(md_buffer, 32)), undefined);
}

export const name = "ffi";

export { load, check_possession, identity };
