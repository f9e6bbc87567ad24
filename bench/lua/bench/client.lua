-- Bench locations of the client nginx of bench/run.ts, next to spec/support/client_app.lua's.
-- The first two answer and count like client_app's "/" (through client_app.get_as):
--   per_request()  isolated mode, except that the client's certificate chain is parsed from PEM
--                  on every request: a new cert object each time, which the identity cache
--                  (keyed by cert object, then key object) must survive without growing. The key
--                  is parsed once: with OpenSSL 3.0 its parse costs ~3x the certificate's and
--                  exercises nothing more.
--   pem_rotating() isolated mode, except that the client's certificate and key come from
--                  mtls_pool.load_pem_pair on every request, the pair taken in turn from PEM_COPIES
--                  distinct PEM pairs (the clients' PEM, each copy with its own "# copy <n>" line):
--                  more pairs than load_pem_pair keeps (256), so it keeps evicting, and memory
--                  must stay flat all the same.
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

local PEM_COPIES = 1000

local _M = {}

local cert_pems = {}
local pem_copies = {} -- { id, cert PEM, key PEM } by copy number
local next_copy = 0

-- Called from init_worker_by_lua after client_app.init (which parses the certificates and keys
-- once): keeps the certificates' PEM for per_request().
function _M.init(certs_dir, client_names)
  -- Pooled connections outlive a whole run (the bench server keeps them 600 s): b8 then counts
  -- the connections the pools grow to, not ones recycled after 10 s idle deep in a pool.
  require("support.raw_http").keepalive_timeout = 300000
  for _, name in ipairs(client_names) do
    cert_pems[name] = helpers.read_file(certs_dir .. "/" .. name .. ".crt")
  end
  for n = 1, PEM_COPIES do
    local name = client_names[(n - 1) % #client_names + 1]
    local copy = "# copy " .. n .. "\n" -- text before BEGIN: PEM readers skip it
    pem_copies[n] = { name, copy .. cert_pems[name], copy .. helpers.read_file(certs_dir .. "/" .. name .. ".key") }
  end
end

function _M.pem_rotating()
  next_copy = next_copy % PEM_COPIES + 1
  local id, cert_pem, key_pem = unpack(pem_copies[next_copy])
  local pair, err = mtls_pool.load_pem_pair(cert_pem, key_pem)
  if not pair then
    ngx.shared.stats:incr("requests", 1, 0) -- counted, so that the bench's load stops
    ngx.shared.stats:incr("errors", 1, 0)
    ngx.status = 500
    ngx.say("load_pem_pair: ", err)
    return
  end
  local _, options = client_app.request_options({ id = id })
  options.ssl_client_cert, options.ssl_client_priv_key = pair.cert, pair.key
  client_app.get_as(id, options, true)
end

function _M.per_request()
  local id, options = client_app.request_options({})
  options.ssl_client_cert = assert(ssl.parse_pem_cert(cert_pems[id]))
  client_app.get_as(id, options, true)
end

-- The same request handling as client_app.handle() (URI arguments read, options built), so that
-- the control differs from isolated mode only in the pool name and the connect.
function _M.by_hand()
  local args = ngx.req.get_uri_args()
  local id, options = client_app.request_options(args)
  if id then
    options.pool = "by-hand:" .. id
    client_app.get_as(id, options, true, by_hand_connect)
  end
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
