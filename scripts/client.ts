// The "client nginx": requests to it are proxied, one upstream GET each, to the mTLS server
// through resty.mtls_pool.http_connect, as the client named in ?id= (spec/support/client_app.lua,
// or another app with the same init(certs, names, port, sock) / handle() / stats()).
// The one client nginx of the demo, the reliability suite and the bench.
import { startNginx, type NginxHandle } from "./runtime/nginx.js";
import { freePort } from "./runtime/processes.js";
import { REPO } from "./runtime/runtime.js";

export interface ClientOptions {
  certs: string;
  /** client names whose <name>.crt/.key are in `certs`; requests without ?id= pick one at random */
  clients: readonly string[];
  /** the mTLS server: a TCP port on 127.0.0.1, or a unix socket path */
  upstreamPort?: number;
  upstreamSock?: string;
  port?: number;
  workers?: number;
  /** extra lua_package_path entries (e.g. lua-resty-openssl's lib folder), searched after dist-lua */
  luaPath?: string[];
  errorLogLevel?: string;
  /** the Lua module answering / and /stats (default support.client_app) */
  app?: string;
  /** more init_worker_by_lua code, run after the app's init with the same arguments `(...)` */
  initModules?: string[];
  /** more locations: path -> Lua code of its content_by_lua_block */
  locations?: Record<string, string>;
  statsDictSize?: string;
  /** reuseport: new connections spread over the workers (so a GET can reach each of them) */
  reuseport?: boolean;
}

export interface ClientHandle extends NginxHandle {
  port: number;
  url: string;
  /** the counters of GET /stats, summed over workers where they are per worker */
  stats(): Promise<Record<string, number>>;
}

const luaString = (s: string): string => JSON.stringify(s); // paths and names: no control bytes

/** name=value lines (the name may hold '='), as numbers. */
export async function getCounters(url: string): Promise<Record<string, number>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${text.trim()}`);
  const out: Record<string, number> = {};
  for (const line of text.trim().split("\n")) {
    const at = line.lastIndexOf("=");
    if (at > 0) out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
}

export async function startClient(opts: ClientOptions): Promise<ClientHandle> {
  const port = opts.port ?? (await freePort());
  const app = `require(${luaString(opts.app ?? "support.client_app")})`;
  const luaPath = [`${REPO}/dist-lua/?.lua`, `${REPO}/spec/?.lua`, ...(opts.luaPath ?? [])].join(";");
  const init = [
    luaString(opts.certs),
    `{ ${opts.clients.map(luaString).join(", ")} }`,
    opts.upstreamPort === undefined ? "nil" : String(opts.upstreamPort),
    opts.upstreamSock === undefined ? "nil" : luaString(opts.upstreamSock),
  ].join(", ");
  const inits = [app, ...(opts.initModules ?? []).map((m) => `require(${luaString(m)})`)].map((m) => `${m}.init(${init})`);
  const locations = Object.entries(opts.locations ?? {}).map(
    ([where, lua]) => `    location = ${where} { content_by_lua_block { ${lua} } }`,
  );
  const body = `
  lua_package_path "${luaPath};;";
  lua_ssl_trusted_certificate ${opts.certs}/ca.crt;
  lua_ssl_verify_depth 3;
  lua_shared_dict stats ${opts.statsDictSize ?? "1m"};
  lua_socket_pool_size 64;
  init_worker_by_lua_block { ${inits.join("\n    ")} }
  server {
    listen 127.0.0.1:${port} backlog=4096${opts.reuseport ? " reuseport" : ""};
    access_log off;
    keepalive_requests 1000000;
    location = /stats { content_by_lua_block { ${app}.stats() } }
${locations.join("\n")}
    location / { content_by_lua_block { ${app}.handle() } }
  }`;
  const nginx = await startNginx({
    body,
    workers: opts.workers ?? 1,
    ports: [port],
    ...(opts.errorLogLevel ? { errorLogLevel: opts.errorLogLevel } : {}),
  });
  const url = `http://127.0.0.1:${port}`;
  return { ...nginx, port, url, stats: () => getCounters(`${url}/stats`) };
}
