/**
 * patch(http) for lua-resty-http: its table-form httpc:connect(options) then goes through
 * resty.mtls_pool.http_connect, so an application that already uses lua-resty-http gets pool
 * names with the client identity from one line at start-up.
 */
import { weak_keys } from "./bounded";
import connect = require("./http_connect");
import type { ConnectOptions } from "./target";

type Connect = (this: void, httpc: HttpClient, options: unknown, ...rest: unknown[]) => LuaMultiReturn<unknown[]>;

/** The parts of the resty.http module patch() touches. */
export interface HttpModule {
  connect?: Connect;
}

// Modules already patched; weak so that patching keeps nothing alive.
const patched = weak_keys<HttpModule, true>();

/**
 * patch(http): makes lua-resty-http's table-form httpc:connect(options) use our connect.
 * Idempotent; the other call forms (host, port[, opts] and "unix:" paths) are untouched.
 */
function patch(http: HttpModule): LuaMultiReturn<[HttpModule, undefined] | [undefined, string]> {
  if (typeof http !== "object" || typeof http.connect !== "function") {
    return $multi(undefined, "bad http module: expected the table require(\"resty.http\") returns");
  }
  if (patched.get(http)) {
    return $multi(http, undefined);
  }
  const original = http.connect;
  http.connect = (httpc: HttpClient, options: unknown, ...rest: unknown[]): LuaMultiReturn<unknown[]> => {
    if (typeof options === "object") {
      return connect(httpc, options as ConnectOptions);
    }
    return original(httpc, options, ...rest);
  };
  patched.set(http, true);
  return $multi(http, undefined);
}

export { patch };
