// One interface over where nginx runs: the local runtime (this machine's nginx + ngx_lua) or
// the container runtime (an image of docker/Dockerfile). Everything else (fixture servers,
// wrk, the test runner) runs on this machine in both; nginx listens on 127.0.0.1 in both.
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Spawned } from "./processes.js";

/** The repository (this file runs as .build/scripts/runtime/runtime.js). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export interface LaunchSpec {
  /** nginx's prefix (conf/nginx.conf inside), a dir made by makeTempDir */
  prefix: string;
  /** set in nginx's environment (and passed to Lua with `env NAME;`) */
  env: Record<string, string>;
  cwd: string;
  onOutput?: (chunk: Buffer) => void;
}

export interface Runtime {
  /** "local" or "container <row>" */
  name: string;
  /** absolute .so paths to `load_module` (empty when ngx_lua is built in, as in OpenResty) */
  modules: string[];
  /** nginx's master runs as root (so workers need `user root;` to read our 0700 temp dirs) */
  root: boolean;
  /** starts nginx -p <prefix>/ -c conf/nginx.conf in the foreground */
  launch(spec: LaunchSpec): Promise<Spawned>;
}

export class UsageError extends Error {}

/**
 * Folders of upstream libraries (never committed: given by the environment), each holding a
 * `resty/` tree; specs and bench rows using them skip loudly when unset. Containers get them
 * mounted. The last two: the lua-resty-http releases bench/run.ts's part (d) compares.
 */
export const OPTIONAL_LIBS = [
  "LUA_RESTY_OPENSSL_LIB", "LUA_RESTY_STRING_LIB", "LUA_RESTY_HTTP_LIB", "LUA_RESTY_HTTP_0_17_1_LIB", "LUA_RESTY_HTTP_0_17_2_LIB",
];

let current: Runtime | undefined;

export function setRuntime(runtime: Runtime): void {
  current = runtime;
}

/** The runtime chosen with chooseRuntime() (scripts/runtime/choose.ts). */
export function runtime(): Runtime {
  if (current === undefined) throw new Error("no runtime chosen: call chooseRuntime() first");
  return current;
}
