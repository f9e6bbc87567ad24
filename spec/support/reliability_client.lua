-- The client nginx of the reliability suite (scripts/suites/reliability.ts): like client_app.lua,
-- each request to /?id=<client>&mode=isolated|shared makes one upstream GET to the mTLS server
-- through resty.mtls_pool.http_connect as <client> and answers
--   id=<client> dn=<DN the server saw> conn=<server connection> reqs=<its requests> gen=<server
--   config generation> reused=<n> mismatch=<0|1>
-- or 502 "error: <message>". It also checks that the pool and the server agree about reuse (a
-- reused connection has served requests before, a fresh one has not), and counts in
-- lua_shared_dict "stats": requests, ok, errors (errors_reused: on a pooled connection),
-- mismatches, reused, reuse_disagreements, gen<N>, and e:<error message>.
-- GET /stats: the counters as name=value lines. GET /memory: every worker's Lua memory after a
-- full collection (each worker's own timer does the collection), plus its peak since the last
-- /memory?reset=1.
local client_app = require "support.client_app"
local connect = require "resty.mtls_pool.http_connect"
local read_response = require("support.raw_http").read_response

local _M = {}

local stats = ngx.shared.stats


local function count(name, n)
  stats:incr(name, n or 1, 0)
end

-- Each worker samples its Lua memory and performs the full collections /memory asks for.
local gc_done = 0

local function watch_memory(premature)
  if premature then
    return
  end
  local id = ngx.worker.id()
  local kb = collectgarbage("count")
  local peak_key = "kb_peak_w" .. id
  if kb > (stats:get(peak_key) or 0) then
    stats:set(peak_key, kb)
  end
  local wanted = stats:get("gc_wanted") or 0
  if wanted > gc_done then
    collectgarbage("collect")
    collectgarbage("collect")
    stats:set("kb_after_gc_w" .. id, collectgarbage("count"))
    stats:set("gc_done_w" .. id, wanted)
    gc_done = wanted
  end
end

-- Called from init_worker_by_lua: certificates are parsed once per worker (by client_app).
function _M.init(certs_dir, client_names, port)
  client_app.init(certs_dir, client_names, port)
  assert(ngx.timer.every(0.05, watch_memory))
end

local function fail(sock, reused, err)
  sock:close()
  count("errors")
  if reused > 0 then
    count("errors_reused")
  end
  count("e:" .. tostring(err):gsub("%d+", "N"):sub(1, 80))
  ngx.status = 502
  ngx.say("error: ", err)
end

function _M.handle()
  local args = ngx.req.get_uri_args()
  local id, options, connect_fn = client_app.request_options(args)
  if not id then
    return
  end
  count("requests")
  local sock = ngx.socket.tcp()
  sock:settimeouts(5000, 5000, 5000)
  local ok, err = (connect_fn or connect)({ sock = sock }, options)
  if not ok then
    return fail(sock, 0, err)
  end
  local reused = sock:getreusedtimes() or 0
  local sent
  sent, err = sock:send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
  if not sent then
    return fail(sock, reused, "send: " .. tostring(err))
  end
  local res
  res, err = read_response(sock)
  if not res then
    return fail(sock, reused, err)
  end
  if res.status ~= 200 then
    return fail(sock, reused, "status " .. tostring(res.status))
  end
  if res.close then
    sock:close()
  else
    sock:setkeepalive(60000, 16)
  end
  local dn = res.body:match("dn=(.-) conn=")
  local conn = res.body:match("conn=(%d+)")
  local reqs = tonumber(res.body:match("reqs=(%d+)"))
  local gen = res.body:match("gen=(%d+)") or "?"
  local mismatch = dn ~= "CN=" .. id
  count("ok")
  count("gen" .. gen)
  if mismatch then
    count("mismatches")
  end
  if reused > 0 then
    count("reused")
  end
  if (reused > 0) ~= ((reqs or 0) > 1) then
    count("reuse_disagreements")
  end
  ngx.say("id=", id, " dn=", tostring(dn), " conn=", tostring(conn), " reqs=", tostring(reqs), " gen=", gen,
          " reused=", reused, " mismatch=", mismatch and 1 or 0)
end

function _M.stats()
  for _, key in ipairs(stats:get_keys(0)) do
    ngx.say(key, "=", stats:get(key))
  end
end

-- Asks every worker for a full collection and waits (up to 5 s) until all have reported.
function _M.memory()
  local workers = ngx.worker.count()
  local wanted = stats:incr("gc_wanted", 1, 0)
  local deadline = ngx.now() + 5
  while true do
    local done = 0
    for w = 0, workers - 1 do
      if (stats:get("gc_done_w" .. w) or 0) >= wanted then
        done = done + 1
      end
    end
    if done == workers then
      break
    end
    if ngx.now() > deadline then
      ngx.status = 504
      ngx.say("only ", done, " of ", workers, " workers collected")
      return
    end
    ngx.sleep(0.02)
  end
  for w = 0, workers - 1 do
    ngx.say("kb_after_gc_w", w, "=", stats:get("kb_after_gc_w" .. w))
    ngx.say("kb_peak_w", w, "=", stats:get("kb_peak_w" .. w) or 0)
    if ngx.var.arg_reset then
      stats:set("kb_peak_w" .. w, 0)
    end
  end
end

return _M
