/**
 * What a set of httpc:connect options describes, with lua-resty-http 0.17's defaults applied:
 * where to connect, whether and how to do TLS, and which proxy to go through.
 * Pure Lua: no ngx, no FFI. Every user value is checked, since callers are plain Lua.
 */
import { new_bounded, remember } from "./bounded";

const byte = string.byte;
const find = string.find;
const lower = string.lower;
const match = string.match;
const sub = string.sub;

/** Options as for lua-resty-http's httpc:connect(options); values are unchecked Lua values. */
export interface ConnectOptions {
  scheme?: unknown;
  host?: unknown;
  port?: unknown;
  pool?: unknown;
  pool_size?: unknown;
  backlog?: unknown;
  ssl_reused_session?: unknown;
  ssl_server_name?: unknown;
  ssl_send_status_req?: unknown;
  ssl_verify?: unknown;
  ssl_client_cert?: unknown;
  ssl_client_priv_key?: unknown;
  proxy_opts?: unknown;
  pool_debug?: unknown;
}

/** lua-resty-http's proxy options. */
export interface ProxyOptions {
  http_proxy?: unknown;
  https_proxy?: unknown;
  http_proxy_authorization?: unknown;
  https_proxy_authorization?: unknown;
  no_proxy?: unknown;
}

/** The resolved connection (its fields: see new_target), filled in place by resolve(). */
export interface Target {
  scheme: string | undefined;
  host: string;
  port: number | undefined;
  ssl: boolean;
  server_name: string | boolean | undefined;
  verify: boolean | undefined;
  proxy_uri: string | undefined;
  proxy_host: string | undefined;
  proxy_port: number | undefined;
  proxy_authorization: string | undefined;
}

/**
 * A target for resolve() to fill in place, so that callers reuse one table. Its fields:
 *   scheme, host, ssl
 *   port                 nil for a unix socket ("unix:/path"), or a host given with neither
 *                        scheme nor port
 *   server_name          https only: the SNI name as given (nil or false: none sent)
 *   verify               https only: false only when the caller passed ssl_verify = false
 *   proxy_uri, proxy_host, proxy_port
 *                        the proxy in use, after no_proxy; nil when connecting directly
 *   proxy_authorization  the Proxy-Authorization value for that proxy
 */
export function new_target(): Target {
  // Every field is created with a value, then the optional ones are cleared: a key stays in the
  // table once made, so that resolve() stores nil or a value alike, as a plain store. A missing
  // key would cost a key insertion (NEWREF) per store, or a branch per field, which at one call
  // site turns every change of shape (direct or proxied, say) into a trace exit.
  const target: Target = {
    scheme: "",
    host: "",
    port: 0,
    ssl: false,
    server_name: "",
    verify: false,
    proxy_uri: "",
    proxy_host: "",
    proxy_port: 0,
    proxy_authorization: "",
  };
  target.scheme = undefined;
  target.port = undefined;
  target.server_name = undefined;
  target.verify = undefined;
  target.proxy_uri = undefined;
  target.proxy_host = undefined;
  target.proxy_port = undefined;
  target.proxy_authorization = undefined;
  return target;
}

const DOT = 46; // "."
const SPACE = 32;
const TAB = 9;
const LEFT_BRACKET = 91; // "["
const LOWER_U = 117; // "u"

function bad(what: string, expected: string, value: unknown): string {
  return "bad " + what + ": " + expected + " expected, got " + type(value);
}

/** A port number or numeric string, as an integer from 1 to 65535, else nil. */
function valid_port(value: unknown): number | undefined {
  const port = tonumber(value);
  if (port === undefined || port < 1 || port > 65535 || port % 1 !== 0) {
    return undefined;
  }
  return port;
}

const MAX_SERVER_NAME = 255;

const DEL = 127;

// Strings found free of control bytes: the byte loop runs once per distinct host, SNI or
// credentials, not on every call (an inner loop costs the caller's trace an exit per call).
const checked = new_bounded<string, true>(1024);

/** Whether `value` holds a control byte: a byte loop, since LuaJIT compiles no pattern search. */
function has_control(value: string): boolean {
  if (checked.entries.get(value) !== undefined) {
    return false;
  }
  for (const i of $range(1, value.length)) {
    const c = byte(value, i);
    if (c < SPACE || c === DEL) {
      return true;
    }
  }
  remember(checked, value, true);
  return false;
}

function is_blank(c: number | undefined): boolean {
  return c === SPACE || c === TAB;
}

/**
 * Whether `no_proxy` exempts `host`, as lua-resty-http 0.17 decides it: "*" exempts every host;
 * otherwise a comma-separated list whose entries (a leading "." ignored) match the host itself
 * or, when the entry has a dot, any domain the host is under. Unlike upstream, blanks around
 * entries are ignored ("a.com, b.com" works as curl reads it).
 */
function exempt(host: string, no_proxy: string): boolean {
  if (no_proxy === "*") {
    return true;
  }
  const host_length = host.length;
  const list_length = no_proxy.length;
  let start = 1;
  while (start <= list_length) {
    const [comma] = find(no_proxy, ",", start, true);
    let last = comma === undefined ? list_length : comma - 1;
    let first = start;
    while (first <= last && is_blank(byte(no_proxy, first))) {
      first += 1;
    }
    while (last >= first && is_blank(byte(no_proxy, last))) {
      last -= 1;
    }
    if (first <= last && byte(no_proxy, first) === DOT) {
      first += 1;
    }
    const length = last - first + 1;
    if (length > 0) {
      if (length === host_length) {
        if (sub(no_proxy, first, last) === host) {
          return true;
        }
      } else if (length < host_length && byte(host, host_length - length) === DOT) {
        // A parent domain: upstream only compares parents that still hold a dot.
        const [dot] = find(no_proxy, ".", first, true);
        if (dot !== undefined && dot <= last && sub(host, host_length - length + 1) === sub(no_proxy, first, last)) {
          return true;
        }
      }
    }
    if (comma === undefined) {
      break;
    }
    start = comma + 1;
  }
  return false;
}

const PROXY_URI_FORM = "expected http://host[:port]";

interface ProxyAddress {
  host: string;
  port: number;
}

// Proxy URIs already parsed: string.match is not compiled by LuaJIT, and a proxy rarely changes.
const proxy_addresses = new_bounded<string, ProxyAddress>(256);

/** The host and port of an http proxy URI, or an error message. */
function proxy_address(uri: string): ProxyAddress | string {
  const known = proxy_addresses.entries.get(uri);
  if (known !== undefined) {
    return known;
  }
  // The URI is never echoed back: it is configuration that may hold secrets.
  const [scheme, authority] = match(uri, "^(%a[%w+.%-]*)://([^/?#]*)");
  if (scheme === undefined || authority === undefined) {
    return "bad proxy URI: " + PROXY_URI_FORM;
  }
  if (lower(scheme) !== "http") {
    return "protocol " + scheme + " not supported for proxy connections";
  }
  const [at] = find(authority, "@", 1, true);
  if (at !== undefined) {
    return "bad proxy URI: credentials in the URI are not supported, use http(s)_proxy_authorization";
  }
  // An IPv6 literal keeps its brackets, as ngx's connect() expects it.
  const pattern = byte(authority, 1) === LEFT_BRACKET ? "^(%[[^%]]+%])(.*)$" : "^([^:]+)(.*)$";
  const [host, rest] = match(authority, pattern);
  if (host === undefined || rest === undefined) {
    return "bad proxy URI: " + PROXY_URI_FORM;
  }
  let port: number | undefined = 80;
  if (rest !== "") {
    const [digits] = match(rest, "^:(%d+)$");
    port = valid_port(digits);
    if (port === undefined) {
      return "bad proxy URI: " + PROXY_URI_FORM;
    }
  }
  const address = { host, port };
  remember(proxy_addresses, uri, address);
  return address;
}

/**
 * Fills `out` from `options` (and `default_proxy_opts` when options.proxy_opts is nil).
 * Returns an error message, or nil on success.
 */
export function resolve(options: ConnectOptions, default_proxy_opts: unknown, out: Target): string | undefined {
  if (typeof options !== "object") {
    return bad("options", "table", options);
  }
  const scheme = options.scheme;
  const host = options.host;
  if (typeof host !== "string" || host === "") {
    return bad("host", "non-empty string", host);
  }
  // Control bytes are never part of a host name, and through a proxy the host goes into the
  // CONNECT request line, where CR/LF would inject headers.
  if (has_control(host)) {
    return "bad host: control characters are not allowed";
  }
  if (scheme !== undefined && scheme !== "http" && scheme !== "https") {
    if (typeof scheme === "string") {
      return 'bad scheme: "http" or "https" expected, got "' + scheme + '"';
    }
    return bad("scheme", '"http" or "https"', scheme);
  }
  // The first byte first: find() is a C call on every call, and sub(host, 1, 5) would make and
  // intern a substring; only a host starting with "u" pays for the search.
  const unix = byte(host, 1) === LOWER_U && find(host, "unix:", 1, true)[0] === 1;
  let port: number | undefined;
  if (options.port !== undefined) {
    if (scheme === undefined) {
      return "'scheme' is required when providing a port";
    }
    if (unix) {
      return "bad port: a unix socket host takes no port";
    }
    port = valid_port(options.port);
    if (port === undefined) {
      if (typeof options.port === "number" || typeof options.port === "string") {
        return "bad port: integer from 1 to 65535 expected, got " + tostring(options.port);
      }
      return bad("port", "integer from 1 to 65535", options.port);
    }
  } else if (scheme !== undefined && !unix) {
    port = scheme === "https" ? 443 : 80;
  }

  const ssl = scheme === "https";
  let server_name: string | boolean | undefined;
  let verify: boolean | undefined;
  if (ssl) {
    server_name = options.ssl_server_name as string | boolean | undefined;
    if (typeof server_name === "string") {
      // OpenSSL refuses these in SSL_set_tlsext_host_name, after the TCP connect, and leaves
      // its error queued for the worker's next TLS operation: refuse them here instead.
      if (server_name === "" || server_name.length > MAX_SERVER_NAME || has_control(server_name)) {
        return "bad ssl_server_name: 1 to 255 bytes without control characters expected";
      }
    } else if (server_name !== undefined && server_name !== false) {
      return bad("ssl_server_name", "string", server_name);
    }
    verify = options.ssl_verify !== false;
  }

  out.scheme = scheme;
  out.host = host;
  out.port = port;
  out.ssl = ssl;
  out.server_name = server_name;
  out.verify = verify;
  out.proxy_uri = undefined;
  out.proxy_host = undefined;
  out.proxy_port = undefined;
  out.proxy_authorization = undefined;

  // A proxy reaches TCP targets only: a unix socket is always connected to directly.
  if (port === undefined) {
    return undefined;
  }
  let proxy = options.proxy_opts;
  if (proxy === undefined) {
    proxy = default_proxy_opts;
  }
  if (proxy === undefined) {
    return undefined;
  }
  if (typeof proxy !== "object") {
    return bad("proxy_opts", "table", proxy);
  }
  const opts = proxy as ProxyOptions;
  let uri = opts.http_proxy;
  let authorization = opts.http_proxy_authorization;
  if (ssl) {
    uri = opts.https_proxy;
    authorization = opts.https_proxy_authorization;
  }
  const no_proxy = opts.no_proxy;
  if (uri !== undefined && typeof uri !== "string") {
    return bad(scheme + "_proxy", "string", uri);
  }
  if (authorization !== undefined && typeof authorization !== "string") {
    return bad(scheme + "_proxy_authorization", "string", authorization);
  }
  if (authorization !== undefined && has_control(authorization)) {
    // It becomes a header line, of CONNECT or of each request: CR/LF would inject headers.
    return "bad " + scheme + "_proxy_authorization: control characters are not allowed";
  }
  if (no_proxy !== undefined && typeof no_proxy !== "string") {
    return bad("no_proxy", "string", no_proxy);
  }
  if (uri === undefined || (no_proxy !== undefined && exempt(host, no_proxy))) {
    return undefined;
  }
  const address = proxy_address(uri);
  if (typeof address === "string") {
    return address;
  }
  out.proxy_host = address.host;
  out.proxy_port = address.port;
  out.proxy_uri = uri;
  out.proxy_authorization = authorization;
  return undefined;
}
