-- Bench locations of the client nginx of bench/run.ts, next to spec/support/client_app.lua's.
-- The first two answer and count like client_app's "/" (through client_app.get_as):
--   per_request()  isolated mode, except that the client's certificate chain is parsed from PEM
--                  on every request: a new cert object each time, which the identity cache
--                  (keyed by cert object, then key object) must survive without growing. The key
--                  is parsed once: with OpenSSL 3.0 its parse costs ~3x the certificate's and
--                  exercises nothing more.
--   by_hand()      a control for isolated mode: certificates parsed once, the pool named by the
--                  application ("by-hand:<client>") and connected by support.by_hand_connect,
--                  so no resty.mtls_pool code runs.
--   memory()       "worker=<id>" and "kb=<this worker's Lua KB after full GCs>" lines
--   info()         "provider=<identity provider in use>"
local ssl = require "ngx.ssl"
local mtls_pool = require "resty.mtls_pool"
local helpers = require "support.helpers"
local client_app = require "support.client_app"
local by_hand_connect = require "support.by_hand_connect"

local _M = {}

local cert_pems = {}

-- Called from init_worker_by_lua after client_app.init (which parses the certificates and keys
-- once): keeps the certificates' PEM for per_request().
function _M.init(certs_dir, client_names)
  for _, name in ipairs(client_names) do
    cert_pems[name] = helpers.read_file(certs_dir .. "/" .. name .. ".crt")
  end
end

function _M.per_request()
  local id, options = client_app.request_options({})
  options.ssl_client_cert = assert(ssl.parse_pem_cert(cert_pems[id]))
  client_app.get_as(id, options, true)
end

function _M.by_hand()
  local id, options = client_app.request_options({})
  options.pool = "by-hand:" .. id
  client_app.get_as(id, options, true, by_hand_connect)
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
