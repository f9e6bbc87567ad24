// The "client nginx": requests to it are proxied, one upstream GET each, to the mTLS server
// through resty.mtls_pool.http_connect, as the client named in ?id= (see spec/support/client_app.lua).
// Used by the demo (bench/run.ts takes only REPO from here).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, startNginx, type NginxHandle } from "./runtime/local.js";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", ".."); // .build/scripts/

export interface ClientOptions {
  certs: string;
  /** client names whose <name>.crt/.key are in `certs`; requests without ?id= pick one at random */
  clients: readonly string[];
  /** the mTLS server: a TCP port on 127.0.0.1, or a unix socket path */
  upstreamPort?: number;
  upstreamSock?: string;
  workers?: number;
  /** extra lua_package_path entries (e.g. lua-resty-openssl's lib folder), searched after dist-lua */
  luaPath?: string[];
  errorLogLevel?: string;
}

export interface ClientHandle extends NginxHandle {
  port: number;
  url: string;
  /** the counters of GET /stats, summed over workers where they are per worker */
  stats(): Promise<Record<string, number>>;
}

const luaString = (s: string): string => JSON.stringify(s); // paths and names: no control bytes

export async function startClient(opts: ClientOptions): Promise<ClientHandle> {
  const port = await freePort();
  const luaPath = [`${REPO}/dist-lua/?.lua`, `${REPO}/spec/?.lua`, ...(opts.luaPath ?? [])].join(";");
  const init = [
    luaString(opts.certs),
    `{ ${opts.clients.map(luaString).join(", ")} }`,
    opts.upstreamPort === undefined ? "nil" : String(opts.upstreamPort),
    opts.upstreamSock === undefined ? "nil" : luaString(opts.upstreamSock),
  ].join(", ");
  const body = `
  lua_package_path "${luaPath};;";
  lua_ssl_trusted_certificate ${opts.certs}/ca.crt;
  lua_ssl_verify_depth 3;
  lua_shared_dict stats 1m;
  lua_socket_pool_size 64;
  init_worker_by_lua_block { require("support.client_app").init(${init}) }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    keepalive_requests 1000000;
    location = /stats { content_by_lua_block { require("support.client_app").stats() } }
    location / { content_by_lua_block { require("support.client_app").handle() } }
  }`;
  const nginx = await startNginx({
    body,
    workers: opts.workers ?? 1,
    ports: [port],
    ...(opts.errorLogLevel ? { errorLogLevel: opts.errorLogLevel } : {}),
  });
  const url = `http://127.0.0.1:${port}`;
  const stats = async (): Promise<Record<string, number>> => {
    const text = await (await fetch(`${url}/stats`, { signal: AbortSignal.timeout(10_000) })).text();
    const out: Record<string, number> = {};
    for (const line of text.trim().split("\n")) {
      const [key, value] = line.split("=");
      if (key && value) out[key] = Number(value);
    }
    return out;
  };
  return { ...nginx, port, url, stats };
}
