-- The "client nginx" of the demo, the benchmarks and the load tests: each request to
-- /?id=<client>&mode=<mode> makes one upstream GET to the mTLS server as <client>, then answers
--   id=<client> dn=<DN the server saw> conn=<server connection> reused=<n> mismatch=<0|1>
-- and counts requests, errors, mismatches and reused connections in lua_shared_dict "stats".
-- Modes: isolated (resty.mtls_pool pool names), shared (one identity-less pool, as
-- lua-resty-http <= 0.17.1 names them, through support.by_hand_connect), nokeepalive (close
-- after each request).
-- GET /stats answers the counters as "name=value" lines, plus this worker's Lua memory.
local helpers = require "support.helpers"
local raw_http = require "support.raw_http"
local by_hand_connect = require "support.by_hand_connect"

local _M = {}

local clients = {}
local names = {}
local upstream_port, upstream_sock


-- Called from init_worker_by_lua: certificates are parsed once per worker, as they should be.
function _M.init(certs_dir, client_names, port, sock)
  upstream_port, upstream_sock = port, sock
  for i, name in ipairs(client_names) do
    names[i] = name
    clients[name] = helpers.client_pair(certs_dir, name)
  end
end

local stats = ngx.shared.stats

local function count(name)
  stats:incr(name, 1, 0)
end

-- The client named by ?id= (a random one without it), the connect options for it in ?mode=, and
-- the connect function for that mode (nil: resty.mtls_pool's); answers 400 and returns nil for
-- an unknown client. Shared with reliability_client.lua.
function _M.request_options(args)
  local id = args.id or names[math.random(#names)]
  local client = clients[id]
  if not client then
    ngx.status = 400
    ngx.say("unknown id ", tostring(id))
    return nil
  end
  local options = { scheme = "https", host = "127.0.0.1", port = upstream_port, ssl_server_name = "localhost",
                    ssl_client_cert = client.cert, ssl_client_priv_key = client.key }
  if upstream_sock then
    options.host, options.port = "unix:" .. upstream_sock, nil
  end
  if args.mode == "shared" then
    options.pool = "identity-less" -- as lua-resty-http <= 0.17.1 names pools
    return id, options, by_hand_connect
  end
  return id, options
end

-- One upstream GET as client `id` with `options`: counted, then answered as described above.
-- Shared with bench/lua/bench/client.lua.
function _M.get_as(id, options, keepalive, connect_fn)
  count("requests")
  local res, err = raw_http.get(options, "/", nil, keepalive, connect_fn)
  if not res then
    count("errors")
    ngx.status = 502
    ngx.say("error: ", err)
    return
  end
  local mismatch = res.dn ~= "CN=" .. id
  if mismatch then
    count("mismatches")
  end
  if res.reused > 0 then
    count("reused")
  end
  ngx.say("id=", id, " dn=", tostring(res.dn), " conn=", tostring(res.conn), " reused=", res.reused,
          " mismatch=", mismatch and 1 or 0)
end

function _M.handle()
  local args = ngx.req.get_uri_args()
  local id, options, connect_fn = _M.request_options(args)
  if id then
    _M.get_as(id, options, args.mode ~= "nokeepalive", connect_fn)
  end
end

function _M.stats()
  for _, key in ipairs(stats:get_keys(0)) do
    ngx.say(key, "=", stats:get(key))
  end
  ngx.say("lua_kb_worker_", ngx.worker.id(), "=", collectgarbage("count"))
end

return _M
