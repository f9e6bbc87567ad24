/**
 * SHA-256, HMAC-SHA-256 and random bytes over the libcrypto nginx already links, through FFI.
 * Declares the functions listed in resty.mtls_pool.include.libcrypto and says, through
 * unavailable(), whether this process has every one of them: when it does not, sha256,
 * sha256_hex, hmac_sha256_hex and random32 return nil, err, and clear_errors does nothing.
 * secrets_unavailable() says the same of the optional OpenSSL 3.0 functions that
 * resty.mtls_pool.identity.proofs calls.
 */
import * as ffi from "ffi";
import { DECLARATIONS, Libcrypto, LibcryptoSecrets, SECRET_DECLARATIONS } from "./include/libcrypto";

const ffi_string = ffi.string;
const byte = string.byte;
const gsub = string.gsub;
const sub = string.sub;
const format = string.format;
const rep = string.rep;

const SHA256_LENGTH = 32;
const HEX_FORMAT = rep("%02x", SHA256_LENGTH);

// Each function is declared as mtls_pool_<name> with asm("<name>"): libcrypto's symbol under a
// Lua name of ours. The first declaration of a name is the one LuaJIT keeps, so declaring the
// real names would impose our `void *` signatures on lua-resty-openssl (its EVP_MD_CTX_new would
// return `void *`, which its own type checks refuse), or theirs on us. A module loaded twice
// declares again: that cdef fails, harmlessly.
const PREFIX = "mtls_pool_";

function declare(list: Record<string, string>): void {
  for (const [name, declaration] of pairs(list)) {
    const [own] = gsub(declaration, name + "%(", PREFIX + name + "(", 1);
    pcall(ffi.cdef, sub(own, 1, -2) + ' asm("' + name + '");');
  }
}

declare(DECLARATIONS);
declare(SECRET_DECLARATIONS);

const resolved = new LuaTable<string, unknown>();
/** The functions of DECLARATIONS by their C names, once unavailable() has resolved them all. */
const C = resolved as unknown as Libcrypto;
/** The functions of SECRET_DECLARATIONS, once secrets_unavailable() has resolved them all. */
const S = resolved as unknown as LibcryptoSecrets;

function lookup(this: void, name: string): unknown {
  return (ffi.C as LuaTable<string, unknown>).get(PREFIX + name);
}

/** Resolves every function of `list` into `resolved`: false, or why one is missing. */
function resolve(list: Record<string, string>): string | false {
  for (const [name] of pairs(list)) {
    const [found, fn] = pcall(lookup, name);
    if (!found) {
      return "libcrypto function " + name + " not found in this nginx process";
    }
    resolved.set(name, fn);
  }
  return false;
}

// nil: not checked yet; false: every function resolved; a string: why they are unusable.
let problem: string | false | undefined;
let secrets_problem: string | false | undefined;

/**
 * Why the libcrypto functions cannot be called in this process, or nil when they can.
 * Resolves every declared function once, on first call: a missing one makes the FFI paths
 * unavailable (and `auto` choose another identity provider) instead of raising when called.
 */
function unavailable(): string | undefined {
  if (problem === undefined) {
    problem = resolve(DECLARATIONS);
  }
  if (problem === false) {
    return undefined;
  }
  return problem;
}

/** As unavailable(), for the OpenSSL 3.0 functions of SECRET_DECLARATIONS (and the others). */
function secrets_unavailable(): string | undefined {
  if (secrets_problem === undefined) {
    secrets_problem = unavailable() ?? resolve(SECRET_DECLARATIONS);
  }
  if (secrets_problem === false) {
    return undefined;
  }
  return secrets_problem;
}

// Output buffers shared by every call: nothing here yields, so one per worker is enough.
const md_buffer = ffi.new("unsigned char[?]", 64);
const random_buffer = ffi.new("unsigned char[?]", 32);

let sha256_md: CData | undefined;

function md(): LuaMultiReturn<[CData, undefined] | [undefined, string]> {
  if (sha256_md === undefined) {
    const err = unavailable();
    if (err !== undefined) {
      return $multi(undefined, err);
    }
    sha256_md = C.EVP_sha256();
  }
  return $multi(sha256_md, undefined);
}

/** Lowercase hex of a 32-byte binary string. */
function hex32(binary: string): string {
  return format(HEX_FORMAT, ...byte(binary, 1, SHA256_LENGTH));
}

/** Binary SHA-256 of the first `length` bytes of `data` (a string or a buffer). */
function sha256(data: string | CData, length: number): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const [evp_md, err] = md();
  if (evp_md === undefined) {
    return $multi(undefined, err);
  }
  if (C.EVP_Digest(data, length, md_buffer, undefined, evp_md, undefined) !== 1) {
    C.ERR_clear_error();
    return $multi(undefined, "EVP_Digest() failed");
  }
  return $multi(ffi_string(md_buffer, SHA256_LENGTH), undefined);
}

/** Lowercase hex SHA-256 of `data`. */
function sha256_hex(data: string): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const [digest, err] = sha256(data, data.length);
  if (digest === undefined) {
    return $multi(undefined, err);
  }
  return $multi(hex32(digest), undefined);
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
  const err = unavailable();
  if (err !== undefined) {
    return $multi(undefined, err);
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

export { C as libcrypto, S as libcrypto_secrets, unavailable, secrets_unavailable, hex32, sha256, sha256_hex, hmac_sha256_hex, random32, clear_errors };
