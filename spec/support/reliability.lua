-- Helpers of the reliability specs: what the fixtures' mTLS server saw (its access log, its
-- connection counter) and which sockets are open to it, so that specs can assert that a refused
-- call reached nobody and left nothing in a pool.
local helpers = require "support.helpers"
local raw_http = require "support.raw_http"
local mtls_pool = require "resty.mtls_pool"

local _M = {}

local MTLS_PORT = tonumber(helpers.env("MTLS_SERVER_PORT"))
_M.MTLS_PORT = MTLS_PORT

local clients = {}

-- A client's certificate and key, parsed once per worker as a real application does.
function _M.client(name)
  if not clients[name] then
    clients[name] = { cert = helpers.cert(name), key = helpers.key(name) }
  end
  return clients[name]
end

-- Connect options for the fixtures' mTLS server as `who` (a client name, or nil for no client
-- certificate), with `extra` fields added (false values are kept: they mean "not set").
function _M.options(who, extra)
  local options = { scheme = "https", host = "127.0.0.1", port = MTLS_PORT, ssl_server_name = "localhost" }
  if who then
    local c = _M.client(who)
    options.ssl_client_cert, options.ssl_client_priv_key = c.cert, c.key
  end
  for k, v in pairs(extra or {}) do
    options[k] = v
  end
  return options
end

-- raw_http.get plus the server's request count on that connection (res.reqs).
function _M.get(options, path, connect_fn)
  local res, err = raw_http.get(options, path, nil, nil, connect_fn)
  if res then
    res.reqs = tonumber(res.body:match("reqs=(%d+)"))
  end
  return res, err
end

-- ---------------------------------------------------------------------------------------------
-- The server's view

-- Every request the mTLS server logged (log_format mtls_view in scripts/fixtures.ts), oldest
-- first: { conn, reqs, status, dn ("-": none), sni, uri, line }.
function _M.server_log()
  local path = assert(helpers.env("MTLS_ACCESS_LOG"), "MTLS_ACCESS_LOG is not set: run the specs with npm test")
  local records = {}
  local f = io.open(path, "rb")
  if not f then
    return records -- nothing logged yet
  end
  for line in f:lines() do
    local conn, reqs, status, dn, sni, uri = line:match('^(%d+) (%d+) (%d+) "(.-)" "(.-)" "(.-)"$')
    records[#records + 1] = { conn = tonumber(conn), reqs = tonumber(reqs), status = tonumber(status),
                              dn = dn, sni = sni, uri = uri, line = line }
  end
  f:close()
  return records
end

local PROBE_URI = "/reliability-probe"

-- The number nginx gave a connection it accepted just now ($connection: one counter for every
-- connection the fixtures' nginx accepts). Opens and closes one connection of its own.
local function accepted_counter()
  local c = _M.client("carol")
  local res, err = raw_http.get({ scheme = "https", host = "127.0.0.1", port = MTLS_PORT, ssl_server_name = "localhost",
                                  ssl_client_cert = c.cert, ssl_client_priv_key = c.key,
                                  pool = "reliability-probe" }, PROBE_URI, nil, false)
  assert(res, err)
  return assert(res.conn, "no conn= in the probe's answer")
end

-- ESTABLISHED TCP sockets (any process in this network namespace) whose remote port is `port`:
-- the client side of every connection to that server, pooled ones included, as a set of their
-- "local address remote address" strings.
function _M.sockets(port)
  local hex = string.format(":%04X", port)
  local set = {}
  for _, file in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local f = io.open(file, "rb")
    if f then
      for line in f:lines() do
        local pair, remote, state = line:match("^%s*%d+: (%S+ (%S+)) (%x%x)")
        if state == "01" and remote:sub(-5) == hex then
          set[pair] = true
        end
      end
      f:close()
    end
  end
  return set
end

-- How many such sockets there are.
function _M.established(port)
  local count = 0
  for _ in pairs(_M.sockets(port)) do
    count = count + 1
  end
  return count
end

-- Runs fn() and returns what the mTLS server saw meanwhile, then fn's results:
--   { accepted = connections it accepted, requests = the records it logged,
--     established = ESTABLISHED sockets to it that were not there before (pooled sockets of
--     earlier code may close meanwhile: they do not count) }
function _M.observe(fn, ...)
  -- sockets that earlier code dropped are closed by the collector: not during the observation
  collectgarbage()
  collectgarbage()
  local before = accepted_counter()
  local mark = #_M.server_log()
  local open_before = _M.sockets(MTLS_PORT)
  local results = { n = 0 }
  local function collect(...)
    results = { n = select("#", ...), ... }
  end
  collect(fn(...))
  local new_sockets = 0
  for socket in pairs(_M.sockets(MTLS_PORT)) do
    if not open_before[socket] then
      new_sockets = new_sockets + 1
    end
  end
  local after = accepted_counter()
  ngx.sleep(0.02) -- nginx writes a log line after the response: let the last one land
  local requests = {}
  for i, record in ipairs(_M.server_log()) do
    if i > mark and record.uri ~= PROBE_URI then
      requests[#requests + 1] = record
    end
  end
  local seen = { accepted = after - before - 1, requests = requests, established = new_sockets }
  return seen, unpack(results, 1, results.n)
end

-- Lines of `records` (from observe) as text, for assertion messages.
function _M.lines(records)
  local out = {}
  for _, r in ipairs(records) do
    out[#out + 1] = r.line
  end
  return table.concat(out, "\n")
end

-- Whether the pool named `name` holds an idle connection: takes one if so (and closes it).
-- Connects to the mTLS server when the pool is empty; that connection is closed too.
function _M.pooled(name)
  local sock = ngx.socket.tcp()
  sock:settimeouts(2000, 2000, 2000)
  local ok, err = sock:connect("127.0.0.1", MTLS_PORT, { pool = name })
  assert(ok, err)
  local reused = assert(sock:getreusedtimes())
  sock:close()
  return reused > 0
end

-- The pool name, or raises: for options that must have one.
function _M.pool_name(options, default_proxy_opts)
  local name, err = mtls_pool.pool_name(options, default_proxy_opts)
  assert(name, err)
  return name
end

return _M
