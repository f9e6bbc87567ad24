// What a runtime's nginx really is, read from inside a worker: nginx and ngx_lua versions,
// jit.version, whether LuaJIT has LUA52COMPAT (then `#t` honours a __len metamethod), and the
// OpenSSL that nginx's libcrypto reports.
import { freePort } from "./processes.js";
import { startNginx } from "./nginx.js";

export interface Probe {
  nginx: string;
  ngxLua: string;
  jit: string;
  lua52compat: string;
  openssl: string;
}

const LUA = `
    local ffi = require "ffi"
    ffi.cdef "const char *OpenSSL_version(int type);"
    local function version(n) return ("%d.%d.%d"):format(n / 1000000, n / 1000 % 1000, n % 1000) end
    ngx.say("nginx=", version(ngx.config.nginx_version))
    ngx.say("ngxLua=", version(ngx.config.ngx_lua_version))
    ngx.say("jit=", jit and jit.version or "none")
    local t = setmetatable({}, { __len = function() return 7 end })
    ngx.say("lua52compat=", #t == 7 and "on" or "off")
    ngx.say("openssl=", ffi.string(ffi.C.OpenSSL_version(0)))`;

export async function probeNginx(): Promise<Probe> {
  const port = await freePort();
  const nginx = await startNginx({
    ports: [port],
    body: `  server {\n    listen 127.0.0.1:${port};\n    location / { content_by_lua_block {${LUA}\n    } }\n  }`,
  });
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (!res.ok) throw new Error(`probe: ${res.status} ${text}\n${nginx.readErrorLog().slice(-1000)}`);
    const field = (name: string): string => new RegExp(`^${name}=(.*)$`, "m").exec(text)?.[1] ?? "?";
    return { nginx: field("nginx"), ngxLua: field("ngxLua"), jit: field("jit"), lua52compat: field("lua52compat"), openssl: field("openssl") };
  } finally {
    await nginx.stop();
  }
}

/** The one line test runs print and the matrix reads back. */
export const describeProbe = (p: Probe): string =>
  `inside nginx: nginx ${p.nginx}, ngx_lua ${p.ngxLua}, ${p.jit}, LUA52COMPAT ${p.lua52compat}, ${p.openssl}`;

export function parseProbe(line: string): Probe | undefined {
  const m = /^inside nginx: nginx (\S+), ngx_lua (\S+), (.+), LUA52COMPAT (on|off), (.+)$/m.exec(line);
  return m ? { nginx: m[1]!, ngxLua: m[2]!, jit: m[3]!, lua52compat: m[4]!, openssl: m[5]! } : undefined;
}
