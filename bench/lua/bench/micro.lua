-- In-worker micro-benchmarks of resty.mtls_pool, for bench/run.ts. run() measures everything in
-- the worker that serves the request and answers "name=value" lines: the runtime versions, then
-- for each row the nanoseconds per call of each of ROUNDS timed rounds, comma-separated
-- (the worker thread's CPU clock, so that time the machine gave to other processes is not
-- counted; GC run before each, certificate parsing kept out of the timed loops). The
-- rows run round-robin, every row once per round, so that rows compared with each other (warm
-- mTLS with plain https, say) are measured seconds apart, under the same load on the machine.
local ffi = require "ffi"
local jutil = require "jit.util"
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

local ROUNDS = 5 -- per worker; bench/run.ts pools the rounds of 3 workers
local NAME_CALLS = 100000 -- per round, pool_name with a warm identity cache
local COLD_CALLS = 300 -- per round, pool_name with fresh cert/key objects (parsing them is slow)
local FIRST_CALLS = 100 -- per round, pool_name with fresh objects of a pair never proven (signature)
local CONNECT_CALLS = 10000 -- per round, connect + setkeepalive on a pooled connection
local SHAPE_CALLS = 1000000 -- per round and shape, pool_name at one call site for every shape
local SHAPE_CONNECTS = 20000 -- per round and shape, connect + setkeepalive at one call site
local SHAPE_WARMUP_ROUNDS = 2 -- untimed rounds of every shape in turn, before the timed ones
local PEM_CALLS = 100000 -- per round, load_pem_pair of a known pair
-- CPU time of this thread: a round preempted by wrk or another nginx on a 2-core machine would
-- otherwise count the time it waited (single rounds of the shape rows measured up to +80 %).
local CLOCK_THREAD_CPUTIME_ID = 3

local _M = {}

local timespec = ffi.new("mtls_bench_timespec")

local function now_ns()
  C.clock_gettime(CLOCK_THREAD_CPUTIME_ID, timespec)
  return tonumber(timespec.tv_sec) * 1e9 + tonumber(timespec.tv_nsec)
end

local function check(ok, err)
  if not ok then
    error(err, 2)
  end
  return ok
end

-- A fixed workload that touches no code of resty.mtls_pool: timed alongside the shape rows, it
-- tells a round in which the machine ran this worker slower (every row and the reference slow
-- down together: frequency, a busy sibling core, steal) from one in which our code did.
local REFERENCE_CHUNKS = 10 -- a shape row's calls are timed in this many chunks, each after ...
local REFERENCE_CALLS = 1000000 -- ... this many iterations of the reference loop (~1 ms)
local reference_items = {}
for i = 1, 8 do
  reference_items[i] = { host = "host" .. i .. ".example", port = 443 + i }
end

local function reference_loop(n)
  local sum = 0
  for i = 1, n do
    local item = reference_items[i % 8 + 1]
    if item.host then
      sum = sum + item.port
    end
  end
  return sum
end

-- Times each row once per round, round-robin; returns row name -> { ns per call, by round }, and
-- with `reference`, row name -> { ns per reference iteration timed alongside it, by round }.
-- With `reference` the GC is also stopped while a row runs (after the full collection): a connect
-- allocates ~0.7 KB (the cosocket objects of this bench and of ngx_lua), and where the
-- collector's steps fell moved a round by up to ~35 %.
-- A row: { name, calls = n, body = function(n, input), prepare = function(n) (untimed) }.
local function measure(rows, rounds, reference)
  local per_call, per_reference = {}, {}
  for _, row in ipairs(rows) do
    per_call[row.name], per_reference[row.name] = {}, {}
  end
  for round = 1, rounds or ROUNDS do
    for _, row in ipairs(rows) do
      local input = row.prepare and row.prepare(row.calls)
      collectgarbage()
      if reference then
        collectgarbage("stop")
        local row_ns, reference_ns = 0, 0
        for _ = 1, REFERENCE_CHUNKS do
          local start = now_ns()
          reference_loop(REFERENCE_CALLS)
          local middle = now_ns()
          row.body(row.calls / REFERENCE_CHUNKS, input)
          local stop = now_ns()
          reference_ns, row_ns = reference_ns + (middle - start), row_ns + (stop - middle)
        end
        per_call[row.name][round] = row_ns / row.calls
        per_reference[row.name][round] = reference_ns / (REFERENCE_CHUNKS * REFERENCE_CALLS)
        collectgarbage("restart")
      else
        local start = now_ns()
        row.body(row.calls, input)
        per_call[row.name][round] = (now_ns() - start) / row.calls
      end
    end
  end
  return per_call, per_reference
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

-- A copy of the closure `fn` with bytecode of its own, so that LuaJIT compiles each row's loop on
-- its own: rows made from one closure share its loop's trace, and every row but the first would
-- run on side exits from a trace recorded for another row's options.
local function own_trace(fn)
  local copy = assert(load(string.dump(fn)))
  local i = 1
  while debug.getupvalue(fn, i) do
    debug.upvaluejoin(copy, i, fn, i)
    i = i + 1
  end
  return copy
end

local function name_loop(options)
  return own_trace(function(n)
    for _ = 1, n do
      check(pool_name(options))
    end
  end)
end

-- pool_name with a new cert/key object each call: the identity cache misses, so digest, key
-- secret and a remembered proof (the pair was proven before, in an earlier call).
local function cold_loop(options)
  return own_trace(function(n, objects)
    for i = 1, n do
      local pair = objects[i]
      options.ssl_client_cert, options.ssl_client_priv_key = pair[1], pair[2]
      check(pool_name(options))
    end
  end)
end

-- The same, as the first use of the pair in the worker: configure() forgets every identity and
-- proof, so each call proves possession with a signature (and includes configure(): ~1 µs).
local function first_proof_loop(options, provider)
  return own_trace(function(n, objects)
    local settings = { provider = provider }
    for i = 1, n do
      local pair = objects[i]
      options.ssl_client_cert, options.ssl_client_priv_key = pair[1], pair[2]
      check(mtls_pool.configure(settings))
      check(pool_name(options))
    end
  end)
end

local function connect_keepalive(options, connect_fn)
  local httpc = { sock = tcp() }
  check((connect_fn or connect)(httpc, options))
  local reused = httpc.sock:getreusedtimes()
  check(httpc.sock:setkeepalive(60000, 16))
  return reused
end

-- connect + setkeepalive, each on a pooled connection (one is made and pooled first); with
-- resty.mtls_pool.http_connect, or `connect_fn`.
local function connect_loop(options, connect_fn)
  connect_keepalive(options, connect_fn)
  return own_trace(function(n)
    for _ = 1, n do
      if connect_keepalive(options, connect_fn) == 0 then
        error("connect opened a new connection: the pool was not warm")
      end
    end
  end)
end

-- One call site for every shape of options, as in an application (or lua-resty-http's connect):
-- `lists` are option tables of several shapes, each list is run through the same loop, so that
-- LuaJIT compiles it once for whichever shape came first and every other shape runs on its exits.
local function shared_name_loop(n, list)
  local count = #list
  for i = 1, n do
    check(pool_name(list[i % count + 1]))
  end
end

local function shared_connect_loop(n, list)
  local count = #list
  for i = 1, n do
    if connect_keepalive(list[i % count + 1]) == 0 then
      error("connect opened a new connection: the pool was not warm")
    end
  end
end

-- The shapes, each with 8 hosts (pool_name) or 8 caller-named pools (connect, `pool =
-- "shape<i>"`, to the bench's servers):
-- plain https, mTLS, and mTLS through a proxy (pool_name only: no proxy is running).
local function shapes(config, cert, key)
  local name_lists, connect_lists = {}, {}
  for _, shape in ipairs({ "plain", "mtls", "proxy" }) do
    local names, connects = {}, {}
    for i = 1, 8 do
      local o = { scheme = "https", host = "host" .. i .. ".example", port = 443, ssl_server_name = "host" .. i }
      local c = { scheme = "https", host = "127.0.0.1", port = config.tls_port, ssl_server_name = "localhost",
                  pool = "shape" .. i }
      if shape ~= "plain" then
        o.ssl_client_cert, o.ssl_client_priv_key = cert, key
        c.ssl_client_cert, c.ssl_client_priv_key, c.port = cert, key, config.mtls_port
      end
      if shape == "proxy" then
        o.proxy_opts = { https_proxy = "http://127.0.0.1:3128" }
      end
      names[i], connects[i] = o, c
    end
    name_lists[shape] = names
    connect_lists[shape] = shape ~= "proxy" and connects or nil
  end
  return name_lists, connect_lists
end

-- Where LuaJIT's trace event (func, pc) is: "file:line", and whether that is resty.mtls_pool's
-- code (dist-lua/) rather than this bench's or nginx's.
local function location(func, pc)
  local info = jutil.funcinfo(func, pc)
  return tostring(info.loc or info.source), (info.source or ""):find("/dist-lua/", 1, true) ~= nil
end

-- Runs fn() with a trace hook on (jit.attach: the events jit.v prints); returns fn's result, the
-- traces LuaJIT recorded meanwhile (root and side traces), how many of them started in
-- resty.mtls_pool's code, the aborts, and where the first trace started and the first abort
-- happened ("none" when none). The hook only stores: formatting
-- inside it would run Lua code in the middle of a recording. Every start is logged (info).
local function count_traces(fn)
  local recorded, aborts, starts, first_abort = 0, 0, {}, nil
  local function on_trace(what, tr, func, pc, otr, oex)
    if what == "start" then
      starts[#starts + 1] = { tr, func, pc, otr, oex }
    elseif what == "stop" then
      recorded = recorded + 1
    elseif what == "abort" then
      aborts = aborts + 1
      first_abort = first_abort or { func, pc, otr }
    end
  end
  jit.attach(on_trace, "trace")
  local result = fn()
  jit.attach(on_trace)
  local in_library = 0
  for i, s in ipairs(starts) do
    local where, ours = location(s[2], s[3])
    in_library = in_library + (ours and 1 or 0)
    -- "<trace>@<where>", and "<parent trace>/<exit>" for a side trace
    starts[i] = s[1] .. "@" .. where .. (s[4] and (" from " .. s[4] .. "/" .. tostring(s[5])) or "")
  end
  ngx.log(ngx.INFO, "traces started: ", table.concat(starts, ", "))
  local abort = first_abort and (location(first_abort[1], first_abort[2]) .. " error " .. tostring(first_abort[3]))
  return result, recorded, in_library, aborts, starts[1] or "none", abort or "none"
end

-- config: { certs = dir, client = name, tls_port = n, mtls_port = n, group = g }. The groups run
-- in fresh workers (bench/run.ts starts an nginx for each), so that no provider's cold path (whose
-- traces and aborts may flush or blacklist shared code) slows another's warm rows:
--   "ffi", "object", "openssl": pool_name for https, then mTLS warm, cold (new objects of a
--                  proven pair) and first proof with that provider
--   "connect": PEM parsing, then connect + setkeepalive on pooled https and mTLS connections,
--                  and on a pooled mTLS connection by hand (support.by_hand_connect)
--   "shapes_plain_first", "shapes_mtls_first": pool_name and connect at one call site for every
--                  shape, the shapes first run (and so compiled) in that order
--   "pem": load_pem_pair of a known leaf + intermediate chain and key
function _M.run(config)
  local lines = {}
  local function put(name, value)
    lines[#lines + 1] = name .. "=" .. tostring(value) .. "\n"
  end
  local function report(rows, per_call)
    for _, row in ipairs(rows) do
      put(row.name, table.concat(per_call[row.name], ","))
    end
    ngx.print(table.concat(lines))
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
  local mtls = helpers.merged(https, { port = config.mtls_port, ssl_client_cert = cert, ssl_client_priv_key = key })

  local rows
  local order = config.group:match("^shapes_(%a+)_first$")
  if order then
    check(mtls_pool.configure({ provider = "auto" }))
    put("provider", mtls_pool.provider())
    local names, connects = shapes(config, cert, key)
    local shape_order = order == "plain" and { "plain", "mtls", "proxy" } or { "mtls", "proxy", "plain" }
    local _, warmup_traces = count_traces(function()
      rows = {}
      for _, shape in ipairs(shape_order) do
        -- the first calls compile the shared loops for this order
        shared_name_loop(SHAPE_CALLS, names[shape])
        rows[#rows + 1] = { name = "shape_name_" .. shape, calls = SHAPE_CALLS,
                            body = function(n) shared_name_loop(n, names[shape]) end }
        if connects[shape] then
          for _, o in ipairs(connects[shape]) do
            connect_keepalive(o)
          end
          shared_connect_loop(SHAPE_CONNECTS, connects[shape])
          rows[#rows + 1] = { name = "shape_connect_" .. shape, calls = SHAPE_CONNECTS,
                              body = function(n) shared_connect_loop(n, connects[shape]) end }
        end
      end
      measure(rows, SHAPE_WARMUP_ROUNDS, true)
    end)
    -- The claim of one trace per loop, checked: after the warm-up, the timed rounds (every
    -- shape, in turn) must record no new trace and abort none.
    local per_call, per_reference
    local _, traces, in_library, aborts, first_trace, first_abort = count_traces(function()
      per_call, per_reference = measure(rows, ROUNDS, true)
    end)
    put("traces_warmup", warmup_traces)
    put("traces_timed", traces)
    put("traces_timed_library", in_library)
    put("aborts_timed", aborts)
    put("first_trace", first_trace)
    put("first_abort", first_abort)
    for _, row in ipairs(rows) do
      put(row.name .. "_reference", table.concat(per_reference[row.name], ","))
    end
    report(rows, per_call)
    return
  elseif config.group == "pem" then
    check(mtls_pool.configure({ provider = "auto" }))
    put("provider", mtls_pool.provider())
    -- 8 pairs, each loaded once first: warm, and not the same strings every call (a loop over
    -- one pair is loop-invariant, and LuaJIT hoists the whole lookup out of it)
    local chain_pem = helpers.read_file(config.certs .. "/dave-chain.crt")
    local dave_key_pem = helpers.read_file(config.certs .. "/dave.key")
    local pems, loaded = {}, {}
    for i = 1, 8 do
      local copy = "# copy " .. i .. "\n"
      pems[i] = { copy .. chain_pem, copy .. dave_key_pem }
      loaded[i] = check(mtls_pool.load_pem_pair(pems[i][1], pems[i][2]))
    end
    rows = {
      { name = "pem_warm", calls = PEM_CALLS, body = own_trace(function(n)
        for i = 1, n do
          local k = i % 8 + 1
          if check(mtls_pool.load_pem_pair(pems[k][1], pems[k][2])) ~= loaded[k] then
            error("load_pem_pair gave other objects for the same PEM")
          end
        end
      end) },
    }
  elseif config.group == "connect" then
    check(mtls_pool.configure({ provider = "auto" }))
    put("provider", mtls_pool.provider())
    rows = {
      { name = "parse", calls = COLD_CALLS, body = fresh },
      { name = "connect_https", calls = CONNECT_CALLS, body = connect_loop(https) },
      { name = "connect_mtls", calls = CONNECT_CALLS, body = connect_loop(mtls) },
      -- the control: the same connection, the pool named by the caller, no library code
      { name = "connect_by_hand", calls = CONNECT_CALLS,
        body = connect_loop(helpers.merged(mtls, { pool = "by-hand" }), require("support.by_hand_connect")) },
    }
  else
    local ok, err = mtls_pool.configure({ provider = config.group })
    if not ok then
      put("skipped", err)
      ngx.print(table.concat(lines))
      return
    end
    rows = {
      { name = "name_https", calls = NAME_CALLS, body = name_loop(https) },
      { name = "name_warm", calls = NAME_CALLS, body = name_loop(mtls) },
      { name = "name_cold", calls = COLD_CALLS, body = cold_loop(helpers.merged(mtls)), prepare = fresh },
      { name = "name_first", calls = FIRST_CALLS, body = first_proof_loop(helpers.merged(mtls), config.group),
        prepare = fresh },
    }
  end
  report(rows, measure(rows))
end

return _M
