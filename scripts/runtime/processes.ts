// Processes started on this machine (nginx of the local runtime, tinyproxy, openssl s_server,
// wrk, dockerd), free ports, and waiting for listeners. Each process gets its own process group
// (spawn's `detached`), registered with the registry: stopping it stops every process it made.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { groupMembers, killGroup, makeTempDir, register } from "./registry.js";

export interface ProcessHandle {
  /** the process (nginx: the master), as a pid of this machine */
  pid: number;
  /** resolves once it has exited and its output is read (never rejects) */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** sends a signal (nginx: SIGHUP reloads, SIGTERM is a fast shutdown) */
  signal(sig: NodeJS.Signals): void;
  /** graceful stop (nginx: SIGQUIT), then SIGTERM, then SIGKILL of everything it started */
  stop(): Promise<void>;
}

export interface Spawned {
  handle: ProcessHandle;
  /** the last 4000 characters of its stdout and stderr */
  outputTail: () => string;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** true once `p` settled, false after `ms`; the timer cannot hold the event loop open. */
export function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Escalating stop shared by both runtimes: `graceful` then SIGTERM, each given its time, then
 * `kill` (SIGKILL of the whole group or container); resolves once `exited` has.
 */
export async function stopEscalating(
  exited: Promise<unknown>,
  signal: (sig: NodeJS.Signals) => void,
  graceful: NodeJS.Signals,
  kill: () => void,
): Promise<void> {
  for (const [sig, graceMs] of [[graceful, 5000], ["SIGTERM", 3000]] as const) {
    if (await settlesWithin(exited, 0)) return;
    signal(sig);
    if (await settlesWithin(exited, graceMs)) return;
  }
  kill();
  await exited;
}

/** Spawns a registered child in its own process group; output goes to `onOutput` and a tail. */
export function spawnTracked(
  bin: string,
  args: string[],
  opts: {
    cwd: string;
    env?: Record<string, string>;
    onOutput?: (chunk: Buffer) => void;
    /** first signal of stop(): SIGQUIT is nginx's graceful shutdown */
    gracefulSignal: NodeJS.Signals;
    label?: string;
  },
): Spawned {
  const child = spawn(bin, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // a process group of its own: see killGroup
  });
  if (child.pid === undefined) throw new Error(`cannot spawn ${bin}; is it installed? (bash scripts/install-deps.sh)`);
  const pid = child.pid;
  let output = "";
  const onData = (chunk: Buffer): void => {
    output = (output + chunk.toString("utf8")).slice(-4000);
    opts.onOutput?.(chunk);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const streamsClosed = new Promise<void>((resolve) => child.on("close", () => resolve()));
  // On 'exit', whatever is left of the group (an orphaned worker holding our pipes) is killed;
  // then the output already in the pipes is read, for at most 2 s.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("error", (err) => {
      output += `\n${err.message}`;
      resolve({ code: null, signal: null });
    });
    child.on("exit", (code, signal) => {
      killGroup(pid);
      void settlesWithin(streamsClosed, 2000).then(() => resolve({ code, signal }));
    });
  });
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  const stop = (): Promise<void> => stopEscalating(exited, signal, opts.gracefulSignal, () => killGroup(pid));
  // stays registered after it exits: cleanupAll() checks its group is empty
  register({
    label: `${opts.label ?? path.basename(bin)} (pid ${pid})`,
    stop,
    kill: () => killGroup(pid),
    alive: async () => groupMembers(pid).length > 0,
  });
  return { handle: { pid, exited, signal, stop }, outputTail: () => output };
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
export async function ensureFree(ports: number[]): Promise<void> {
  for (const port of ports) {
    if (await canConnect({ port, host: "127.0.0.1" })) throw new Error(`127.0.0.1:${port} is already in use`);
  }
}

/** Waits until every port/socket accepts a connection; fails early if the process exits. */
export async function waitReady(
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

export function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

export function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

// ---------------------------------------------------------------------------------------------
// fixture processes: they run on this machine in every runtime (only nginx is under test)

/** A server process (e.g. `openssl s_server`), ready once every port accepts connections. */
export async function startProcess(opts: {
  label: string;
  bin: string;
  args: string[];
  cwd: string;
  ports: number[];
}): Promise<ProcessHandle> {
  await ensureFree(opts.ports);
  const { handle, outputTail } = spawnTracked(opts.bin, opts.args, {
    cwd: opts.cwd,
    gracefulSignal: "SIGTERM",
    label: opts.label,
  });
  await waitReady(opts.label, handle, opts.ports, [], 10_000, () => `--- output:\n${tail(outputTail(), 20)}`);
  return handle;
}

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
