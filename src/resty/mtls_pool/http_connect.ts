/**
 * resty.mtls_pool.http_connect: a drop-in for lua-resty-http's resty.http_connect, with the
 * same contract, whose pool names carry the proven client identity. Self-contained: it needs
 * only `self.sock`, and does the proxy CONNECT exchange itself.
 *
 *   local connect = require "resty.mtls_pool.http_connect"
 *   local ok, err, ssl_session = connect(httpc, {
 *     scheme = "https",        -- "http", "https", or nil for a unix socket
 *     host = "example.com",    -- host name, IP literal ("[::1]"), or "unix:/path/to.sock"
 *     port = nil,              -- defaults to 443 / 80 from scheme; requires scheme
 *     pool = nil,              -- a namespace for the pool name: identity, SNI and verify
 *                              -- still separate connections within it
 *     pool_size = nil,         -- as for tcpsock:connect
 *     backlog = nil,
 *     pool_debug = false,      -- log the pool name at DEBUG (it holds no secrets)
 *     ssl_reused_session = nil, ssl_server_name = nil, ssl_send_status_req = nil,
 *     ssl_verify = true,       -- only false turns verification off
 *     ssl_client_cert = nil,   -- cdata from ngx.ssl.parse_pem_cert, with
 *     ssl_client_priv_key = nil, -- cdata from ngx.ssl.parse_pem_priv_key (ngx_lua >= 0.10.23)
 *     proxy_opts = nil,        -- defaults to httpc.proxy_opts: http_proxy, https_proxy,
 *                              -- http(s)_proxy_authorization, no_proxy
 *   })
 *
 * Differences from lua-resty-http 0.17, all on the safe side: a client certificate that cannot
 * be set, or a cert without its key, is an error (never a plain-TLS connect); `pool` does not
 * replace the name; ssl_reused_session is used only in the pool whose connect returned it; a
 * connect without a certificate takes off one an earlier connect left on the socket object;
 * every refusal closes the socket (a request after it fails); unix sockets are never proxied;
 * "https" over "unix:/path" is TLS over the socket.
 */
import { clear_errors } from "./crypto";
import { caller_pool, name_for } from "./name";
import { bind, usable } from "./sessions";
import { ConnectOptions, new_target, resolve } from "./target";

/**
 * This module's pcall: on a method with two results, pcall(obj.method, obj, ...) returns three
 * values, where lua-types' pcall has one result (which TypeScriptToLua would pack into a table).
 */
declare function pcall<S, A extends unknown[], R1, R2>(
  this: void,
  method: (this: S, ...args: A) => LuaMultiReturn<[R1, R2]>,
  self: S,
  ...args: A
): LuaMultiReturn<[true, R1, R2] | [false, string, undefined]>;

const ngx_log = ngx.log;
const DEBUG = ngx.DEBUG;
const find = string.find;
const match = string.match;
// `package` is a reserved word in TypeScript: reach it through _G.
const loaded = (_G as unknown as { package: { loaded: LuaTable<string, unknown> } }).package.loaded;

// What the CONNECT request says when lua-resty-http is not loaded (else its _USER_AGENT).
const USER_AGENT = "resty.mtls_pool (Lua) ngx_lua/" + ngx.config.ngx_lua_version;

/** lua-resty-http's User-Agent, read per tunnel so that an application's own setting counts. */
function user_agent(): string {
  const http = loaded.get("resty.http") as { _USER_AGENT?: unknown } | undefined;
  if (typeof http === "object" && typeof http._USER_AGENT === "string") {
    return http._USER_AGENT;
  }
  return USER_AGENT;
}

// connect() resolves into this table and copies what it needs into locals before it yields.
const target = new_target();

// ngx_lua reads pool, pool_size and backlog when connect() is called, before it yields, so
// one table serves every call.
const tcp_options: TcpConnectOptions = {};

const MAX_PROXY_HEADER_LINES = 100;

/**
 * Sends CONNECT host:port through a fresh proxy connection, with the headers lua-resty-http's
 * request() sends (RFC 7231 4.3.6: authority-form target and Host); an error, or nil.
 */
function open_tunnel(sock: TcpSock, destination: string, authorization: string | undefined): string | undefined {
  let request = "CONNECT " + destination + " HTTP/1.1\r\nHost: " + destination + "\r\n";
  if (authorization !== undefined) {
    request += "Proxy-Authorization: " + authorization + "\r\n";
  }
  request += "User-Agent: " + user_agent() + "\r\n";
  const [sent, send_err] = sock.send(request + "\r\n");
  if (sent === undefined) {
    return "failed to issue CONNECT to proxy: " + send_err;
  }
  const [status_line, status_err] = sock.receive("*l");
  if (status_line === undefined) {
    return "failed to issue CONNECT to proxy: " + status_err;
  }
  const [code] = match(status_line, "^HTTP/1%.[01] (%d%d%d)");
  const status = tonumber(code);
  if (status === undefined) {
    return "failed to establish a tunnel through a proxy: bad response";
  }
  if (status < 200 || status > 299) {
    return "failed to establish a tunnel through a proxy: " + status;
  }
  // The tunnel starts after the (bodiless) response's headers.
  for (const _ of $range(1, MAX_PROXY_HEADER_LINES)) {
    const [line, line_err] = sock.receive("*l");
    if (line === undefined) {
      return "failed to establish a tunnel through a proxy: " + line_err;
    }
    if (line === "") {
      return undefined;
    }
  }
  return "failed to establish a tunnel through a proxy: too many response headers";
}

/**
 * Closes the socket, so that nothing half-open goes back to the pool and a caller who ignores
 * the error cannot send on the connection an earlier connect left; returns nil, err.
 */
function fail(sock: TcpSock, err: string | undefined): LuaMultiReturn<[undefined, string | undefined]> {
  sock.close();
  clear_errors();
  return $multi(undefined, err);
}

type HandshakeResult = LuaMultiReturn<[SslSession | true | undefined, string | undefined]>;

// What lua-resty-core before 0.1.27 (Debian 12 ships 0.1.25) raises when a handshake that fails
// verification completes without yielding: its assert() after the handshake result.
const RESTY_CORE_ASSERTION = "resty/core/socket%.lua:%d+: assertion failed!$";

/**
 * tcpsock:sslhandshake, made safe against lua-resty-core before 0.1.27: the handshake above
 * raises an assertion, and with ssl_reused_session = false it returns true on the socket
 * it closed. Any other error raised reaches the caller as nil, err with its own text.
 */
function checked_handshake(
  sock: TcpSock,
  reused_session: SslSession | false | undefined,
  server_name: string | false | undefined,
  verify: boolean | undefined,
  send_status_req: boolean | undefined,
): HandshakeResult {
  const [completed, session, err] = pcall(sock.sslhandshake, sock, reused_session, server_name, verify, send_status_req);
  if (!completed) {
    const raised = tostring(session);
    const [assertion_at] = find(raised, RESTY_CORE_ASSERTION);
    if (assertion_at !== undefined) {
      return $multi(undefined, "SSL handshake failed, most likely certificate verification (" + raised + ")");
    }
    return $multi(undefined, raised);
  }
  if (session === undefined) {
    return $multi(undefined, err);
  }
  const [alive] = sock.getreusedtimes();
  if (alive === undefined) {
    return $multi(undefined, "SSL handshake failed, most likely certificate verification (the socket was closed)");
  }
  return $multi(session, undefined);
}

function connect(
  httpc: HttpClient,
  options: ConnectOptions,
): LuaMultiReturn<[true, undefined, SslSession | true | undefined] | [undefined, string | undefined]> {
  const sock = httpc.sock;
  if (sock === undefined) {
    return $multi(undefined, "not initialized");
  }
  // Every refusal closes the socket (fail): the object may hold an earlier connection.
  const err = resolve(options, httpc.proxy_opts, target);
  if (err !== undefined) {
    return fail(sock, err);
  }
  const ssl = target.ssl;
  const host = target.host;
  const port = target.port;
  const proxy_host = target.proxy_host;
  const proxy_port = target.proxy_port;
  const proxy_authorization = target.proxy_authorization;
  const server_name = target.server_name as string | false | undefined;
  const verify = target.verify;

  const [caller, caller_err] = caller_pool(options.pool);
  if (caller_err !== undefined) {
    return fail(sock, caller_err);
  }
  const cert = options.ssl_client_cert;
  const key = options.ssl_client_priv_key;
  // The pool name, and whether it holds a client identity: then cert and key are a proven pair.
  const [pool, identified, name_err] = name_for(target, cert, key, caller);
  if (pool === undefined) {
    return fail(sock, name_err);
  }
  if (identified && sock.setclientcert === undefined) {
    return fail(sock, "ssl_client_cert needs tcpsock:setclientcert (ngx_lua >= 0.10.23)");
  }
  const pool_debug = options.pool_debug;
  if (pool_debug) {
    ngx_log(DEBUG, "mtls_pool: pool name ", pool);
  }
  tcp_options.pool = pool;
  tcp_options.pool_size = options.pool_size as number | undefined;
  tcp_options.backlog = options.backlog as number | undefined;

  if (proxy_host !== undefined) {
    const [ok, connect_err] = sock.connect(proxy_host, proxy_port as number, tcp_options);
    if (ok === undefined) {
      return fail(sock, "failed to connect to: " + proxy_host + ":" + proxy_port + ": " + connect_err);
    }
  } else if (port === undefined) {
    const [ok, connect_err] = sock.connect(host, tcp_options);
    if (ok === undefined) {
      return fail(sock, connect_err);
    }
  } else {
    const [ok, connect_err] = sock.connect(host, port, tcp_options);
    if (ok === undefined) {
      return fail(sock, connect_err);
    }
  }

  let ssl_session: SslSession | true | undefined;
  if (ssl) {
    const [reused, reused_err] = sock.getreusedtimes();
    if (reused === undefined) {
      return fail(sock, reused_err);
    }
    // A pooled connection is already tunnelled, handshaken and authenticated as this pool's
    // identity: that is what the pool name guarantees.
    if (reused === 0) {
      if (proxy_host !== undefined) {
        const tunnel_err = open_tunnel(sock, host + ":" + port, proxy_authorization);
        if (tunnel_err !== undefined) {
          return fail(sock, tunnel_err);
        }
      }
      if (identified) {
        const [set, set_err] = sock.setclientcert!(cert as CertChain, key as PrivateKey);
        if (set === undefined) {
          return fail(sock, "could not set client certificate: " + set_err);
        }
      } else if (sock.setclientcert !== undefined) {
        // lua-resty-core keeps a pair set by an earlier connect on this object for every later
        // handshake: without this, a connect meant to present no identity would present it.
        sock.setclientcert(undefined, undefined);
      }
      const [session, handshake_err] = checked_handshake(
        sock,
        usable(options.ssl_reused_session, pool, pool_debug),
        server_name,
        verify,
        options.ssl_send_status_req as boolean | undefined,
      );
      if (session === undefined) {
        return fail(sock, handshake_err);
      }
      if (session !== true) {
        bind(session, pool);
      }
      ssl_session = session;
    }
  }

  httpc.host = host;
  httpc.port = port;
  httpc.keepalive = true;
  httpc.ssl = ssl;
  // Over plain http through a proxy, lua-resty-http sends these with each request.
  if (proxy_host !== undefined && !ssl) {
    httpc.http_proxy_auth = proxy_authorization;
    httpc.path_prefix = port === 80 ? "http://" + host : "http://" + host + ":" + port;
  } else {
    httpc.http_proxy_auth = undefined;
    httpc.path_prefix = undefined;
  }
  return $multi(true, undefined, ssl_session);
}

export = connect;
