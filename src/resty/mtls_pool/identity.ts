/**
 * Client identity: checks the caller's cert/key pair, picks the provider lazily at first mTLS
 * use (resty.openssl, then the built-in FFI, then object tokens), logs that choice once per
 * worker when it costs something, and caches the identity per (cert, key) object pair.
 */
import { weak_keys } from "./bounded";
import * as ffi_provider from "./identity/ffi";
import * as object_provider from "./identity/object";
import * as openssl_provider from "./identity/openssl";
import { forget_proofs } from "./identity/proofs";

const ngx_log = ngx.log;
const DEBUG = ngx.DEBUG;
const INFO = ngx.INFO;
const WARN = ngx.WARN;

type ProviderName = "openssl" | "ffi" | "object";

interface Provider {
  name: ProviderName;
  load(this: void): string | undefined;
  identity(this: void, cert: CertChain, key: PrivateKey): LuaMultiReturn<[string, undefined] | [undefined, string]>;
}

// Each provider module has the same three fields: name, load() and identity().
const PROVIDERS: Record<ProviderName, Provider> = {
  openssl: openssl_provider,
  ffi: ffi_provider,
  object: object_provider,
};

/** cert object -> key object -> identity; weak both ways so parsed certificates can be freed. */
function new_cache(): LuaTable<CertChain, LuaTable<PrivateKey, string>> {
  return weak_keys();
}

let configured: ProviderName | "auto" = "auto";
// Counts configure() calls: identities made before and after one may differ (see identities_generation).
let generation = 0;
let active: Provider | undefined;
// What the one-time log line says once `active` is first used; nil: nothing to say.
let notice: [number, string] | undefined;
let cache = new_cache();

const OBJECT_ADVICE =
  "pooled mTLS connections are then shared only by requests that pass the same cert and key " +
  "objects: parse certificates once (ngx.ssl.parse_pem_cert in init_by_lua or a module-level " +
  "cache), not per request";

/** Chooses the provider when none is active yet; returns an error only for a forced one. */
function choose(): string | undefined {
  if (active !== undefined) {
    return undefined;
  }
  if (configured !== "auto") {
    const provider = PROVIDERS[configured];
    const err = provider.load();
    if (err !== undefined) {
      return "identity provider " + configured + " unavailable: " + err;
    }
    active = provider;
    if (configured === "object") {
      notice = [WARN, "mtls_pool: using per-object client identities as configured; " + OBJECT_ADVICE];
    }
    return undefined;
  }
  const openssl_err = PROVIDERS.openssl.load();
  if (openssl_err === undefined) {
    active = PROVIDERS.openssl;
    return undefined;
  }
  const ffi_err = PROVIDERS.ffi.load();
  if (ffi_err === undefined) {
    active = PROVIDERS.ffi;
    notice = [INFO, "mtls_pool: " + openssl_err + "; using the built-in FFI certificate digest"];
    return undefined;
  }
  active = PROVIDERS.object;
  notice = [
    WARN,
    "mtls_pool: " + openssl_err + ", and " + ffi_err + ": falling back to per-object client identities; " +
      "install lua-resty-openssl to share pooled connections by certificate. Meanwhile " + OBJECT_ADVICE,
  ];
  return undefined;
}

function is_cdata(value: unknown): boolean {
  return (type(value) as string) === "cdata";
}

/** lua-resty-http's own message for the same refusal, and a hint at DEBUG for PEM strings. */
function bad_input(what: string, parser: string, value: unknown): string {
  if (typeof value === "string") {
    ngx_log(DEBUG, "mtls_pool: ", what, " is a string: parse the PEM once with ngx.ssl.", parser, "() and pass the result");
  }
  return "bad " + what + ": cdata expected, got " + type(value);
}

/**
 * The identity for a cert/key pair: "sha256:<64 hex>" (digest providers) or "obj:<n>".
 * Both must be set; false counts as not set. Errors are returned, never thrown.
 */
function client_identity(cert: unknown, key: unknown): LuaMultiReturn<[string, undefined] | [undefined, string]> {
  if (cert === undefined || cert === false) {
    if (key === undefined || key === false) {
      return $multi(undefined, "ssl_client_cert and ssl_client_priv_key are required");
    }
    return $multi(undefined, "ssl_client_cert is required when ssl_client_priv_key is set");
  }
  if (key === undefined || key === false) {
    return $multi(undefined, "ssl_client_priv_key is required when ssl_client_cert is set");
  }
  if (!is_cdata(cert)) {
    return $multi(undefined, bad_input("ssl_client_cert", "parse_pem_cert", cert));
  }
  if (!is_cdata(key)) {
    return $multi(undefined, bad_input("ssl_client_priv_key", "parse_pem_priv_key", key));
  }
  const chain = cert as CertChain;
  const pkey = key as PrivateKey;

  let by_key = cache.get(chain);
  if (by_key !== undefined) {
    const known = by_key.get(pkey);
    if (known !== undefined) {
      return $multi(known, undefined);
    }
  }

  const err = choose();
  if (err !== undefined) {
    return $multi(undefined, err);
  }
  if (notice !== undefined) {
    ngx_log(notice[0], notice[1]);
    notice = undefined;
  }
  const provider = active as Provider;
  const [id, id_err] = provider.identity(chain, pkey);
  if (id === undefined) {
    return $multi(undefined, id_err);
  }
  if (by_key === undefined) {
    by_key = weak_keys();
    cache.set(chain, by_key);
  }
  by_key.set(pkey, id);
  return $multi(id, undefined);
}

/**
 * The identity for connect options: nil, nil when neither ssl_client_cert nor
 * ssl_client_priv_key is set, else as client_identity().
 */
function options_identity(cert: unknown, key: unknown): LuaMultiReturn<[string | undefined, undefined] | [undefined, string]> {
  // A known pair first, before any check: only checked pairs are in the cache, and reading a
  // table with a nil key is allowed. At one call site that names pools with and without a client
  // certificate, the two paths then differ by two table reads.
  const by_key = cache.get(cert as CertChain);
  if (by_key !== undefined) {
    const known = by_key.get(key as PrivateKey);
    if (known !== undefined) {
      return $multi(known, undefined);
    }
  }
  if ((cert === undefined || cert === false) && (key === undefined || key === false)) {
    return $multi(undefined, undefined);
  }
  return client_identity(cert, key);
}

interface ConfigureOptions {
  provider?: unknown;
}

/** configure{ provider = "auto" | "openssl" | "ffi" | "object" }: true, or nil, err. */
function configure(options: ConfigureOptions): LuaMultiReturn<[true, undefined] | [undefined, string]> {
  if (typeof options !== "object") {
    return $multi(undefined, "bad options: table expected, got " + type(options));
  }
  let name = options.provider;
  if (name === undefined) {
    name = "auto";
  }
  if (name !== "auto" && name !== "openssl" && name !== "ffi" && name !== "object") {
    return $multi(undefined, 'bad provider: "auto", "openssl", "ffi" or "object" expected, got ' + tostring(name));
  }
  if (name !== "auto") {
    const err = PROVIDERS[name].load();
    if (err !== undefined) {
      return $multi(undefined, "identity provider " + name + " unavailable: " + err);
    }
  }
  configured = name;
  generation += 1;
  active = undefined;
  notice = undefined;
  // Identities from different providers differ: start afresh.
  cache = new_cache();
  forget_proofs();
  return $multi(true, undefined);
}

/** The name of the provider in use (choosing it now if no mTLS use has yet). */
function provider(): ProviderName {
  if (choose() !== undefined) {
    // Only a forced provider can fail, and configure() checked it loads.
    return configured as ProviderName;
  }
  return (active as Provider).name;
}

/**
 * A number that changes whenever identities may change (configure()): caches keyed by cert and
 * key objects rather than by identity compare it to know their names still hold.
 */
function identities_generation(): number {
  return generation;
}

export { identities_generation, client_identity, options_identity, configure, provider };
