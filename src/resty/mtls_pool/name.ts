/**
 * pool_name(options, default_proxy_opts): the cosocket pool name for a set of httpc:connect
 * options. Adds to lua-resty-http's fields the proven client identity, and the https proxy
 * credentials as a keyed digest (names get logged: never the credentials themselves). A
 * caller's options.pool is a namespace: identity, TLS fields and credentials still separate.
 */
import { keeps, new_bounded, remember, remember_in } from "./bounded";
import { fields, hashed, MAX_LENGTH, namespaced } from "./encode";
import { hmac_sha256_hex, random32, sha256_hex } from "./crypto";
import { options_identity } from "./identity";
import { ConnectOptions, new_target, resolve, Target } from "./target";

// Per-worker secret for the credentials digest: names only need to agree within a worker.
let credentials_key: string | undefined;

/** Digests of recent credentials, so that building a name does no HMAC. */
const credentials_digests = new_bounded<string, string>(256);

function credentials_digest(authorization: string): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const known = credentials_digests.entries.get(authorization);
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
  remember(credentials_digests, authorization, digest);
  return $multi(digest, undefined);
}

/**
 * The name for a resolved target and a client identity (nil: no client certificate), inside
 * the caller's pool `pool` when it is not nil.
 */
function build_name(
  target: Target,
  identity: string | undefined,
  pool: string | undefined,
): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  // Over plain http the credentials travel with each request, not with the connection.
  let credentials: string | undefined;
  if (target.ssl && target.proxy_authorization !== undefined) {
    const [digest, err] = credentials_digest(target.proxy_authorization);
    if (digest === undefined) {
      return $multi(undefined, err);
    }
    credentials = digest;
  }
  let name: string;
  if (pool === undefined) {
    name = fields(
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
  } else {
    name = namespaced(pool, target.ssl, target.server_name, target.verify, credentials, identity);
  }
  if (name.length <= MAX_LENGTH) {
    return $multi(name, undefined);
  }
  const [digest, err] = sha256_hex(name);
  if (digest === undefined) {
    return $multi(undefined, "cannot bound the pool name: " + err);
  }
  return $multi(hashed(name, digest), undefined);
}

/** The target fields (and caller's pool) a name was last built from, for one identity and host. */
interface Recent {
  pool: string | undefined;
  scheme: string | undefined;
  port: number | undefined;
  ssl: boolean;
  server_name: string | boolean | undefined;
  verify: boolean | undefined;
  proxy_uri: string | undefined;
  proxy_authorization: string | undefined;
  name: string;
}

// Names already built, with the fields they were built from: a warm name is a comparison of the
// resolved fields, without building, escaping or interning a string. Without a client identity:
// host -> Recent; with one: identity -> host -> Recent (`count` counts Recent entries). Apart,
// so that the lookup without identity uses no constant key in a table that grows with identities
// (LuaJIT specialises such a lookup on the table's size and leaves the trace when it changes).
const without_identity = new_bounded<string, Recent>(1024);
const with_identity = new_bounded<string, LuaTable<string, Recent>>(1024);

function remember_name(target: Target, identity: string | undefined, pool: string | undefined, name: string): void {
  if (!keeps(without_identity, target.host)) {
    return;
  }
  const recent: Recent = {
    pool,
    scheme: target.scheme,
    port: target.port,
    ssl: target.ssl,
    server_name: target.server_name,
    verify: target.verify,
    proxy_uri: target.proxy_uri,
    proxy_authorization: target.proxy_authorization,
    name,
  };
  if (identity === undefined) {
    remember(without_identity, target.host, recent);
  } else {
    remember_in(with_identity, identity, target.host, recent);
  }
}

/**
 * The pool name for a resolved target, a client identity (nil: none) and the caller's pool (nil:
 * none), or nil, err. Built once per identity, target and pool while the cache keeps it; after
 * that, a comparison of the target's fields.
 */
function name_for(
  target: Target,
  identity: string | undefined,
  pool: string | undefined,
): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const by_host = identity === undefined ? without_identity.entries : with_identity.entries.get(identity);
  let last: Recent | undefined;
  if (by_host !== undefined) {
    last = by_host.get(target.host);
  }
  if (
    last !== undefined &&
    last.pool === pool &&
    last.scheme === target.scheme &&
    last.port === target.port &&
    last.ssl === target.ssl &&
    last.server_name === target.server_name &&
    last.verify === target.verify &&
    last.proxy_uri === target.proxy_uri &&
    last.proxy_authorization === target.proxy_authorization
  ) {
    return $multi(last.name, undefined);
  }
  const [name, err] = build_name(target, identity, pool);
  if (name === undefined) {
    return $multi(undefined, err);
  }
  remember_name(target, identity, pool, name);
  return $multi(name, undefined);
}

// pool_name() resolves into this table; nothing between resolve and use yields.
const scratch = new_target();

/** options.pool checked: a string or nil; the error message otherwise. */
function caller_pool(pool: unknown): LuaMultiReturn<[string | undefined, undefined] | [undefined, string]> {
  if (pool === undefined || typeof pool === "string") {
    return $multi(pool, undefined);
  }
  return $multi(undefined, "bad pool: string expected, got " + type(pool));
}

/** The pool name for httpc:connect options, or nil, err. */
function pool_name(options: ConnectOptions, default_proxy_opts?: unknown): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  const err = resolve(options, default_proxy_opts, scratch);
  if (err !== undefined) {
    return $multi(undefined, err);
  }
  const [pool, pool_err] = caller_pool(options.pool);
  if (pool_err !== undefined) {
    return $multi(undefined, pool_err);
  }
  let identity: string | undefined;
  if (scratch.ssl) {
    const [id, id_err] = options_identity(options.ssl_client_cert, options.ssl_client_priv_key);
    if (id_err !== undefined) {
      return $multi(undefined, id_err);
    }
    identity = id;
  }
  return name_for(scratch, identity, pool);
}

export { caller_pool, name_for, pool_name };
