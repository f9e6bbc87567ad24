/**
 * pool_name(options, default_proxy_opts): the cosocket pool name for a set of httpc:connect
 * options. Adds to lua-resty-http's fields the proven client identity, and the https proxy
 * credentials as a keyed digest (names get logged: never the credentials themselves).
 */
import { fields, hashed, MAX_LENGTH } from "./encode";
import { hmac_sha256_hex, random32, sha256_hex } from "./crypto";
import { options_identity } from "./identity";
import { ConnectOptions, new_target, resolve, Target } from "./target";

// Per-worker secret for the credentials digest: names only need to agree within a worker.
let credentials_key: string | undefined;

/** Digests of recent credentials, so that a warm pool_name does no HMAC. Bounded. */
let credentials_digests = new LuaTable<string, string>();
let credentials_digests_count = 0;
const CREDENTIALS_DIGESTS_MAX = 256;

function credentials_digest(authorization: string): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const known = credentials_digests.get(authorization);
  if (known !== undefined) {
    return $multi(known, undefined);
  }
  if (credentials_key === undefined) {
    const [key, err] = random32();
    if (key === undefined) {
      return $multi(undefined, "cannot digest proxy credentials: " + err);
    }
    credentials_key = key;
  }
  const [digest, err] = hmac_sha256_hex(credentials_key, authorization);
  if (digest === undefined) {
    return $multi(undefined, "cannot digest proxy credentials: " + err);
  }
  if (credentials_digests_count >= CREDENTIALS_DIGESTS_MAX) {
    credentials_digests = new LuaTable<string, string>();
    credentials_digests_count = 0;
  }
  credentials_digests.set(authorization, digest);
  credentials_digests_count += 1;
  return $multi(digest, undefined);
}

/** The name for a resolved target and a client identity (nil: no client certificate). */
function name_for(target: Target, identity: string | undefined): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  // Over plain http the credentials travel with each request, not with the connection.
  let credentials: string | undefined;
  if (target.ssl && target.proxy_authorization !== undefined) {
    const [digest, err] = credentials_digest(target.proxy_authorization);
    if (digest === undefined) {
      return $multi(undefined, err);
    }
    credentials = digest;
  }
  const name = fields(
    target.scheme,
    target.host,
    target.port,
    target.ssl,
    target.server_name,
    target.verify,
    target.proxy_uri,
    credentials,
    identity,
  );
  if (name.length <= MAX_LENGTH) {
    return $multi(name, undefined);
  }
  const [digest, err] = sha256_hex(name);
  if (digest === undefined) {
    return $multi(undefined, "cannot bound the pool name: " + err);
  }
  return $multi(hashed(name, digest), undefined);
}

// pool_name() resolves into this table; nothing between resolve and use yields.
const scratch = new_target();

/** The pool name for httpc:connect options, or nil, err. */
function pool_name(options: ConnectOptions, default_proxy_opts?: unknown): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const err = resolve(options, default_proxy_opts, scratch);
  if (err !== undefined) {
    return $multi(undefined, err);
  }
  let identity: string | undefined;
  if (scratch.ssl) {
    const [id, id_err] = options_identity(options.ssl_client_cert, options.ssl_client_priv_key);
    if (id_err !== undefined) {
      return $multi(undefined, id_err);
    }
    identity = id;
  }
  return name_for(scratch, identity);
}

export { name_for, pool_name };
