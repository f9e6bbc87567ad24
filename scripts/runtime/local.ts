// Local runtime: nginx (+ ngx_lua) and tinyproxy started as plain child processes on loopback.
// Every process and temp dir created here is registered, so that whatever happens (normal exit,
// Ctrl-C, SIGTERM, uncaught error) the runner kills what it started, by pid, and cleans up.
import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const DEBIAN_PACKAGES = "nginx libnginx-mod-http-lua lua-resty-core";

export interface NginxInfo {
  bin: string;
  /** first line of `nginx -V`, e.g. "nginx version: nginx/1.22.1" */
  version: string;
  /** absolute .so paths to `load_module` (empty when ngx_lua is built in, as in OpenResty) */
  modules: string[];
}

export interface ProcessHandle {
  pid: number;
  /** resolves once the process has exited (never rejects) */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** graceful stop (nginx: SIGQUIT), then SIGTERM, then SIGKILL of the process and its children */
  stop(): Promise<void>;
}

export interface NginxHandle extends ProcessHandle {
  prefix: string;
  errorLog: string;
  readErrorLog(): string;
}

export interface NginxOptions {
  /** `http {}` contents, or with `main: true` the whole main-context body (events {}, http {}, ...) */
  body: string;
  main?: boolean;
  /** prefix dir (from makeTempDir) when the caller needs its path in advance; else one is made */
  prefix?: string;
  masterProcess?: boolean; // default true
  workers?: number; // default 1
  errorLogLevel?: string; // default "info"
  /** set in the child's environment and passed through to Lua with `env NAME;` */
  env?: Record<string, string>;
  /** TCP ports on 127.0.0.1 and unix socket paths that must accept connections before we return */
  ports?: number[];
  unixSockets?: string[];
  cwd?: string;
  startTimeoutMs?: number; // default 10 s
  /** receives stdout and stderr chunks; by default they are kept for error messages only */
  onOutput?: (chunk: Buffer) => void;
}

// ---------------------------------------------------------------------------------------------
// Registry of live processes and temp dirs, cleaned up on any exit.

const live = new Set<number>();
const tempDirs: string[] = [];
let handlersInstalled = false;

export const keepTmp = process.env.KEEP_TMP === "1";

/** Pids whose parent is `pid` (nginx workers of a master), read from /proc. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // "pid (comm) state ppid ...": comm may contain spaces, so parse after the last ')'
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process went away while we were looking
    }
  }
  return out;
}

/** SIGKILL a process and its direct children (an nginx master's workers survive it otherwise). */
function killTree(pid: number): void {
  for (const p of [...childPids(pid), pid]) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Synchronous last-resort cleanup, safe to call from an 'exit' handler. */
function cleanupNow(): void {
  for (const pid of live) killTree(pid);
  live.clear();
  if (keepTmp) return;
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", cleanupNow);
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig} received: stopping every process we started\n`);
      cleanupNow();
      process.exit(code);
    });
  }
  const fatal = (err: unknown): void => {
    process.stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    cleanupNow();
    process.exit(1);
  };
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", fatal);
}

/** A fresh temp dir under os.tmpdir(), removed at exit unless KEEP_TMP=1. */
export function makeTempDir(label: string): string {
  installHandlers();
  const dir = mkdtempSync(path.join(os.tmpdir(), `mtls-pool-${label}-`));
  tempDirs.push(dir);
  return dir;
}

/** Kills whatever is still running and removes the temp dirs (unless KEEP_TMP=1); returns them. */
export function cleanupAll(): string[] {
  const dirs = [...tempDirs];
  cleanupNow();
  return dirs;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Spawns a registered child; its output goes to `onOutput` and to a bounded tail for errors. */
function spawnTracked(
  bin: string,
  args: string[],
  opts: {
    cwd: string;
    env?: Record<string, string>;
    onOutput?: (chunk: Buffer) => void;
    /** first signal of stop(): SIGQUIT is nginx's graceful shutdown */
    gracefulSignal: NodeJS.Signals;
  },
): { handle: ProcessHandle; outputTail: () => string } {
  installHandlers();
  const child = spawn(bin, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error(`cannot spawn ${bin}; is it installed? (bash scripts/install-deps.sh)`);
  const pid = child.pid;
  live.add(pid);
  let output = "";
  const onData = (chunk: Buffer): void => {
    output = (output + chunk.toString("utf8")).slice(-4000);
    opts.onOutput?.(chunk);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("error", (err) => {
      output += `\n${err.message}`;
      live.delete(pid);
      resolve({ code: null, signal: null });
    });
    child.on("close", (code, signal) => {
      live.delete(pid);
      resolve({ code, signal });
    });
  });
  let done = false;
  void exited.then(() => (done = true));

  // true once exited, false after `ms`; the timer is cleared so it cannot hold the event loop open
  const waitExit = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(done), ms);
      void exited.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  const stop = async (): Promise<void> => {
    const steps: Array<[NodeJS.Signals, number]> = [[opts.gracefulSignal, 5000], ["SIGTERM", 3000]];
    for (const [signal, graceMs] of steps) {
      if (done) return;
      try {
        process.kill(pid, signal);
      } catch {
        return; // already gone
      }
      if (await waitExit(graceMs)) return;
    }
    killTree(pid);
    await exited;
  };
  return { handle: { pid, exited, stop }, outputTail: () => output };
}

// ---------------------------------------------------------------------------------------------
// Ports and readiness

function listenAnyPort(): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => resolve(srv));
  });
}

/** `count` distinct TCP ports free on 127.0.0.1 right now (bind port 0 for each, read, close). */
export async function freePorts(count: number): Promise<number[]> {
  // all listeners stay open until every port is read, so the kernel cannot hand one out twice
  const servers = await Promise.all(Array.from({ length: count }, listenAnyPort));
  const ports = servers.map((srv) => (srv.address() as net.AddressInfo).port);
  await Promise.all(servers.map((srv) => new Promise((resolve) => srv.close(resolve))));
  return ports;
}

/** A TCP port that is free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

function canConnect(target: { port: number; host: string } | { path: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(target);
    sock.setTimeout(500);
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("timeout", () => {
      sock.destroy();
      resolve(false);
    });
    sock.once("error", () => resolve(false));
  });
}

/** Refuses ports that already answer: readiness checks would mistake their owner for ours. */
async function ensureFree(ports: number[]): Promise<void> {
  for (const port of ports) {
    if (await canConnect({ port, host: "127.0.0.1" })) throw new Error(`127.0.0.1:${port} is already in use`);
  }
}

/** Waits until every port/socket accepts a connection; fails early if the process exits. */
async function waitReady(
  what: string,
  handle: ProcessHandle,
  ports: number[],
  sockets: string[],
  timeoutMs: number,
  diagnostics: () => string,
): Promise<void> {
  let exited = false;
  void handle.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  const pending: Array<{ port: number; host: string } | { path: string }> = [
    ...ports.map((port) => ({ port, host: "127.0.0.1" })),
    ...sockets.map((p) => ({ path: p })),
  ];
  while (pending.length > 0) {
    if (exited || Date.now() > deadline) {
      const why = exited ? "exited during startup" : `not ready after ${timeoutMs} ms`;
      const waiting = pending.map((t) => ("path" in t ? t.path : `127.0.0.1:${t.port}`)).join(", ");
      await handle.stop();
      throw new Error(`${what} ${why} (waiting for ${waiting})\n${diagnostics()}`);
    }
    if (await canConnect(pending[0]!)) pending.shift();
    else await sleep(50);
  }
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

// ---------------------------------------------------------------------------------------------
// nginx

function inPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

let nginxInfo: NginxInfo | undefined;

/**
 * Finds nginx and how to get ngx_lua into it: NGINX_BIN, else OpenResty, else `nginx` in PATH.
 * OpenResty (or any build with lua-nginx-module compiled in) needs nothing; a distro nginx needs
 * `load_module` of ndk + ngx_lua from its --modules-path.
 */
export function findNginx(): NginxInfo {
  if (nginxInfo) return nginxInfo;
  const missing = `install them with: apt-get install -y ${DEBIAN_PACKAGES} (or install OpenResty, or set NGINX_BIN)`;
  const bin =
    process.env.NGINX_BIN ??
    inPath("openresty") ??
    (existsSync("/usr/local/openresty/nginx/sbin/nginx") ? "/usr/local/openresty/nginx/sbin/nginx" : undefined) ??
    inPath("nginx");
  if (bin === undefined) throw new Error(`nginx not found; ${missing}`);
  const res = spawnSync(bin, ["-V"], { encoding: "utf8" });
  if (res.error) throw new Error(`cannot run ${bin} -V: ${res.error.message}; ${missing}`);
  const v = `${res.stdout}${res.stderr}`; // nginx -V prints to stderr
  const version = v.split("\n")[0] ?? bin;
  // source builds name the module dir lua-nginx-module; OpenResty's bundle names it ngx_lua-<ver>
  if (/lua-nginx-module|ngx_lua-|openresty\//.test(v)) {
    nginxInfo = { bin, version, modules: [] };
    return nginxInfo;
  }
  const dir = /--modules-path=(\S+)/.exec(v)?.[1] ?? "/usr/lib/nginx/modules";
  const modules = ["ndk_http_module.so", "ngx_http_lua_module.so"].map((m) => path.join(dir, m));
  const absent = modules.filter((m) => !existsSync(m));
  if (absent.length > 0) throw new Error(`${bin} has no ngx_lua: ${absent.join(", ")} not found; ${missing}`);
  nginxInfo = { bin, version, modules };
  return nginxInfo;
}

/** Writes <prefix>/conf/nginx.conf, starts nginx in the foreground and waits for its listeners. */
export async function startNginx(opts: NginxOptions): Promise<NginxHandle> {
  const info = findNginx();
  const prefix = opts.prefix ?? makeTempDir("nginx");
  // workers run as `nobody` when we are root: let them into the prefix (temp files, sockets)
  await chmod(prefix, 0o755);
  for (const d of ["logs", "conf", "tmp"]) await mkdir(path.join(prefix, d), { recursive: true });
  const errorLog = path.join(prefix, "logs", "error.log");
  const env = opts.env ?? {};
  // Distro builds default their temp/log paths to /var/lib/nginx, /var/log/nginx: keep all in prefix.
  const httpDefaults = [
    `access_log ${prefix}/logs/access.log;`,
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `${t}_temp_path ${prefix}/tmp/${t};`),
  ].join("\n  ");
  const body = opts.main
    ? opts.body
    : `events { worker_connections 1024; }\nhttp {\n  ${httpDefaults}\n${opts.body}\n}`;
  const conf = [
    ...info.modules.map((m) => `load_module ${m};`),
    "daemon off;",
    `master_process ${opts.masterProcess === false ? "off" : "on"};`,
    // As root, workers would run as `nobody` and could not read the test keys in our 0700 temp dirs.
    ...(process.getuid?.() === 0 && opts.masterProcess !== false ? ["user root;"] : []),
    `worker_processes ${opts.workers ?? 1};`,
    `pid ${prefix}/logs/nginx.pid;`,
    `error_log ${errorLog} ${opts.errorLogLevel ?? "info"};`,
    ...Object.keys(env).map((name) => `env ${name};`),
    body,
    "",
  ].join("\n");
  await writeFile(path.join(prefix, "conf", "nginx.conf"), conf);
  await ensureFree(opts.ports ?? []);

  const { handle, outputTail } = spawnTracked(info.bin, ["-p", `${prefix}/`, "-c", "conf/nginx.conf"], {
    cwd: opts.cwd ?? prefix,
    env,
    gracefulSignal: "SIGQUIT",
    ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
  });
  const readErrorLog = (): string => readOrEmpty(errorLog);
  await waitReady(
    `nginx (${prefix})`,
    handle,
    opts.ports ?? [],
    opts.unixSockets ?? [],
    opts.startTimeoutMs ?? 10_000,
    () => `--- output:\n${tail(outputTail(), 20)}\n--- ${errorLog} (tail):\n${tail(readErrorLog(), 20)}`,
  );
  return { ...handle, prefix, errorLog, readErrorLog };
}

// ---------------------------------------------------------------------------------------------
// any other server process

/** A server process (e.g. `openssl s_server`), ready once every port accepts connections. */
export async function startProcess(opts: {
  label: string;
  bin: string;
  args: string[];
  cwd: string;
  ports: number[];
}): Promise<ProcessHandle> {
  await ensureFree(opts.ports);
  const { handle, outputTail } = spawnTracked(opts.bin, opts.args, { cwd: opts.cwd, gracefulSignal: "SIGTERM" });
  await waitReady(opts.label, handle, opts.ports, [], 10_000, () => `--- output:\n${tail(outputTail(), 20)}`);
  return handle;
}

// ---------------------------------------------------------------------------------------------
// tinyproxy

export interface TinyproxyHandle extends ProcessHandle {
  dir: string;
  logFile: string;
}

/** A forward proxy on 127.0.0.1:port that allows CONNECT to any port, optionally with Basic auth. */
export async function startTinyproxy(opts: {
  port: number;
  basicAuth?: { user: string; pass: string };
}): Promise<TinyproxyHandle> {
  const dir = makeTempDir("tinyproxy");
  const logFile = path.join(dir, "tinyproxy.log");
  // No ConnectPort line: tinyproxy then allows CONNECT to every port. No User/Group: as root,
  // tinyproxy 1.11 only warns ("You SHOULD set a UserName") and keeps running as root, which
  // spares us making the temp dir writable for nobody.
  const conf = [
    "Listen 127.0.0.1",
    `Port ${opts.port}`,
    "Allow 127.0.0.1",
    "Timeout 600",
    "MaxClients 100",
    "LogLevel Info",
    `LogFile "${logFile}"`,
    `PidFile "${path.join(dir, "tinyproxy.pid")}"`,
    ...(opts.basicAuth ? [`BasicAuth ${opts.basicAuth.user} ${opts.basicAuth.pass}`] : []),
    "",
  ].join("\n");
  const confFile = path.join(dir, "tinyproxy.conf");
  await writeFile(confFile, conf);
  await ensureFree([opts.port]);
  const { handle, outputTail } = spawnTracked("tinyproxy", ["-d", "-c", confFile], {
    cwd: dir,
    gracefulSignal: "SIGTERM",
  });
  await waitReady(`tinyproxy on port ${opts.port}`, handle, [opts.port], [], 10_000, () =>
    `--- output:\n${tail(outputTail(), 20)}\n--- ${logFile} (tail):\n${tail(readOrEmpty(logFile), 20)}`,
  );
  return { ...handle, dir, logFile };
}
