// The one launcher of nginx, whatever the runtime: writes <prefix>/conf/nginx.conf, starts it
// through runtime().launch and waits for its listeners.
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { childPids, makeTempDir } from "./registry.js";
import { ensureFree, readOrEmpty, tail, waitReady, type ProcessHandle } from "./processes.js";
import { runtime } from "./runtime.js";

export interface NginxHandle extends ProcessHandle {
  prefix: string;
  errorLog: string;
  readErrorLog(): string;
  /** the master's worker processes (pids of this machine) */
  workerPids(): number[];
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

export async function startNginx(opts: NginxOptions): Promise<NginxHandle> {
  const rt = runtime();
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
    ...rt.modules.map((m) => `load_module ${m};`),
    "daemon off;",
    `master_process ${opts.masterProcess === false ? "off" : "on"};`,
    // As root, workers would run as `nobody` and could not read the test keys in our 0700 temp dirs.
    ...(rt.root && opts.masterProcess !== false ? ["user root;"] : []),
    `worker_processes ${opts.workers ?? 1};`,
    `pid ${prefix}/logs/nginx.pid;`,
    `error_log ${errorLog} ${opts.errorLogLevel ?? "info"};`,
    ...Object.keys(env).map((name) => `env ${name};`),
    body,
    "",
  ].join("\n");
  await writeFile(path.join(prefix, "conf", "nginx.conf"), conf);
  await ensureFree(opts.ports ?? []);

  const { handle, outputTail } = await rt.launch({
    prefix,
    env,
    cwd: opts.cwd ?? prefix,
    ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
  });
  const readErrorLog = (): string => readOrEmpty(errorLog);
  await waitReady(
    `nginx (${rt.name}, ${prefix})`,
    handle,
    opts.ports ?? [],
    opts.unixSockets ?? [],
    opts.startTimeoutMs ?? 10_000,
    () => `--- output:\n${tail(outputTail(), 20)}\n--- ${errorLog} (tail):\n${tail(readErrorLog(), 20)}`,
  );
  return { ...handle, prefix, errorLog, readErrorLog, workerPids: () => childPids(handle.pid) };
}
