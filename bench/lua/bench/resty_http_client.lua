-- The client nginx of bench section (d): the real lua-resty-http (whichever release
-- lua_package_path finds: 0.17.1, 0.17.2, either patched by resty.mtls_pool or behind the shim),
-- used as applications use it: a new options table per request for httpc:connect(options),
-- httpc:request, then set_keepalive. The identities are taken in turn, per worker.
-- The client_app interface of scripts/client.ts:
--   init(certs_dir, client_names, port)  parses each client's certificate and key once
--   handle()        one GET to the mTLS server as the next identity; counts requests, errors,
--                   mismatches (the server saw another client) in lua_shared_dict "stats"
--   stats()         client_app's counters
-- and connect_cost(): "ns=<per call>", "calls=<n>", "new=<connections opened>" for
-- connect + set_keepalive on pooled connections, the identities in turn, or "error=<message>".
local http = require "resty.http"
local client_app = require "support.client_app"

local COST_SECONDS = 0.2 -- connect_cost() times at least this long (ngx.now() counts in ms)

local _M = {}

local names = {}
local turn = 0

-- client_app parses each client's certificate and key once and builds the options for them.
function _M.init(certs_dir, client_names, port)
  client_app.init(certs_dir, client_names, port)
  for i, name in ipairs(client_names) do
    names[i] = name
  end
end

local stats = ngx.shared.stats

local function fail(what, err)
  stats:incr("errors", 1, 0)
  ngx.status = 502
  ngx.say(what, ": ", err)
end

function _M.handle()
  turn = turn % #names + 1
  local id, options = client_app.request_options({ id = names[turn] })
  stats:incr("requests", 1, 0)
  local httpc = http.new()
  local ok, err = httpc:connect(options)
  if not ok then
    return fail("connect", err)
  end
  local res
  res, err = httpc:request({ path = "/", headers = { Host = "localhost" } })
  if not res then
    return fail("request", err)
  end
  local body
  body, err = res:read_body()
  if not body then
    return fail("read_body", err)
  end
  httpc:set_keepalive()
  local dn = body:match("dn=(.-) conn=")
  if dn ~= "CN=" .. id then
    stats:incr("mismatches", 1, 0)
  end
  ngx.say("id=", id, " dn=", tostring(dn))
end

_M.stats = client_app.stats

-- connect + set_keepalive once per identity, no request; counts the new connections in `new`.
local function connect_each(new)
  for _, name in ipairs(names) do
    local httpc = http.new()
    local _, options = client_app.request_options({ id = name })
    local ok, err = httpc:connect(options)
    if not ok then
      return nil, err
    end
    if httpc.sock:getreusedtimes() == 0 then
      new[1] = new[1] + 1
    end
    httpc:set_keepalive()
  end
  return true
end

-- What naming and taking a pooled connection costs per connect: connect + set_keepalive, the
-- identities in turn, for COST_SECONDS. One untimed pass first, so that every identity's pool
-- holds a connection.
function _M.connect_cost()
  local new, calls = { 0 }, 0
  local ok, err = connect_each(new)
  new[1] = 0
  ngx.update_time()
  local start = ngx.now()
  while ok and ngx.now() - start < COST_SECONDS do
    ok, err = connect_each(new)
    calls = calls + #names
    ngx.update_time()
  end
  if not ok then
    ngx.say("error=", err)
    return
  end
  ngx.say("ns=", (ngx.now() - start) * 1e9 / calls)
  ngx.say("calls=", calls)
  ngx.say("new=", new[1])
end

return _M
