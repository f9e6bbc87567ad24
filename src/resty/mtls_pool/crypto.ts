import * as ffi from "ffi";
import { unavailable } from "./include/libcrypto";

/**
 * SHA-256, HMAC-SHA-256 and random bytes over the libcrypto nginx already links, through FFI.
 * Every function returns nil, err when libcrypto cannot be used (see include/libcrypto).
 */
const C = ffi.C;
const ffi_string = ffi.string;
const byte = string.byte;
const format = string.format;
const rep = string.rep;

const SHA256_LENGTH = 32;
const HEX_FORMAT = rep("%02x", SHA256_LENGTH);

// Output buffers shared by every call: nothing here yields, so one per worker is enough.
const md_buffer = ffi.new("unsigned char[?]", 64);
const random_buffer = ffi.new("unsigned char[?]", 32);

let sha256_md: CData | undefined;

function md(): LuaMultiReturn<[CData, undefined] | [undefined, string]> {
  if (sha256_md === undefined) {
    const problem = unavailable();
    if (problem !== undefined) {
      return $multi(undefined, problem);
    }
    sha256_md = C.EVP_sha256();
  }
  return $multi(sha256_md, undefined);
}

/** Lowercase hex of a 32-byte binary string. */
function hex32(binary: string): string {
  return format(HEX_FORMAT, ...byte(binary, 1, SHA256_LENGTH));
}

/** Lowercase hex SHA-256 of `data`. */
function sha256_hex(data: string): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const [evp_md, err] = md();
  if (evp_md === undefined) {
    return $multi(undefined, err);
  }
  if (C.EVP_Digest(data, data.length, md_buffer, undefined, evp_md, undefined) !== 1) {
    C.ERR_clear_error();
    return $multi(undefined, "EVP_Digest() failed");
  }
  return $multi(hex32(ffi_string(md_buffer, SHA256_LENGTH)), undefined);
}

/** Lowercase hex HMAC-SHA-256 of `data` under `key`. */
function hmac_sha256_hex(key: string, data: string): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const [evp_md, err] = md();
  if (evp_md === undefined) {
    return $multi(undefined, err);
  }
  if (C.HMAC(evp_md, key, key.length, data, data.length, md_buffer, undefined) === undefined) {
    C.ERR_clear_error();
    return $multi(undefined, "HMAC() failed");
  }
  return $multi(hex32(ffi_string(md_buffer, SHA256_LENGTH)), undefined);
}

/** 32 bytes from the OpenSSL CSPRNG. */
function random32(): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const problem = unavailable();
  if (problem !== undefined) {
    return $multi(undefined, problem);
  }
  if (C.RAND_bytes(random_buffer, 32) !== 1) {
    C.ERR_clear_error();
    return $multi(undefined, "RAND_bytes() failed");
  }
  return $multi(ffi_string(random_buffer, 32), undefined);
}

/**
 * Empties this thread's OpenSSL error queue, where a failed TLS operation may have left errors
 * that ngx_lua would otherwise log as "[alert] ignoring stale global SSL error" later.
 */
function clear_errors(): void {
  if (unavailable() === undefined) {
    C.ERR_clear_error();
  }
}

export { hex32, sha256_hex, hmac_sha256_hex, random32, clear_errors };
