/**
 * pool_name(options, default_proxy_opts): the cosocket pool name for a set of httpc:connect
 * options. Adds to lua-resty-http's fields the proven client identity, and the https proxy
 * credentials as a keyed digest (names get logged: never the credentials themselves). A
 * caller's options.pool is a namespace: identity, TLS fields and credentials still separate.
 */
import { keeps, new_bounded, remember, weak_keys } from "./bounded";
import { fields, hashed, MAX_LENGTH, namespaced } from "./encode";
import { hmac_sha256_hex, random32, sha256_hex } from "./crypto";
import { identities_generation, options_identity } from "./identity";
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

/**
 * Names kept per target: host -> SNI name (the host when there is none) -> caller's pool (the
 * port when there is none, the host for a unix socket) -> Recent. The keys only choose a slot: a
 * slot's fields are compared in full before its name is used, so two targets that share a slot
 * just take turns in it. One host reached under several SNI names, ports or caller pools (virtual
 * hosts on one address, services on several ports, a pool per tenant) keeps a name for each.
 */
type Slots = LuaTable<string, LuaTable<string, LuaTable<string | number, Recent>>>;

// Names already built, with the fields they were built from: a warm name is a comparison of the
// resolved fields, without building, escaping or interning a string. Each cache holds at most
// MAX_NAMES names, then is emptied.
const MAX_NAMES = 1024;

// Without a client certificate.
const without_identity = new_bounded<string, LuaTable<string, LuaTable<string | number, Recent>>>(MAX_NAMES);

// With one: cert object -> key object -> Slots, weak on the objects (the caller's). Keyed by the
// objects, not by their identity, so that a warm name costs neither the identity nor a lookup of
// it: an mTLS name then costs two table reads more than a plain one, whichever shape a call site
// met first. Only pairs whose identity was proven get here, under the identity provider in use:
// a new provider empties it.
let by_pair = weak_keys<CertChain, LuaTable<PrivateKey, Slots>>();
let pair_names = 0;
let pair_generation = identities_generation();

function forget_pair_names(): void {
  by_pair = weak_keys();
  pair_names = 0;
}

function new_recent(target: Target, pool: string | undefined, name: string): Recent {
  return {
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
}

/** The three keys of the slot for `target` and `pool`: host, SNI name or host, pool or port or host. */
function slot_keys(target: Target, pool: string | undefined): LuaMultiReturn<[string, string, string | number]> {
  const host = target.host;
  const server_name = target.server_name;
  return $multi(host, typeof server_name === "string" ? server_name : host, pool ?? target.port ?? host);
}

/** The name kept in `slots` for `target` and `pool`, if it was built from the same fields. */
function kept_name(slots: Slots | undefined, target: Target, pool: string | undefined): string | undefined {
  if (slots === undefined) {
    return undefined;
  }
  const [host, server, rest] = slot_keys(target, pool);
  const by_server = slots.get(host);
  if (by_server === undefined) {
    return undefined;
  }
  const by_pool = by_server.get(server);
  if (by_pool === undefined) {
    return undefined;
  }
  const last = by_pool.get(rest);
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
    return last.name;
  }
  return undefined;
}

/** Keeps `name` in `slots` for `target` and `pool`; false when a key is too long to keep. */
function keep_name(slots: Slots, target: Target, pool: string | undefined, name: string): boolean {
  const [host, server, last] = slot_keys(target, pool);
  if (!keeps(without_identity, host) || !keeps(without_identity, server) || !keeps(without_identity, last)) {
    return false;
  }
  let by_server = slots.get(host);
  if (by_server === undefined) {
    by_server = new LuaTable();
    slots.set(host, by_server);
  }
  let by_pool = by_server.get(server);
  if (by_pool === undefined) {
    by_pool = new LuaTable();
    by_server.set(server, by_pool);
  }
  by_pool.set(last, new_recent(target, pool, name));
  return true;
}

/** Keeps `name` for a (cert, key) pair, a target and a pool. */
function remember_pair_name(cert: CertChain, key: PrivateKey, target: Target, pool: string | undefined, name: string): void {
  if (pair_names >= MAX_NAMES) {
    forget_pair_names();
  }
  let by_key = by_pair.get(cert);
  if (by_key === undefined) {
    by_key = weak_keys();
    by_pair.set(cert, by_key);
  }
  let slots = by_key.get(key);
  if (slots === undefined) {
    slots = new LuaTable();
    by_key.set(key, slots);
  }
  if (keep_name(slots, target, pool, name)) {
    pair_names += 1;
  }
}

/** Keeps `name` for a target and a pool, without a client identity. */
function remember_name(target: Target, pool: string | undefined, name: string): void {
  if (without_identity.count >= without_identity.max) {
    without_identity.entries = new LuaTable();
    without_identity.count = 0;
  }
  if (keep_name(without_identity.entries, target, pool, name)) {
    without_identity.count += 1;
  }
}

/**
 * The pool name for a resolved target, the caller's ssl_client_cert and ssl_client_priv_key
 * (ignored without TLS) and pool (nil: none), and whether it carries a client identity; or
 * nil, nil, err when the cert/key pair is refused. Built once per (cert, key) objects, target
 * and pool while the caches keep it; after that, a comparison of the target's fields.
 */
function name_for(
  target: Target,
  cert: unknown,
  key: unknown,
  pool: string | undefined,
): LuaMultiReturn<[string, boolean, undefined] | [undefined, undefined, string]> {
  if (target.ssl) {
    const generation = identities_generation();
    if (pair_generation !== generation) {
      forget_pair_names();
      pair_generation = generation;
    }
    // reading a table with a nil key is allowed: plain https finds nothing here
    const by_key = by_pair.get(cert as CertChain);
    if (by_key !== undefined) {
      const known = kept_name(by_key.get(key as PrivateKey), target, pool);
      if (known !== undefined) {
        return $multi(known, true, undefined);
      }
    }
    const [identity, id_err] = options_identity(cert, key);
    if (id_err !== undefined) {
      return $multi(undefined, undefined, id_err);
    }
    if (identity !== undefined) {
      const [name, err] = build_name(target, identity, pool);
      if (name === undefined) {
        return $multi(undefined, undefined, err);
      }
      remember_pair_name(cert as CertChain, key as PrivateKey, target, pool, name);
      return $multi(name, true, undefined);
    }
  }
  const known = kept_name(without_identity.entries, target, pool);
  if (known !== undefined) {
    return $multi(known, false, undefined);
  }
  const [name, err] = build_name(target, undefined, pool);
  if (name === undefined) {
    return $multi(undefined, undefined, err);
  }
  remember_name(target, pool, name);
  return $multi(name, false, undefined);
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
  const [name, , name_err] = name_for(scratch, options.ssl_client_cert, options.ssl_client_priv_key, pool);
  if (name === undefined) {
    return $multi(undefined, name_err);
  }
  return $multi(name, undefined);
}

export { build_name, caller_pool, name_for, pool_name };
