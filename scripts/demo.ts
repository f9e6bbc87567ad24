// `npm run demo`: the problem and the fix, side by side, against real processes.
// An nginx mTLS server (ssl_verify_client on) echoes the client DN it authenticated and its
// connection number; a client nginx with one worker sends alice, bob, alice, bob through
// pooled connections, first with an identity-less pool name (how lua-resty-http <= 0.17.1
// names pools), then with resty.mtls_pool's pool names. RUNTIME= picks where nginx runs (as
// for npm test). "every process stopped" is printed once the registry has checked it.
import { makeCerts } from "./certs.js";
import { startClient, type ClientHandle } from "./client.js";
import { chooseRuntime } from "./runtime/choose.js";
import { startNginx } from "./runtime/nginx.js";
import { freePort } from "./runtime/processes.js";
import { describeProbe, probeNginx } from "./runtime/probe.js";
import { cleanupAll, makeTempDir } from "./runtime/registry.js";

const SEQUENCE = ["alice", "bob", "alice", "bob"] as const;

interface Row {
  who: string;
  dn: string;
  conn: string;
  reused: boolean;
  wrong: boolean;
}

async function send(client: ClientHandle, who: string, mode: string): Promise<Row> {
  const response = await fetch(`${client.url}/?id=${who}&mode=${mode}`, { signal: AbortSignal.timeout(10_000) });
  const text = (await response.text()).trim();
  const field = (name: string): string => new RegExp(`${name}=(\\S*)`).exec(text)?.[1] ?? "?";
  if (!text.startsWith("id=")) throw new Error(`client nginx answered: ${text}`);
  return { who, dn: field("dn"), conn: field("conn"), reused: field("reused") !== "0", wrong: field("mismatch") !== "0" };
}

function verdict(label: string, rows: Row[]): string {
  const wrong = rows.filter((r) => r.wrong).length;
  const reused = rows.filter((r) => r.reused).length;
  return wrong > 0
    ? `${label}: UNSAFE, ${wrong} of ${rows.length} requests reached the server as another client`
    : `${label}: safe, ${rows.length} of ${rows.length} requests as their own client, ${reused} on reused connections`;
}

const started = Date.now();

async function main(): Promise<void> {
  await chooseRuntime(process.env.RUNTIME ?? "auto");
  console.log(describeProbe(await probeNginx()));
  const certs = await makeCerts(makeTempDir("certs"));
  const port = await freePort();
  await startNginx({
    ports: [port],
    body: `
  keepalive_requests 10000;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${certs}/server.crt;
    ssl_certificate_key ${certs}/server.key;
    ssl_client_certificate ${certs}/ca.crt;
    ssl_verify_client on;
    location / { return 200 "dn=$ssl_client_s_dn conn=$connection\\n"; }
  }`,
  });
  const client = await startClient({ certs, clients: ["alice", "bob"], upstreamPort: port, workers: 1 });

  const shared: Row[] = [];
  const isolated: Row[] = [];
  for (const who of SEQUENCE) shared.push(await send(client, who, "shared"));
  for (const who of SEQUENCE) isolated.push(await send(client, who, "isolated"));

  const cell = (r: Row): string =>
    `${r.dn.padEnd(10)} ${r.conn.padStart(5)}  ${(r.reused ? "reused" : "fresh").padEnd(6)}  ${r.wrong ? "WRONG" : "ok"}`;
  // conn#: the server's connection number ($connection); pooled: fresh or reused from the pool
  const header = `${"server saw".padEnd(10)} ${"conn#".padStart(5)}  ${"pooled".padEnd(6)}  check`;
  console.log("");
  console.log(`${"".padEnd(9)}| identity-less pool name (<= 0.17.1)  | resty.mtls_pool`);
  console.log(`${"request".padEnd(9)}| ${header.padEnd(36)} | ${header}`);
  console.log(`${"-".repeat(9)}+${"-".repeat(38)}+${"-".repeat(37)}`);
  shared.forEach((row, i) => console.log(`${row.who.padEnd(9)}| ${cell(row).padEnd(36)} | ${cell(isolated[i]!)}`));
  console.log("");
  console.log(verdict("identity-less pool name", shared));
  console.log(verdict("resty.mtls_pool        ", isolated));
  if (isolated.some((r) => r.wrong)) throw new Error("resty.mtls_pool served a request as another client");
}

let ok = false;
try {
  await main();
  ok = true;
} catch (err) {
  console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  const { leftovers } = await cleanupAll();
  if (leftovers.length > 0) {
    console.error(`demo: still running after cleanup: ${leftovers.join(", ")}`);
    process.exitCode = 1;
  } else if (ok) {
    console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s; every process stopped)`);
  }
}
