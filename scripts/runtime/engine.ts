// The Docker engine of the container runtime: DOCKER_HOST, else the default socket; as root with
// none running, dockerd is started the way this machine kind allows (no bridge, no iptables:
// containers use the host's network) and registered, so that it is stopped by pid at the end.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import { spawnTracked, sleep, tail, type ProcessHandle } from "./processes.js";

const DEFAULT_SOCKET = "/var/run/docker.sock";
const START_TIMEOUT_MS = 60_000;

export interface Engine {
  /** the DOCKER_HOST value to reach it */
  host: string;
  /** set when this process started dockerd */
  dockerd?: ProcessHandle;
}

/** GET /_ping on a DOCKER_HOST (unix:// or tcp://): true when it answers OK within 3 s, else why not. */
function ping(host: string): Promise<true | string> {
  return new Promise((resolve) => {
    const target = host.startsWith("unix://")
      ? { socketPath: host.slice("unix://".length) }
      : (() => {
          const url = new URL(host.replace(/^tcp:/, "http:"));
          return { host: url.hostname, port: Number(url.port || 2375) };
        })();
    const req = http.get({ ...target, path: "/_ping", timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? true : `answers ${res.statusCode} to /_ping`);
    });
    req.on("timeout", () => req.destroy(new Error("no answer within 3 s")));
    req.on("error", (err: NodeJS.ErrnoException) =>
      resolve(err.code === "EACCES" ? "is not accessible (permission denied: root or the docker group)" :
        err.code === "ENOENT" ? "absent" : `does not answer (${err.code ?? err.message})`));
  });
}

/** The engine already running, or why there is none (one line). */
export async function findEngine(): Promise<{ engine?: Engine; why: string }> {
  const configured = process.env.DOCKER_HOST;
  if (configured) {
    const answer = await ping(configured);
    if (answer === true) return { engine: { host: configured }, why: `DOCKER_HOST=${configured} answers` };
    return { why: `no Docker engine: DOCKER_HOST=${configured} ${answer}` };
  }
  const host = `unix://${DEFAULT_SOCKET}`;
  const answer = await ping(host);
  if (answer === true) return { engine: { host }, why: `${DEFAULT_SOCKET} answers` };
  return { why: `no Docker engine (DOCKER_HOST unset, ${DEFAULT_SOCKET} ${answer})` };
}

const canStartDockerd = (): boolean =>
  process.getuid?.() === 0 && spawnSync("sh", ["-c", "command -v dockerd"], { stdio: "ignore" }).status === 0;

/** Why `ensureEngine` could start none, or undefined when it can. */
export function cannotStartWhy(): string | undefined {
  if (process.getuid?.() !== 0) return "not root, so dockerd cannot be started here";
  if (!canStartDockerd()) return "dockerd is not installed (bash scripts/install-deps.sh --containers)";
  return undefined;
}

/** The running engine, or a dockerd started now (root only); throws a one-line reason. */
export async function ensureEngine(log: (line: string) => void): Promise<Engine> {
  const found = await findEngine();
  if (found.engine) return found.engine;
  const cannot = process.env.DOCKER_HOST ? "DOCKER_HOST is set, so no dockerd is started" : cannotStartWhy();
  if (cannot !== undefined) throw new Error(`container runtime: ${found.why}; ${cannot}`);
  log("container runtime: starting dockerd --bridge=none --iptables=false --ip6tables=false");
  // A stale pid file from a killed dockerd makes a new one refuse to start.
  const pidFile = "/var/run/docker.pid";
  if (existsSync(pidFile)) {
    const old = Number(readFileSync(pidFile, "utf8").trim());
    if (!(old > 0 && existsSync(`/proc/${old}`))) spawnSync("rm", ["-f", pidFile]);
  }
  const { handle, outputTail } = spawnTracked("dockerd", ["--bridge=none", "--iptables=false", "--ip6tables=false"], {
    cwd: "/",
    gracefulSignal: "SIGTERM",
    label: "dockerd",
  });
  const host = `unix://${DEFAULT_SOCKET}`;
  let exited = false;
  void handle.exited.then(() => (exited = true));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while ((await ping(host)) !== true) {
    if (exited || Date.now() > deadline) {
      await handle.stop();
      const why = exited ? "exited" : `did not answer within ${START_TIMEOUT_MS / 1000} s`;
      throw new Error(`container runtime: dockerd ${why}; its last lines:\n${tail(outputTail(), 8)}`);
    }
    await sleep(200);
  }
  return { host, dockerd: handle };
}
