// `npm run bench`: what lua-resty-mtls-pool costs in real nginx workers, printed as one table of
// medians from one run (bench/README.md explains every row):
//   (a) cost per call inside an nginx worker (bench/lua/bench/micro.lua)
//   (b) end to end: wrk -> client nginx (2 workers, 8 identities) -> mTLS server nginx
//   (c) Lua memory and idle upstream connections after 100k requests, certificate parsed once,
//       on every request, or loaded from 1,000 rotating PEM pairs
//   (d) against the real lua-resty-http: 0.17.1 (vulnerable), 0.17.2 as released, 0.17.1 patched
//       by resty.mtls_pool and 0.17.2 behind the shim, through the same client nginx
// Bounded by TIME_LIMIT_MS; every process it starts is stopped however it ends (Ctrl-C included).
// RUNTIME= picks where nginx runs, as for npm test; BENCH_PARTS= which parts run (default abcd).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { makeCerts, TENANTS } from "../scripts/certs.js";
import { startClient as startClientNginx, type ClientHandle } from "../scripts/client.js";
import { chooseRuntime } from "../scripts/runtime/choose.js";
import { startNginx } from "../scripts/runtime/nginx.js";
import { freePort, freePorts, sleep } from "../scripts/runtime/processes.js";
import { describeProbe, probeNginx } from "../scripts/runtime/probe.js";
import { cleanupAll, makeTempDir } from "../scripts/runtime/registry.js";
import { REPO } from "../scripts/runtime/runtime.js";
import { runWrk } from "../scripts/runtime/wrk.js";

const TIME_LIMIT_MS = 420_000;
const PARTS = process.env.BENCH_PARTS ?? "abcd";
const IDENTITIES = TENANTS.slice(0, 8);
const WORKERS = 2;
const THREADS = 2;
const CONCURRENCY = 16;
/**
 * (b)'s rounds, a multiple of MODES.length (see roundOrder) in each of BLOCKS blocks. A round's
 * ratio of two modes moves ±15-25 % on 2 busy cores; 24 rounds put the median's own spread near
 * ±3 %, under the 5 % margins of the targets.
 */
const ROUNDS = 24;
/**
 * (b) and (d) run their rounds in this many blocks, each with client nginx processes of its own
 * (and its own warm-up): one set of processes ran its rounds at 1.03-1.07x another's CPU per
 * request in one run and at 0.96-1.03x in the next (memory layout, traces, which core), a bias
 * that more rounds in the same processes cannot average out.
 */
const BLOCKS = 3;
const ROUND_SECONDS = 1;
/**
 * (b) loads each client nginx this long before the rounds, so that the rounds measure pools at
 * their working size; the handshakes of the warm-up are counted too (b8).
 */
const WARMUP_SECONDS = 3;
/** (b) pauses this long after each nokeepalive load, for the server to finish its handshakes. */
const SETTLE_MS = 500;
/**
 * (b)'s modes: spec/support/client_app.lua's three, and a control, "byhand": one pool per
 * identity named by the application (bench/lua/bench/client.lua), without resty.mtls_pool's naming.
 */
const MODES = ["isolated", "shared", "byhand", "nokeepalive"] as const;
/** (d)'s rounds (a multiple of the number of clients in each of BLOCKS blocks) and warm-up per client. */
const D_ROUNDS = 12;
const D_WARMUP_SECONDS = 2;
/**
 * (c) measures Lua memory after every 10,000 requests up to the total. Flatness compares the
 * highest sample of the second half with the highest of the first: caches that empty themselves
 * when full (load_pem_pair's) make memory a sawtooth, and two single samples land at different
 * points of it (±5 %); a leak raises every later sample.
 */
const MEMORY_SAMPLES = Array.from({ length: 10 }, (_, i) => (i + 1) * 10_000);
const MEMORY_REQUESTS = MEMORY_SAMPLES[MEMORY_SAMPLES.length - 1]!;
/** lua-resty-openssl (and the lua-resty-string it may use): measured only when given. */
const OPTIONAL_LIBS = ["LUA_RESTY_OPENSSL_LIB", "LUA_RESTY_STRING_LIB"];
/** (d)'s lua-resty-http releases (lib folders): each client that needs one is skipped without it. */
const HTTP_0171 = "LUA_RESTY_HTTP_0_17_1_LIB";
const HTTP_0172 = "LUA_RESTY_HTTP_0_17_2_LIB";

type Mode = (typeof MODES)[number];
const ROUTES: Record<Mode, string> = {
  isolated: "/?mode=isolated",
  shared: "/?mode=shared",
  byhand: "/by-hand?mode=byhand",
  nokeepalive: "/?mode=nokeepalive",
};
type Lines = Record<string, string>;

/**
 * (d)'s clients: bench/lua/bench/resty_http_client.lua over each lua-resty-http, the release's
 * lib folder named by `lib`; `shim`: dist-lua/shim ahead of it; `patch`: mtls_pool.patch at init.
 */
const HTTP_CLIENTS = {
  v0171: { label: "lua-resty-http 0.17.1 (vulnerable)", lib: HTTP_0171, shim: false, patch: false },
  v0172: { label: "lua-resty-http 0.17.2 as released", lib: HTTP_0172, shim: false, patch: false },
  patch: { label: "ours: mtls_pool.patch over 0.17.1", lib: HTTP_0171, shim: false, patch: true },
  shim: { label: "ours: the shim over 0.17.2", lib: HTTP_0172, shim: true, patch: false },
} as const;
type HttpClient = keyof typeof HTTP_CLIENTS;

const lua = (s: string): string => JSON.stringify(s); // paths and names: no control bytes
const started = Date.now();
/** (c) stops short of MEMORY_REQUESTS rather than overrun TIME_LIMIT_MS on a slow or busy machine. */
const loadDeadline = started + TIME_LIMIT_MS - 15_000;
const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(0)} s`;
const progress = (text: string): boolean => process.stderr.write(`bench [${elapsed()}]: ${text}\n`);

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** "name=value" lines (the answers of /stats, /micro, /mem, /info). */
function parseLines(text: string): Lines {
  const out: Lines = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1);
  }
  return out;
}

/** GET on a new connection each time (so that reuseport spreads them over the workers). */
function get(url: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: ${res.statusCode}\n${body}`)),
      );
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

// ---------------------------------------------------------------------------------------------
// Processes: the mTLS server, the micro-bench nginx, the client nginx, wrk

/** Searched after dist-lua/ and spec/ (as the client nginx does). */
/** lua_package_path entries of the lib folder in environment variable `name`, if set. */
function libPath(name: string): string[] {
  const dir = process.env[name];
  return dir ? [`${dir}/?.lua`, `${dir}/?/init.lua`] : [];
}

const EXTRA_LUA_PATH = [`${REPO}/bench/lua/?.lua`, ...OPTIONAL_LIBS.flatMap(libPath)];
const LUA_PATH = [`${REPO}/dist-lua/?.lua`, `${REPO}/spec/?.lua`, ...EXTRA_LUA_PATH].join(";");

interface Server {
  mtlsPort: number;
  tlsPort: number;
  /** connections (so full TLS handshakes: the client never resumes) the mTLS server accepted */
  handshakes(): number;
}

/** The fixtures' mTLS and TLS servers, plus a log line per new mTLS connection. */
async function startServer(certs: string): Promise<Server> {
  const [mtlsPort, tlsPort] = (await freePorts(2)) as [number, number];
  const prefix = makeTempDir("bench-server");
  const log = path.join(prefix, "logs", "connections.log");
  const tls = `ssl_certificate ${certs}/server.crt;\n    ssl_certificate_key ${certs}/server.key;`;
  const echo = `location / { return 200 "dn=$ssl_client_s_dn conn=$connection reqs=$connection_requests\\n"; }`;
  // keepalive_requests and keepalive_timeout high enough that the server never retires a pooled
  // connection during a run (the client keeps idle ones 300 s: bench/lua/bench/client.lua): the
  // handshakes counted (b8) are then the ones the clients' pools grow by. (With 10,000 requests
  // and the client's 10 s, a 24-round run of ~700k requests made ~260 where 12 rounds made ~210.)
  const body = `
  default_type text/plain;
  keepalive_requests 10000000;
  keepalive_timeout 600s;
  map $connection_requests $new_connection { 1 1; default 0; }
  log_format connection "$connection";
  server {
    listen 127.0.0.1:${mtlsPort} ssl;
    ${tls}
    ssl_client_certificate ${certs}/ca.crt;
    ssl_verify_client on;
    ssl_verify_depth 3;
    access_log ${log} connection if=$new_connection;
    ${echo}
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    ${tls}
    access_log off;
    ${echo}
  }`;
  await startNginx({ prefix, body, ports: [mtlsPort, tlsPort] });
  const handshakes = (): number => readFileSync(log, "utf8").split("\n").length - 1;
  return { mtlsPort, tlsPort, handshakes };
}

const clientTls = (certs: string): string =>
  `lua_package_path "${LUA_PATH};;";\n  lua_ssl_trusted_certificate ${certs}/ca.crt;\n  lua_ssl_verify_depth 3;`;

/** (a)'s groups, each measured by bench/lua/bench/micro.lua in fresh workers. */
const MICRO_GROUPS = ["ffi", "object", "openssl", "connect", "shapes_plain_first", "shapes_mtls_first", "pem"] as const;
/**
 * Fresh workers per group, their rounds pooled: once in ~40 workers the warm loop of a group
 * ran ~3x slower in every round (a LuaJIT trace that came out badly), and with one worker
 * that worker alone made the figure; with three it cannot move the median.
 */
const MICRO_WORKERS = 3;
/** The rows micro.lua answers, as per-round lists ("12.5,13.1,..."); other lines are scalars. */
const MICRO_ROWS = new Set([
  "name_https", "name_warm", "name_cold", "name_first", "parse", "connect_https", "connect_mtls", "connect_by_hand", "pem_warm",
  ...["name_plain", "name_mtls", "name_proxy", "connect_plain", "connect_mtls"].flatMap((shape) =>
    [`shape_${shape}`, `shape_${shape}_reference`]),
]);
/** Counts micro.lua answers per worker, summed over the workers (first_*: the first worker's that is not "none"). */
const MICRO_SUMS = new Set(["traces_warmup", "traces_timed", "traces_timed_library", "aborts_timed"]);

/**
 * (a): runs bench/lua/bench/micro.lua MICRO_WORKERS times per group, each time in a new
 * 1-worker nginx; the name=value answers, each name prefixed with its group ("ffi.name_warm"),
 * rows with the rounds of every worker.
 */
async function runMicro(certs: string, server: Server): Promise<Lines> {
  const out: Lines = {};
  for (const group of MICRO_GROUPS) {
    for (let worker = 0; worker < MICRO_WORKERS; worker++) {
      const port = await freePort();
      const config = `{ certs = ${lua(certs)}, client = ${lua(IDENTITIES[0]!)}, tls_port = ${server.tlsPort}, ` +
        `mtls_port = ${server.mtlsPort}, group = ${lua(group)} }`;
      const nginx = await startNginx({
        body: `
  ${clientTls(certs)}
  server {
    listen 127.0.0.1:${port};
    access_log off;
    location = /micro { content_by_lua_block { require("bench.micro").run(${config}) } }
  }`,
        ports: [port],
      });
      try {
        for (const [key, value] of Object.entries(parseLines(await get(`http://127.0.0.1:${port}/micro`)))) {
          const name = `${group}.${key}`;
          const before = out[name];
          out[name] = before === undefined ? value
            : MICRO_ROWS.has(key) ? `${before},${value}`
            : MICRO_SUMS.has(key) ? String(Number(before) + Number(value))
            : key.startsWith("first_") && before !== "none" ? before : value;
        }
      } finally {
        await nginx.stop();
      }
    }
  }
  return out;
}

type Client = ClientHandle;

/**
 * The client nginx of scripts/client.ts (spec/support/client_app.lua on "/", certificates parsed
 * once per worker) plus bench/lua/bench/client.lua's locations; reuseport so that /mem reaches
 * every worker.
 */
function startClient(certs: string, server: Server): Promise<Client> {
  const bench = 'require("bench.client")';
  return startClientNginx({
    certs, clients: IDENTITIES, upstreamPort: server.mtlsPort, workers: WORKERS, luaPath: EXTRA_LUA_PATH,
    initModules: ["bench.client"], reuseport: true,
    locations: {
      "/per-request": `${bench}.per_request()`,
      "/pem-rotating": `${bench}.pem_rotating()`,
      "/by-hand": `${bench}.by_hand()`,
      "/mem": `${bench}.memory()`,
      "/info": `${bench}.info()`,
    },
  });
}

/**
 * (d)'s client nginx for `which`: bench/lua/bench/resty_http_client.lua over that release of
 * lua-resty-http (undefined when its lib folder is not given).
 */
function startHttpClient(certs: string, server: Server, which: HttpClient): Promise<Client> | undefined {
  const { lib, shim, patch } = HTTP_CLIENTS[which];
  if (!process.env[lib]) return undefined;
  return startClientNginx({
    certs, clients: IDENTITIES, upstreamPort: server.mtlsPort, workers: WORKERS, reuseport: true,
    luaPath: [...(shim ? [`${REPO}/dist-lua/shim/?.lua`] : []), ...EXTRA_LUA_PATH, ...libPath(lib)],
    app: "bench.resty_http_client",
    ...(patch ? { initModules: ["bench.patch_resty_http"] } : {}),
    locations: { "/connect-cost": 'require("bench.resty_http_client").connect_cost()' },
  });
}

/** Lua KB after a full GC, summed over the client's workers (asked until each has answered). */
async function luaMemoryKb(client: Client): Promise<number> {
  const byWorker = new Map<string, number>();
  for (let i = 0; i < 200 && byWorker.size < WORKERS; i++) {
    const { worker, kb } = parseLines(await get(`${client.url}/mem`));
    if (worker !== undefined) byWorker.set(worker, Number(kb));
  }
  if (byWorker.size < WORKERS) throw new Error(`only ${byWorker.size} of ${WORKERS} workers answered /mem`);
  return [...byWorker.values()].reduce((sum, kb) => sum + kb, 0);
}

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** CPU seconds (user + system) the client nginx's workers have used so far, from /proc. */
function cpuSeconds(client: Client): number {
  let ticks = 0;
  for (const pid of client.workerPids()) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // after "pid (comm) ": state is field 3 of proc(5), so utime (14) and stime (15) are 11 and 12
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

/** ESTABLISHED TCP connections to 127.0.0.1:port, seen from the connecting side. */
function establishedTo(port: number): number {
  const ss = spawnSync("ss", ["-Htn", "state", "established", `( dport = :${port} )`], { encoding: "utf8" });
  if (ss.status !== 0) throw new Error(`ss failed: ${ss.stderr}`);
  return ss.stdout.split("\n").filter((line) => line.trim() !== "").length;
}

interface WrkResult {
  rps: number;
  p99Ms: number;
  /** socket errors and non-2xx answers */
  errors: number;
}

function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  if (!rps || !p99) throw new Error(`unexpected wrk output:\n${out}`);
  const unitMs = { us: 0.001, ms: 1, s: 1000 }[p99[2] as "us" | "ms" | "s"];
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const errors = (socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0) + Number(non2xx?.[1] ?? 0);
  return { rps: Number(rps[1]), p99Ms: Number(p99[1]) * unitMs, errors };
}

/** Runs wrk; with `stopWhen`, interrupts it (SIGINT: it still reports) once that says so. */
async function wrk(args: string[], stopWhen?: () => Promise<boolean>): Promise<WrkResult> {
  const all = [`-t${THREADS}`, `-c${CONCURRENCY}`, "--latency", ...args];
  return parseWrk(await runWrk({ args: all, pollMs: 100, ...(stopWhen ? { stopWhen } : {}) }));
}

/** Load on `route` until the client nginx has counted `total` requests (or loadDeadline). */
async function wrkUntil(client: Client, route: string, total: number): Promise<void> {
  const seconds = Math.max(1, Math.floor((loadDeadline - Date.now()) / 1000));
  await wrk([`-d${seconds}s`, client.url + route], async () => ((await client.stats()).requests ?? 0) >= total);
}

// ---------------------------------------------------------------------------------------------
// The three parts

interface ModeResult {
  rps: number[];
  p99Ms: number[];
  /** client nginx CPU µs per request, by round */
  cpuUs: number[];
  requests: number;
  handshakes: number;
  /** handshakes of each block (each a fresh set of client processes and pools) */
  blockHandshakes: number[];
  errors: number;
  /** requests the client nginx answered with an error (its own count) */
  failed: number;
  mismatches: number;
}

/** What (b) and (d) load: a client nginx, the route wrk asks for, a pause after each load. */
interface Contender {
  client: Client;
  route: string;
  settleMs?: number;
}

/**
 * The contenders' order in a round: a Williams design, so that over `names.length` rounds every
 * one runs right after every other once (rotating one order would keep each one's neighbours:
 * isolated ran right after nokeepalive in three rounds of four).
 */
function roundOrder<M extends string>(names: readonly M[], round: number): M[] {
  const n = names.length;
  const first = [0];
  for (let i = 1, low = 1, high = n - 1; i < n; i++) first.push(i % 2 === 1 ? low++ : high--);
  return first.map((m) => names[(m + round) % n]!);
}

/**
 * (b) and (d): a warm-up per contender, then `rounds` rounds, the contenders interleaved in
 * each (roundOrder), one after the other. Counters include the warm-up; req/s, p99 and CPU per
 * request are by round (the table takes medians).
 */
async function runRounds<M extends string>(
  part: string, contenders: Record<M, Contender>, server: Server, warmupSeconds: number, rounds: number,
): Promise<Record<M, ModeResult>> {
  const names = Object.keys(contenders) as M[];
  const results = {} as Record<M, ModeResult>;
  for (const name of names) {
    results[name] = { rps: [], p99Ms: [], cpuUs: [], requests: 0, handshakes: 0, blockHandshakes: [], errors: 0, failed: 0, mismatches: 0 };
  }
  const load = async (name: M, seconds: number): Promise<{ w: WrkResult; cpuUs: number }> => {
    const { client, route, settleMs } = contenders[name];
    const [before, handshakes] = [await client.stats(), server.handshakes()];
    const cpu = cpuSeconds(client);
    const w = await wrk([`-d${seconds}s`, client.url + route]);
    // The server is still busy with nokeepalive's last handshakes and closes when wrk stops: the
    // next mode would start against a stalled server and grow its pools to ride it out.
    if (settleMs !== undefined) await sleep(settleMs);
    const cpuUsed = cpuSeconds(client) - cpu;
    const after = await client.stats();
    const delta = (key: string): number => (after[key] ?? 0) - (before[key] ?? 0);
    if (delta("requests") === 0) throw new Error(`${part} ${name}: the client nginx counted no requests\n${client.readErrorLog().slice(-2000)}`);
    const r = results[name];
    r.requests += delta("requests");
    r.handshakes += server.handshakes() - handshakes;
    r.errors += w.errors; // an upstream failure is a 502 to wrk
    r.failed += delta("errors");
    r.mismatches += delta("mismatches");
    return { w, cpuUs: (cpuUsed * 1e6) / delta("requests") };
  };
  for (const name of names) await load(name, warmupSeconds);
  for (let round = 1; round <= rounds; round++) {
    for (const name of roundOrder(names, round)) {
      const { w, cpuUs } = await load(name, ROUND_SECONDS);
      progress(`${part} round ${round}/${rounds} ${name}: ${int(w.rps)} req/s, p99 ${w.p99Ms.toFixed(2)} ms, ${cpuUs.toFixed(1)} µs CPU/req`);
      results[name].rps.push(w.rps);
      results[name].p99Ms.push(w.p99Ms);
      results[name].cpuUs.push(cpuUs);
    }
  }
  return results;
}

/** Appends `more`'s rounds to `into` and adds its counters. */
function mergeResults<M extends string>(into: Record<M, ModeResult>, more: Record<M, ModeResult>): void {
  for (const name of Object.keys(more) as M[]) {
    const [a, b] = [into[name], more[name]];
    a.rps.push(...b.rps);
    a.p99Ms.push(...b.p99Ms);
    a.cpuUs.push(...b.cpuUs);
    a.requests += b.requests;
    a.handshakes += b.handshakes;
    a.blockHandshakes.push(b.handshakes);
    a.errors += b.errors;
    a.failed += b.failed;
    a.mismatches += b.mismatches;
  }
}

/**
 * BLOCKS times: `start()` the contenders (fresh client nginx processes), runRounds with its
 * warm-up and rounds / BLOCKS rounds, `last` (in the last block only, before they stop), stop
 * them. The results of all blocks together.
 */
async function runBlocks<M extends string, T>(
  part: string, start: () => Promise<Record<M, Contender>>, server: Server, warmupSeconds: number, rounds: number,
  last: (contenders: Record<M, Contender>) => Promise<T>,
): Promise<{ results: Record<M, ModeResult>; last: T }> {
  let all: Record<M, ModeResult> | undefined;
  let lastResult: T | undefined;
  for (let block = 1; block <= BLOCKS; block++) {
    const contenders = await start();
    try {
      progress(`${part} block ${block}/${BLOCKS}: fresh client nginx processes`);
      const results = await runRounds(part, contenders, server, warmupSeconds, rounds / BLOCKS);
      if (all === undefined) {
        all = results;
        for (const r of Object.values<ModeResult>(all)) r.blockHandshakes.push(r.handshakes);
      } else {
        mergeResults(all, results);
      }
      if (block === BLOCKS) lastResult = await last(contenders);
    } finally {
      await Promise.all(Object.values<Contender>(contenders).map((c) => c.client.stop()));
    }
  }
  return { results: all!, last: lastResult as T };
}

/** (b): one client nginx per mode (nokeepalive would close the connections pooled under isolated's names). */
async function runEndToEnd(certs: string, server: Server): Promise<{ results: Record<Mode, ModeResult>; provider: string }> {
  const start = async (): Promise<Record<Mode, Contender>> => {
    const contenders = {} as Record<Mode, Contender>;
    try {
      for (const mode of MODES) {
        contenders[mode] = { client: await startClient(certs, server), route: ROUTES[mode], ...(mode === "nokeepalive" ? { settleMs: SETTLE_MS } : {}) };
      }
    } catch (err) {
      await Promise.all(Object.values<Contender>(contenders).map((c) => c.client.stop()));
      throw err;
    }
    return contenders;
  };
  const { results, last } = await runBlocks("(b)", start, server, WARMUP_SECONDS, ROUNDS,
    async (contenders) => parseLines(await get(`${contenders.isolated.client.url}/info`)).provider ?? "?");
  return { results, provider: last };
}

interface HttpResult extends ModeResult {
  /** connect_cost()'s answer: ns, calls, new; or error */
  cost: Lines;
}

/**
 * (d): a client nginx per lua-resty-http client whose lib folder is given, the rounds of (b),
 * then connect_cost() in each. Undefined when none can run.
 */
async function runAgainstHttp(certs: string, server: Server): Promise<Partial<Record<HttpClient, HttpResult>> | undefined> {
  const start = async (): Promise<Record<HttpClient, Contender>> => {
    const contenders: Partial<Record<HttpClient, Contender>> = {};
    try {
      for (const which of Object.keys(HTTP_CLIENTS) as HttpClient[]) {
        const client = await startHttpClient(certs, server, which);
        if (client) contenders[which] = { client, route: "/" };
      }
    } catch (err) {
      await Promise.all(Object.values(contenders).map((c) => c.client.stop()));
      throw err;
    }
    return contenders as Record<HttpClient, Contender>;
  };
  // Which clients can run depends only on the lib folders given: none, no (d).
  if (!(Object.values(HTTP_CLIENTS) as Array<{ lib: string }>).some(({ lib }) => process.env[lib])) return undefined;
  const { results, last } = await runBlocks("(d)", start, server, D_WARMUP_SECONDS, D_ROUNDS, async (contenders) => {
    const costs: Partial<Record<HttpClient, Lines>> = {};
    for (const [which, { client }] of Object.entries(contenders) as Array<[HttpClient, Contender]>) {
      costs[which] = parseLines(await get(`${client.url}/connect-cost`));
    }
    return costs;
  });
  const out: Partial<Record<HttpClient, HttpResult>> = {};
  for (const which of Object.keys(results) as HttpClient[]) out[which] = { ...results[which], cost: last[which] ?? {} };
  return out;
}

interface MemoryResult {
  /** Lua KB after each of MEMORY_SAMPLES */
  kb: number[];
  requests: number;
  errors: number;
  idle: number;
}

/** (c): a fresh client nginx, MEMORY_REQUESTS requests to `route`, Lua memory at each sample. */
async function runMemory(certs: string, server: Server, route: string): Promise<MemoryResult> {
  const client = await startClient(certs, server);
  try {
    const kb: number[] = [];
    for (const total of MEMORY_SAMPLES) {
      await wrkUntil(client, route, total);
      kb.push(await luaMemoryKb(client));
      progress(`(c) ${route}: ${int(total)} requests, ${int(kb[kb.length - 1]!)} KB`);
    }
    const idle = establishedTo(server.mtlsPort);
    const stats = await client.stats();
    return { kb, requests: stats.requests ?? 0, errors: stats.errors ?? 0, idle };
  } finally {
    await client.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// The table

interface Row {
  id: string;
  what: string;
  value: string;
  detail?: string;
  target?: string;
  verdict?: string;
}

const ns = (v: number): string => (v < 1000 ? `${v.toFixed(0)} ns` : `${(v / 1000).toFixed(v < 10_000 ? 2 : 1)} µs`);
const int = (v: number): string => Math.round(v).toLocaleString("en-US");
/** A ratio, to 2 decimals; to 3 next to `target`, where 2 could round it onto the line. */
const times = (v: number, target?: number): string =>
  `${v.toFixed(target !== undefined && Math.abs(v - target) < 0.005 ? 3 : 2)}×`;
const verdict = (met: boolean): string => (met ? "MET" : "MISSED");

function render(header: string[], sections: Array<{ title: string; rows: Row[] }>): string {
  const columns: Array<[string, keyof Row]> = [
    ["id", "id"], ["measurement", "what"], ["median", "value"], ["detail", "detail"], ["target", "target"],
    ["verdict", "verdict"],
  ];
  const all = sections.flatMap((s) => s.rows);
  const widths = columns.map(([title, key]) => Math.max(title.length, ...all.map((r) => (r[key] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  const out = [...header, "", line(columns.map(([title]) => title)), line(widths.map((w) => "-".repeat(w)))];
  for (const section of sections) {
    out.push(section.title);
    for (const row of section.rows) out.push(line(columns.map(([, key]) => row[key] ?? "")));
  }
  return out.join("\n");
}

/** of[i] / base[i] for each round i: rows or modes compared round by round, measured seconds apart. */
function perRound(of: number[], base: number[]): number[] {
  return base.map((v, i) => of[i]! / v);
}

function microRows(m: Lines): Row[] {
  // Each row's ns per call, by round; rows are compared round by round (measured seconds apart,
  // in the same worker): each provider's warm row with the https row of its own worker.
  const rounds = (key: string): number[] => (m[key] ?? "").split(",").map(Number);
  const num = (key: string): number => median(rounds(key));
  const ratio = (key: string, base: string): number => median(perRound(rounds(key), rounds(base)));
  const rows: Row[] = [{ id: "a1", what: "pool_name, https, no client cert", value: ns(num("ffi.name_https")) }];
  const ids = { ffi: ["a2", "a3", "a18"], object: ["a4", "a5", "a19"], openssl: ["a6", "a7", "a20"] } as const;
  const firstRows: Row[] = [];
  for (const provider of ["ffi", "object", "openssl"] as const) {
    const [warmId, coldId, firstId] = ids[provider];
    const skipped = m[`${provider}.skipped`];
    if (skipped !== undefined) {
      rows.push({ id: warmId, what: `pool_name, mTLS, provider ${provider}`, value: "skipped", detail: skipped });
      continue;
    }
    const [https, warm, cold, first] = ["name_https", "name_warm", "name_cold", "name_first"].map((row) => `${provider}.${row}`) as
      [string, string, string, string];
    const warmRatio = ratio(warm, https);
    const coldRatio = ratio(cold, warm);
    const what = `pool_name, mTLS cold (new objects, proven pair), provider ${provider}`;
    // Issue 13 set the openssl provider's cold identity a target of its own.
    const coldRow: Row = provider === "openssl"
      ? { id: coldId, what, value: ns(num(cold)), detail: `${times(coldRatio)} ${warmId}`, target: "≤ 20 µs",
          verdict: verdict(num(cold) <= 20_000) }
      : { id: coldId, what, value: ns(num(cold)), detail: `${times(coldRatio, 20)} ${warmId}`,
          target: `≥ 20× ${warmId}`, verdict: verdict(coldRatio >= 20) };
    rows.push(
      { id: warmId, what: `pool_name, mTLS warm, provider ${provider}`, value: ns(num(warm)),
        detail: `${times(warmRatio, 1.5)} a1 (a1 in that worker: ${ns(num(https))})`, target: "≤ 1.50× a1", verdict: verdict(warmRatio <= 1.5) },
      coldRow,
    );
    firstRows.push({ id: firstId, what: `pool_name, first proof of a pair, provider ${provider}`, value: ns(num(first)),
      detail: `${times(ratio(first, cold))} ${coldId}: the signature, once per pair and worker (configure() before each call)` });
  }
  rows.push(
    { id: "a8", what: "parse_pem_cert + parse_pem_priv_key", value: ns(num("connect.parse")), detail: "not in a3/a5/a7/a18-a20" },
    { id: "a9", what: "connect + setkeepalive, pooled, https", value: ns(num("connect.connect_https")) },
    { id: "a10", what: "connect + setkeepalive, pooled, mTLS", value: ns(num("connect.connect_mtls")),
      detail: `${times(ratio("connect.connect_mtls", "connect.connect_https"))} a9; ` +
        `${times(ratio("connect.connect_mtls", "connect.connect_by_hand"))} a21` },
  );
  // One call site for every shape, in the two orders the shapes are first compiled in.
  const perWorker = Number(m["shapes_plain_first.rounds"]);
  /**
   * Every later round against the first round of its worker, over the workers; with `relative`,
   * each round's figure divided by the reference loop's timed alongside it.
   */
  const vsFirst = (key: string, relative = false): number[] => {
    const all = relative ? perRound(rounds(key), rounds(`${key}_reference`)) : rounds(key);
    const out: number[] = [];
    for (let at = 0; at < all.length; at += perWorker) {
      const worker = all.slice(at, at + perWorker);
      out.push(...worker.slice(1).map((v) => v / worker[0]! - 1));
    }
    return out;
  };
  const pct = (v: number): string => `${v >= 0 ? "+" : ""}${(100 * v).toFixed(0)}%`;
  const shapeIds = [["a11", "a12", "a13"], ["a14", "a15", "a16"]] as const;
  (["plain", "mtls"] as const).forEach((order, i) => {
    const g = `shapes_${order}_first`;
    const [nameId, connectId, stableId] = shapeIds[i]!;
    const label = `one call site, ${order === "plain" ? "plain" : "mTLS"} first`;
    const nameRatio = ratio(`${g}.shape_name_mtls`, `${g}.shape_name_plain`);
    const shapes = ["name_plain", "name_mtls", "name_proxy", "connect_plain", "connect_mtls"];
    // Each round relative to the reference loop timed alongside it: a slower machine slows both,
    // a trace gone bad only the row. The raw figures are in the detail.
    const later = Object.fromEntries(shapes.map((shape) => [shape, vsFirst(`${g}.shape_${shape}`, true)]));
    const worst = Object.fromEntries(shapes.map((shape) => [shape, Math.max(...later[shape]!)]));
    const worstAll = Math.max(...Object.values(worst));
    const rawWorst = Math.max(...shapes.flatMap((shape) => vsFirst(`${g}.shape_${shape}`)));
    const referenceWorst = Math.max(...shapes.flatMap((shape) => vsFirst(`${g}.shape_${shape}_reference`)));
    // A trace gone bad slows every later round; a busy machine, a few.
    const typical = median(Object.values(later).flat());
    rows.push(
      { id: nameId, what: `${label}: pool_name mTLS / https`, value: times(nameRatio, 1.5),
        detail: `https ${ns(num(`${g}.shape_name_plain`))}, mTLS ${ns(num(`${g}.shape_name_mtls`))}, ` +
          `mTLS via proxy ${ns(num(`${g}.shape_name_proxy`))}; 8 hosts each`,
        target: "≤ 1.50×", verdict: verdict(nameRatio <= 1.5) },
      { id: connectId, what: `${label}: connect + setkeepalive`, value: times(ratio(`${g}.shape_connect_mtls`, `${g}.shape_connect_plain`)),
        detail: `mTLS / https; https ${ns(num(`${g}.shape_connect_plain`))}, mTLS ${ns(num(`${g}.shape_connect_mtls`))}` },
      { id: stableId, what: `${label}: slowest round vs first, relative to a reference loop`, value: pct(worstAll),
        detail: `worst by row: ${shapes.map((shape) => `${shape} ${pct(worst[shape]!)}`).join(", ")}; median later round ` +
          `${pct(typical)}; raw CPU time: slowest round ${pct(rawWorst)}, the reference loop's own slowest ${pct(referenceWorst)}; traces recorded during the timed rounds: ${m[`${g}.traces_timed`]} ` +
          `(${m[`${g}.traces_timed_library`]} in resty.mtls_pool), aborts: ${m[`${g}.aborts_timed`]} (${MICRO_WORKERS} workers; ` +
          `${m[`${g}.traces_warmup`]} traces in the warm-ups; first new trace ${m[`${g}.first_trace`]}; first abort ${m[`${g}.first_abort`]})`,
        target: "≤ +20%", verdict: verdict(worstAll <= 0.2) },
    );
  });
  const pemWarm = num("pem.pem_warm");
  rows.push({ id: "a17", what: "load_pem_pair, warm (leaf + intermediate)", value: ns(pemWarm), target: "≤ 5 µs",
    verdict: verdict(pemWarm <= 5000) }, ...firstRows,
  { id: "a21", what: "connect + setkeepalive, pooled, mTLS, by hand (control)", value: ns(num("connect.connect_by_hand")),
    detail: "the pool named by the caller and connected by support.by_hand_connect: no library code" });
  return rows;
}

/** p99, client CPU per request, handshakes, errors and mismatches of a (b) or (d) contender. */
const loadDetail = (r: ModeResult): string =>
  `p99 ${median(r.p99Ms).toFixed(2)} ms, ${median(r.cpuUs).toFixed(1)} µs CPU/req, ` +
  `${(r.handshakes * 10_000 / r.requests).toFixed(1)} handshakes/10k req, ${r.errors} errors, ${r.mismatches} mismatches`;

function endToEndRows(b: Record<Mode, ModeResult>): Row[] {
  const rps = (mode: Mode): number => median(b[mode].rps);
  const label = {
    isolated: "mode=isolated (ours)",
    shared: "mode=shared (vulnerable)",
    byhand: "control: a pool per identity by hand",
    nokeepalive: "mode=nokeepalive (naive fix)",
  };
  const ids = { isolated: "b1", shared: "b2", byhand: "b3", nokeepalive: "b4" };
  const rows: Row[] = MODES.map((mode) => {
    const r = b[mode];
    return {
      id: ids[mode],
      what: label[mode],
      value: `${int(rps(mode))} req/s`,
      detail: loadDetail(r),
    };
  });
  // Paired by round (both ran in it, seconds apart), so that drift in the machine's load cancels out.
  const ratio = (other: Mode, of: Mode = "isolated", series: "rps" | "cpuUs" = "rps"): { median: number; detail: string } => {
    const ratios = perRound(b[of][series], b[other][series]);
    return { median: median(ratios), detail: `per round: ${ratios.map((r) => times(r)).join(" ")}` };
  };
  const vsShared = ratio("shared");
  const vsClose = ratio("nokeepalive");
  const vsHand = ratio("byhand");
  const cpuVsHand = ratio("byhand", "isolated", "cpuUs");
  // The by-hand control pays for one set of pooled connections per identity, as isolation must.
  const handVsShared = ratio("shared", "byhand");
  const bound = IDENTITIES.length * WORKERS * CONCURRENCY;
  rows.push(
    { id: "b5", what: "req/s isolated / shared", value: times(vsShared.median, 0.95),
      detail: `${vsShared.detail}; control / shared: ${times(handVsShared.median)}`,
      target: "≥ 0.95×", verdict: verdict(vsShared.median >= 0.95) },
    { id: "b6", what: "req/s isolated / nokeepalive", value: times(vsClose.median, 3), detail: vsClose.detail,
      target: "≥ 3×", verdict: verdict(vsClose.median >= 3) },
    { id: "b7", what: "req/s isolated / control", value: times(vsHand.median),
      detail: `${vsHand.detail}: the cost of the naming code alone` },
    { id: "b8", what: "TLS handshakes, isolated, most in a block", value: int(Math.max(...b.isolated.blockHandshakes)),
      detail: `${b.isolated.blockHandshakes.map(int).join(" / ")} in the ${BLOCKS} blocks (each a fresh client nginx, pools ` +
        `empty), ${int(b.isolated.requests)} requests`,
      target: `≤ ${IDENTITIES.length}×${WORKERS}×${CONCURRENCY} = ${bound}`,
      verdict: verdict(Math.max(...b.isolated.blockHandshakes) <= bound) },
    { id: "b9", what: "client CPU/req isolated / control", value: times(cpuVsHand.median, 1.02),
      detail: `${cpuVsHand.detail}; shared / control: ${times(ratio("byhand", "shared", "cpuUs").median)}`,
      target: "≤ 1.02×", verdict: verdict(cpuVsHand.median <= 1.02) },
  );
  return rows;
}

function memoryRows(once: MemoryResult, perRequest: MemoryResult, pem: MemoryResult): Row[] {
  const samples = `${MEMORY_SAMPLES[0]! / 1000}k, ${MEMORY_SAMPLES[1]! / 1000}k, ... ${MEMORY_REQUESTS / 1000}k`;
  const row = (id: string, what: string, r: MemoryResult): Row => ({
    id,
    what,
    value: `${int(r.kb[r.kb.length - 1]!)} KB`,
    detail: `${r.kb.map(int).join(" / ")} KB at ${samples}; ${r.idle} idle upstream conns; ` +
      `${int(r.requests)} requests${r.requests < MEMORY_REQUESTS ? " (time budget)" : ""}, ${r.errors} errors`,
  });
  // A leak grows with every request; a weak table's hash part steps up once, to its high-water
  // mark; a cache that empties itself when full makes a sawtooth.
  const half = MEMORY_SAMPLES.length / 2;
  const flat = (id: string, what: string, r: MemoryResult): Row => {
    const first = Math.max(...r.kb.slice(0, half));
    const second = Math.max(...r.kb.slice(half));
    const growth = second / first - 1;
    const base = row(id, what, r);
    return { ...base, detail: `highest sample ${growth >= 0 ? "+" : ""}${(100 * growth).toFixed(1)}% in the second half ` +
      `(${int(second)} KB against ${int(first)} KB); ${base.detail!}`,
      target: "flat: ≤ +5% 2nd half", verdict: verdict(growth <= 0.05) };
  };
  return [
    row("c1", "Lua memory, cert parsed once", once),
    flat("c2", "Lua memory, cert parsed per request", perRequest),
    flat("c3", "Lua memory, load_pem_pair, 1,000 PEM pairs", pem),
  ];
}

/** (d): each lua-resty-http client, then ours against the vulnerable 0.17.1, round by round. */
function httpRows(d: Partial<Record<HttpClient, HttpResult>> | undefined): Row[] {
  const ids = { v0171: "d1", v0172: "d2", patch: "d3", shim: "d4" };
  const rows: Row[] = (Object.keys(HTTP_CLIENTS) as HttpClient[]).map((which) => {
    const r = d?.[which];
    const { label, lib } = HTTP_CLIENTS[which];
    if (!r) return { id: ids[which], what: label, value: "skipped", detail: `set ${lib} to its lib folder` };
    const cost = r.cost.error !== undefined ? `connect fails: ${r.cost.error}`
      : `connect + set_keepalive ${ns(Number(r.cost.ns))} (pooled; ${r.cost.new} new of ${int(Number(r.cost.calls))})`;
    const allFailed = r.failed >= r.requests;
    return { id: ids[which], what: label, value: allFailed ? "all failed" : `${int(median(r.rps))} req/s`,
      detail: `${allFailed ? `${int(r.failed)} of ${int(r.requests)} requests failed, ${int(median(r.rps))} answers/s; ` : ""}` +
        `${loadDetail(r)}; ${cost}` };
  });
  const base = d?.v0171;
  for (const [id, ours] of [["d5", "patch"], ["d6", "shim"]] as const) {
    const r = d?.[ours];
    if (!base || !r) continue;
    const ratios = perRound(r.rps, base.rps);
    rows.push({ id, what: `req/s ${ours} / 0.17.1 (vulnerable)`, value: times(median(ratios), 0.95),
      detail: `per round: ${ratios.map((v) => times(v)).join(" ")}`, target: "≥ 0.95×", verdict: verdict(median(ratios) >= 0.95) });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const load = os.loadavg()[0]!.toFixed(2); // other work on the machine skews every figure
  const rt = await chooseRuntime(process.env.RUNTIME ?? "auto", progress);
  const probe = await probeNginx();
  progress(describeProbe(probe));
  progress("certificates and the mTLS server");
  const certs = await makeCerts(makeTempDir("bench-certs"));
  const server = await startServer(certs);
  /** by part letter: the table shows them in that order, whatever order they ran in */
  const sections: Record<string, { title: string; rows: Row[] }> = {};
  const notes: string[] = [];
  const skipped = OPTIONAL_LIBS.filter((name) => !process.env[name]);

  if (PARTS.includes("a")) {
    progress(`(a) micro-benchmarks in an nginx worker`);
    const micro = await runMicro(certs, server);
    sections.a = { title: "(a) cost per call inside an nginx worker", rows: microRows(micro) };
    notes.push(
      `(a) time per call, ${MICRO_WORKERS} fresh nginx workers per group (a provider; parse/connect; each shape order; PEM), ` +
        `median of ${MICRO_WORKERS}×${micro["connect.rounds"]} rounds (every row of a worker once per round; ratios are medians ` +
        `of the rounds' ratios); client ${IDENTITIES[0]} (EC P-256); provider ${micro["connect.provider"]} (auto) in the ` +
        `connect, shape and PEM rows` + (skipped.length > 0 ? `; ${skipped.join(", ")} not set: provider openssl skipped` : ""),
    );
  }
  if (PARTS.includes("b")) {
    progress(`(b) ${MODES.join(", ")}: ${BLOCKS} blocks of ${WARMUP_SECONDS} s warm-up and ${ROUNDS / BLOCKS} rounds of ${ROUND_SECONDS} s`);
    const { results, provider } = await runEndToEnd(certs, server);
    sections.b = { title: "(b) end to end through the client nginx to the mTLS server", rows: endToEndRows(results) };
    notes.push(
      `(b) wrk -t${THREADS} -c${CONCURRENCY}, ${BLOCKS} blocks (fresh client nginx processes each) of ${WARMUP_SECONDS} s warm-up then ` +
        `${ROUNDS / BLOCKS} rounds × ${ROUND_SECONDS} s per mode (interleaved, ` +
        `Williams order; 0.5 s pause after nokeepalive), median; a client nginx per mode, ${WORKERS} workers, identity random per ` +
        `request among ${IDENTITIES.length}, provider ${provider}; CPU/req: utime + stime of the client's workers ` +
        `(/proc, ${1000 / CLOCK_TICKS} ms ticks) per round over its requests; mTLS server nginx 1 worker`,
    );
  }
  // (d) before (c): (c) is the part that stops short when the time budget runs out.
  if (PARTS.includes("d")) {
    progress(`(d) the real lua-resty-http: ${BLOCKS} blocks of ${D_WARMUP_SECONDS} s warm-up and ${D_ROUNDS / BLOCKS} rounds of ${ROUND_SECONDS} s`);
    sections.d = { title: "(d) against lua-resty-http 0.17.2 as released (real lua-resty-http in the client nginx)",
      rows: httpRows(await runAgainstHttp(certs, server)) };
    notes.push(
      `(d) a client nginx per lua-resty-http (${WORKERS} workers, httpc:connect(options) + request + set_keepalive, identities in ` +
        `turn among ${IDENTITIES.length}); wrk as (b), ${BLOCKS} blocks of ${D_WARMUP_SECONDS} s warm-up then ${D_ROUNDS / BLOCKS} rounds × ` +
        `${ROUND_SECONDS} s (interleaved, Williams order); then, in the last block, in one worker connect + set_keepalive on pooled ` +
        `connections for ≥ 0.2 s; ` +
        `lib folders from ${HTTP_0171}, ${HTTP_0172}`,
    );
  }
  if (PARTS.includes("c")) {
    const memory = async (what: string, route: string): Promise<MemoryResult> => {
      progress(`(c) ${int(MEMORY_REQUESTS)} requests, ${what}`);
      return runMemory(certs, server, route);
    };
    const once = await memory("certificate parsed once", "/?mode=isolated");
    const perRequest = await memory("certificate parsed per request", "/per-request");
    const pem = await memory("load_pem_pair of 1,000 rotating PEM pairs", "/pem-rotating");
    sections.c = { title: `(c) after ${int(MEMORY_REQUESTS)} requests`, rows: memoryRows(once, perRequest, pem) };
    notes.push(
      `(c) fresh client nginx per row, ${int(MEMORY_REQUESTS)} requests (isolated mode; c2 parses the certificate chain on ` +
        `every request, the key once; c3 takes each request's pair from load_pem_pair, 1,000 distinct PEM pairs in turn, ` +
        `the cache holding 256), Lua KB of both workers after full GCs`,
    );
  }

  const cpus = os.cpus();
  const header = [
    `lua-resty-mtls-pool bench, ${new Date().toISOString()} (${elapsed()}), parts ${PARTS}`,
    `machine: ${cpus[0]?.model ?? "?"}, ${cpus.length} cores; runtime ${rt.name}; nginx ${probe.nginx}; ngx_lua ${probe.ngxLua}; ` +
      `${probe.jit}, LUA52COMPAT ${probe.lua52compat}; ${probe.openssl}; load average at start ${load}`,
    ...notes.sort(),
  ];
  console.log(render(header, [...PARTS].sort().flatMap((part) => sections[part] ?? [])));
}

const watchdog = setTimeout(() => {
  process.stderr.write(`bench: over the ${TIME_LIMIT_MS / 1000} s limit, stopping\n`);
  process.exit(1); // the exit handlers stop nginx and wrk
}, TIME_LIMIT_MS);
watchdog.unref();
try {
  await main();
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
