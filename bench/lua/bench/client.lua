-- Bench locations of the client nginx of bench/run.ts, next to spec/support/client_app.lua's.
-- The first two do the work of client_app's "/" (counters in lua_shared_dict "stats", answer):
--   per_request()  isolated mode, except that the client's certificate chain is parsed from PEM
--                  on every request: a new cert object each time, which the identity cache
--                  (keyed by cert object, then key object) must survive without growing. The key
--                  is parsed once: with OpenSSL 3.0 its parse costs ~3x the certificate's and
--                  exercises nothing more.
--   by_hand()      a control for isolated mode: certificates parsed once, the pool named by the
--                  application ("by-hand:<client>"), so resty.mtls_pool does no naming.
--   memory()       "worker=<id>" and "kb=<this worker's Lua KB after full GCs>" lines
--   info()         "provider=<identity provider in use>"
local ssl = require "ngx.ssl"
local mtls_pool = require "resty.mtls_pool"
local helpers = require "support.helpers"
local raw_http = require "support.raw_http"

local _M = {}

local clients = {}
local names = {}
local upstream_port
local stats = ngx.shared.stats

-- Called from init_worker_by_lua: parses the certificates and keys, keeps the certificates' PEM.
function _M.init(certs_dir, client_names, port)
  upstream_port = port
  for i, name in ipairs(client_names) do
    names[i] = name
    clients[name] = helpers.client_pair(certs_dir, name)
    clients[name].cert_pem = helpers.read_file(certs_dir .. "/" .. name .. ".crt")
  end
end

-- One upstream GET as client `id`, counted and answered like client_app's.
local function get_as(id, cert, pool)
  local options = { scheme = "https", host = "127.0.0.1", port = upstream_port, ssl_server_name = "localhost",
                    ssl_client_cert = cert, ssl_client_priv_key = clients[id].key, pool = pool }
  stats:incr("requests", 1, 0)
  local res, err = raw_http.get(options, "/", nil, true)
  if not res then
    stats:incr("errors", 1, 0)
    ngx.status = 502
    ngx.say("error: ", err)
    return
  end
  if res.dn ~= "CN=" .. id then
    stats:incr("mismatches", 1, 0)
  end
  if res.reused > 0 then
    stats:incr("reused", 1, 0)
  end
  ngx.say("id=", id, " dn=", tostring(res.dn), " conn=", tostring(res.conn), " reused=", res.reused)
end

function _M.per_request()
  local id = names[math.random(#names)]
  get_as(id, assert(ssl.parse_pem_cert(clients[id].cert_pem)))
end

function _M.by_hand()
  local id = names[math.random(#names)]
  get_as(id, clients[id].cert, "by-hand:" .. id)
end

function _M.memory()
  collectgarbage()
  collectgarbage() -- objects with finalizers (parsed certificates) are freed by the second cycle
  ngx.say("worker=", ngx.worker.id())
  ngx.say("kb=", collectgarbage("count"))
end

function _M.info()
  ngx.say("provider=", mtls_pool.provider())
end

return _M
