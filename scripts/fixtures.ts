// The servers integration specs talk to: one nginx with an mTLS server (TCP + unix socket), a
// plain-TLS server and a plain HTTP server, all answering
//   dn=<$ssl_client_s_dn> conn=<$connection> reqs=<$connection_requests>
// and two tinyproxy forward proxies (one with Basic auth). The resumable server (TLS 1.2, session
// cache and tickets, client certificate optional) is where session reuse and certificate-less
// connects can show which identity a connection really carries. The recorder (a Node server) plays
// a proxy that refuses every CONNECT (with a broken answer for the hosts cut.*, garbage.* and
// nostatus.*), and answers `GET /last` with the last CONNECT request it got. The mTLS server logs every request it
// answers (connection, DN, SNI, URI) to mtlsAccessLog, so specs can assert what it saw. A strict
// TLS server (openssl s_server, TLS 1.2) fails the handshake itself on a client certificate it
// cannot verify, where nginx completes it and answers 400.
import net from "node:net";
import path from "node:path";
import { startNginx, type NginxHandle } from "./runtime/nginx.js";
import { freePorts, startProcess, startTinyproxy, type TinyproxyHandle } from "./runtime/processes.js";
import { makeTempDir } from "./runtime/registry.js";

export const PROXY_USER = "proxyuser";
export const PROXY_PASS = "proxypass";

export interface Fixtures {
  certs: string;
  mtlsPort: number;
  mtlsSock: string;
  tlsPort: number;
  httpPort: number;
  proxyPort: number;
  proxyAuthPort: number;
  strictTlsPort: number;
  resumePort: number;
  recordPort: number;
  mtlsAccessLog: string;
  servers: NginxHandle;
  /** the environment specs get (see specEnv) */
  env: Record<string, string>;
  stop(): Promise<void>;
}

const ECHO = `location / { return 200 "dn=$ssl_client_s_dn conn=$connection reqs=$connection_requests\\n"; }`;

/** Starts the servers; `certs` is a directory made by makeCerts. */
export async function startFixtures(certs: string): Promise<Fixtures> {
  const [mtlsPort, tlsPort, httpPort, proxyPort, proxyAuthPort, strictTlsPort, resumePort, recordPort] = (await freePorts(8)) as [
    number, number, number, number, number, number, number, number,
  ];
  const prefix = makeTempDir("servers");
  const mtlsSock = path.join(prefix, "mtls.sock");
  const mtlsAccessLog = path.join(prefix, "logs", "mtls_access.log");
  const serverCert = `ssl_certificate ${certs}/server.crt;\n    ssl_certificate_key ${certs}/server.key;`;
  // Only the root is trusted: dave verifies when the client sends dave-chain.crt (leaf +
  // intermediate), not with the bare leaf, so specs can tell whether a chain was sent.
  const body = `
  default_type text/plain;
  keepalive_requests 10000;
  keepalive_timeout 60s;
  log_format mtls_view '$connection $connection_requests $status "$ssl_client_s_dn" "$ssl_server_name" "$request_uri"';
  server {
    listen 127.0.0.1:${mtlsPort} ssl;
    listen unix:${mtlsSock} ssl;
    ${serverCert}
    ssl_client_certificate ${certs}/ca.crt;
    ssl_verify_client on;
    ssl_verify_depth 3;
    access_log ${mtlsAccessLog} mtls_view;
    ${ECHO}
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    ${serverCert}
    ${ECHO}
  }
  server {
    listen 127.0.0.1:${httpPort};
    ${ECHO}
  }
  server {
    listen 127.0.0.1:${resumePort} ssl;
    ${serverCert}
    ssl_protocols TLSv1.2;
    ssl_session_cache shared:resume:1m;
    ssl_session_tickets on;
    ssl_client_certificate ${certs}/ca.crt;
    ssl_verify_client optional;
    ssl_verify_depth 3;
    location / { return 200 "dn=$ssl_client_s_dn conn=$connection reqs=$connection_requests resumed=$ssl_session_reused\\n"; }
  }`;

  const started: Array<{ stop(): Promise<void> }> = [];
  const stop = async (): Promise<void> => {
    await Promise.all(started.splice(0).map((h) => h.stop()));
  };
  try {
    const servers = await startNginx({ prefix, body, ports: [mtlsPort, tlsPort, httpPort, resumePort], unixSockets: [mtlsSock] });
    started.push(servers);
    const proxies: TinyproxyHandle[] = await Promise.all([
      startTinyproxy({ port: proxyPort }),
      startTinyproxy({ port: proxyAuthPort, basicAuth: { user: PROXY_USER, pass: PROXY_PASS } }),
    ]);
    started.push(...proxies);
    // -www: answers one HTTP/1.0 status page (naming the client certificate) per connection
    const strict = await startProcess({
      label: `openssl s_server on port ${strictTlsPort}`,
      bin: "openssl",
      args: ["s_server", "-quiet", "-accept", `127.0.0.1:${strictTlsPort}`, "-cert", `${certs}/server.crt`,
        "-key", `${certs}/server.key`, "-CAfile", `${certs}/ca.crt`, "-Verify", "3", "-verify_return_error",
        "-tls1_2", "-www"],
      cwd: prefix,
      ports: [strictTlsPort],
    });
    started.push(strict);
    started.push(await startRecorder(recordPort));
    const env = specEnv({
      certs, mtlsPort, mtlsSock, tlsPort, httpPort, proxyPort, proxyAuthPort, strictTlsPort, resumePort, recordPort,
      mtlsAccessLog,
    });
    return {
      certs, mtlsPort, mtlsSock, tlsPort, httpPort, proxyPort, proxyAuthPort, strictTlsPort, resumePort, recordPort,
      mtlsAccessLog, servers, env, stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The CONNECT recorder described at the top of this file. */
async function startRecorder(port: number): Promise<{ stop(): Promise<void> }> {
  let last = "";
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let head = "";
    socket.on("data", (chunk) => {
      head += chunk.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      const request = head.slice(0, end + 4);
      if (request.startsWith("GET /last ")) {
        socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(last, "latin1")}\r\nConnection: close\r\n\r\n${last}`, "latin1");
        return;
      }
      last = request;
      // CONNECT <host>:<port>: the host's first label picks a broken answer, to compare messages
      const label = /^CONNECT ([^.:]*)/.exec(request)?.[1] ?? "";
      const answers: Record<string, string> = {
        cut: "HTTP/1.1 403 Forbidden\r\n", // closed before the blank line
        garbage: "garbage\r\n\r\n",
        nostatus: "HTTP/1.1 abc\r\n\r\n",
      };
      socket.end(answers[label] ?? "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "latin1");
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The environment variables through which specs find the fixtures. */
function specEnv(f: Omit<Fixtures, "servers" | "env" | "stop">): Record<string, string> {
  return {
    MTLS_POOL_CERTS: f.certs,
    MTLS_SERVER_PORT: String(f.mtlsPort),
    MTLS_SERVER_SOCK: f.mtlsSock,
    TLS_SERVER_PORT: String(f.tlsPort),
    HTTP_SERVER_PORT: String(f.httpPort),
    PROXY_PORT: String(f.proxyPort),
    PROXY_AUTH_PORT: String(f.proxyAuthPort),
    PROXY_AUTH_USER: PROXY_USER,
    PROXY_AUTH_PASS: PROXY_PASS,
    STRICT_TLS_PORT: String(f.strictTlsPort),
    RESUME_SERVER_PORT: String(f.resumePort),
    RECORD_SERVER_PORT: String(f.recordPort),
    MTLS_ACCESS_LOG: f.mtlsAccessLog,
  };
}
