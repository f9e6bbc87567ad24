/**
 * Identity provider of last resort: a token per (certificate object, key object) pair, never
 * reused during the worker's life. Secure without any digest, but only requests that pass the
 * very same cdata objects share pooled connections. resty.mtls_pool.identity keeps the token per
 * pair.
 */
import { unavailable } from "../crypto";
import { proven_digest } from "./ffi";

let last_token = 0;

function load(): string | undefined {
  return undefined;
}

function identity(cert: CertChain, key: PrivateKey): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  // With libcrypto at hand, refuse a mismatched key now; without it the handshake refuses it.
  if (unavailable() === undefined) {
    const [, err] = proven_digest(cert, key);
    if (err !== undefined) {
      return $multi(undefined, err);
    }
  }
  last_token += 1;
  return $multi("obj:" + last_token, undefined);
}

export const name = "object";

export { load, identity };
