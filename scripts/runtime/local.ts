// Local runtime: this machine's nginx (Debian's nginx + libnginx-mod-http-lua, or OpenResty),
// started as a plain child process in its own process group.
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import path from "node:path";
import { spawnTracked } from "./processes.js";
import type { Runtime } from "./runtime.js";

const DEBIAN_PACKAGES = "nginx libnginx-mod-http-lua lua-resty-core";

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

export interface LocalNginx {
  bin: string;
  modules: string[];
}

/**
 * Finds nginx and how to get ngx_lua into it: NGINX_BIN, else OpenResty, else `nginx` in PATH.
 * OpenResty (or any build with lua-nginx-module compiled in) needs nothing; a distro nginx needs
 * `load_module` of ndk + ngx_lua from its --modules-path. Throws a one-line reason when absent.
 */
export function findLocalNginx(): LocalNginx {
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
  // source builds name the module dir lua-nginx-module; OpenResty's bundle names it ngx_lua-<ver>
  if (/lua-nginx-module|ngx_lua-|openresty\//.test(v)) return { bin, modules: [] };
  const dir = /--modules-path=(\S+)/.exec(v)?.[1] ?? "/usr/lib/nginx/modules";
  const modules = ["ndk_http_module.so", "ngx_http_lua_module.so"].map((m) => path.join(dir, m));
  const absent = modules.filter((m) => !existsSync(m));
  if (absent.length > 0) throw new Error(`${bin} has no ngx_lua: ${absent.join(", ")} not found; ${missing}`);
  return { bin, modules };
}

export function localRuntime(nginx: LocalNginx): Runtime {
  return {
    name: "local",
    modules: nginx.modules,
    root: process.getuid?.() === 0,
    launch: async (spec) =>
      spawnTracked(nginx.bin, ["-p", `${spec.prefix}/`, "-c", "conf/nginx.conf"], {
        cwd: spec.cwd,
        env: spec.env,
        gracefulSignal: "SIGQUIT",
        label: "nginx",
        ...(spec.onOutput ? { onOutput: spec.onOutput } : {}),
      }),
  };
}
