-- In-worker micro-benchmarks of resty.mtls_pool, for bench/run.ts. run() measures everything in
-- the worker that serves the request and answers "name=value" lines: the runtime versions, then
-- nanoseconds per call, each the median of ROUNDS timed rounds (monotonic clock, GC run between
-- rounds, certificate parsing kept out of the timed loops).
local ffi = require "ffi"
local ssl = require "ngx.ssl"
local mtls_pool = require "resty.mtls_pool"
local connect = require "resty.mtls_pool.http_connect"
local helpers = require "support.helpers"

local C = ffi.C
local parse_pem_cert = ssl.parse_pem_cert
local parse_pem_priv_key = ssl.parse_pem_priv_key
local pool_name = mtls_pool.pool_name
local tcp = ngx.socket.tcp

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } mtls_bench_timespec;
int clock_gettime(int clock_id, mtls_bench_timespec *tp);
]]
pcall(ffi.cdef, "const char *OpenSSL_version(int type);") -- lua-resty-openssl may have declared it

local ROUNDS = 5 -- odd: the median is one of them
local NAME_CALLS = 100000 -- per round, pool_name with a warm identity cache
local COLD_CALLS = 300 -- per round, pool_name with fresh cert/key objects (parsing them is slow)
local CONNECT_CALLS = 10000 -- per round, connect + setkeepalive on a pooled connection
local CLOCK_MONOTONIC = 1
local PROVIDERS = { "ffi", "object", "openssl" }

local _M = {}

local timespec = ffi.new("mtls_bench_timespec")

local function now_ns()
  C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1e9 + tonumber(timespec.tv_nsec)
end

-- Median over ROUNDS of the ns per call of body(n, input), input = prepare(n) made untimed.
local function measure(n, body, prepare)
  local per_call = {}
  for round = 1, ROUNDS do
    local input = prepare and prepare(n)
    collectgarbage()
    local start = now_ns()
    body(n, input)
    per_call[round] = (now_ns() - start) / n
  end
  table.sort(per_call)
  return per_call[(ROUNDS + 1) / 2]
end

local function check(ok, err)
  if not ok then
    error(err, 2)
  end
  return ok
end

-- n fresh { cert, key } objects parsed from the same PEM.
local function parser(cert_pem, key_pem)
  return function(n)
    local objects = {}
    for i = 1, n do
      objects[i] = { check(parse_pem_cert(cert_pem)), check(parse_pem_priv_key(key_pem)) }
    end
    return objects
  end
end

local function name_loop(options)
  return function(n)
    for _ = 1, n do
      check(pool_name(options))
    end
  end
end

-- pool_name with a new cert/key object each call: identity cache misses, so digest + key check.
local function cold_loop(options)
  return function(n, objects)
    for i = 1, n do
      local pair = objects[i]
      options.ssl_client_cert, options.ssl_client_priv_key = pair[1], pair[2]
      check(pool_name(options))
    end
  end
end

local function connect_keepalive(options)
  local httpc = { sock = tcp() }
  check(connect(httpc, options))
  local reused = httpc.sock:getreusedtimes()
  check(httpc.sock:setkeepalive(60000, 16))
  return reused
end

-- connect + setkeepalive, each on a pooled connection (one is made and pooled first).
local function connect_loop(options)
  connect_keepalive(options)
  return function(n)
    for _ = 1, n do
      if connect_keepalive(options) == 0 then
        error("connect opened a new connection: the pool was not warm")
      end
    end
  end
end

local function with(options, extra)
  local copy = {}
  for k, v in pairs(options) do
    copy[k] = v
  end
  for k, v in pairs(extra) do
    copy[k] = v
  end
  return copy
end

-- config: { certs = dir, client = name, tls_port = n, mtls_port = n }
function _M.run(config)
  local lines = {}
  local function put(name, value)
    lines[#lines + 1] = name .. "=" .. tostring(value) .. "\n"
  end
  put("rounds", ROUNDS)
  put("ngx_lua", ngx.config.ngx_lua_version)
  put("luajit", jit.version)
  put("openssl", ffi.string(C.OpenSSL_version(0)))

  local cert_pem = helpers.read_file(config.certs .. "/" .. config.client .. ".crt")
  local key_pem = helpers.read_file(config.certs .. "/" .. config.client .. ".key")
  local fresh = parser(cert_pem, key_pem)
  local cert, key = check(parse_pem_cert(cert_pem)), check(parse_pem_priv_key(key_pem))
  local https = { scheme = "https", host = "127.0.0.1", port = config.tls_port, ssl_server_name = "localhost" }
  local mtls = with(https, { port = config.mtls_port, ssl_client_cert = cert, ssl_client_priv_key = key })

  put("name_https", measure(NAME_CALLS, name_loop(https)))
  for _, provider in ipairs(PROVIDERS) do
    local ok, err = mtls_pool.configure({ provider = provider })
    if ok then
      put("name_warm_" .. provider, measure(NAME_CALLS, name_loop(mtls)))
      put("name_cold_" .. provider, measure(COLD_CALLS, cold_loop(with(mtls, {})), fresh))
    else
      put("skipped_" .. provider, err)
    end
  end
  check(mtls_pool.configure({ provider = "auto" }))
  put("provider", mtls_pool.provider())
  put("parse", measure(COLD_CALLS, fresh))
  put("connect_https", measure(CONNECT_CALLS, connect_loop(https)))
  put("connect_mtls", measure(CONNECT_CALLS, connect_loop(mtls)))
  ngx.print(table.concat(lines))
end

return _M
