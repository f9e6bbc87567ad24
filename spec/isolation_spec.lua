-- The four reuse paths beyond the pool name (issue 12), against real servers: an explicit
-- `pool`, TLS session resumption, a certificate left on the cosocket object, and a refused
-- connect on a connected object. Each spec asserts what the server saw.
local helpers = require "support.helpers"
local raw_http = require "support.raw_http"
local mtls_pool = require "resty.mtls_pool"
local connect = require "resty.mtls_pool.http_connect"

local env = helpers.env
local MTLS_PORT = tonumber(env("MTLS_SERVER_PORT"))
local RESUME_PORT = tonumber(env("RESUME_SERVER_PORT"))
local RECORD_PORT = tonumber(env("RECORD_SERVER_PORT"))

local clients = {}
local function client(name)
  if not clients[name] then
    clients[name] = { cert = helpers.cert(name), key = helpers.key(name) }
  end
  return clients[name]
end

-- Connect options for `name` (nil: no client certificate) to `port`, with `extra` set over them.
local function options(name, port, extra)
  local o = { scheme = "https", host = "127.0.0.1", port = port or MTLS_PORT, ssl_server_name = "localhost" }
  if name then
    o.ssl_client_cert, o.ssl_client_priv_key = client(name).cert, client(name).key
  end
  return helpers.merged(o, extra)
end

local function new_httpc()
  local httpc = { sock = ngx.socket.tcp() }
  httpc.sock:settimeouts(5000, 5000, 5000)
  return httpc
end

-- connect + GET on `httpc`; returns the response (asserting both worked) and the ssl session.
local function exchange(httpc, o)
  local ok, err, session = connect(httpc, o)
  assert(ok, err)
  local res, req_err = raw_http.request(httpc)
  assert(res, req_err)
  assert.equal(200, res.status)
  return res, session
end

local function dn(name)
  return name and ("CN=" .. name) or ""
end

describe("an explicit pool", function()
  it("is a namespace: alice and bob with the same pool never share a connection", function()
    local seen = {}
    for i = 1, 6 do
      local who = (i % 2 == 1) and "alice" or "bob"
      local res = assert(raw_http.get(options(who, MTLS_PORT, { pool = "shared-by-app" })))
      seen[#seen + 1] = who .. " -> " .. tostring(res.dn) .. " reused=" .. res.reused
      assert.equal(dn(who), res.dn, table.concat(seen, "; "))
    end
    helpers.say("explicit pool: ", table.concat(seen, "; "))
  end)

  it("still separates SNI and verify inside the namespace, in pool_name() too", function()
    local base = options("alice", MTLS_PORT, { pool = "ns" })
    local name = assert(mtls_pool.pool_name(base))
    assert.is_not.equal("ns", name)
    assert.is_not.equal(name, assert(mtls_pool.pool_name(options("bob", MTLS_PORT, { pool = "ns" }))))
    assert.is_not.equal(name, assert(mtls_pool.pool_name(helpers.merged(base, { ssl_server_name = "other" }))))
    assert.is_not.equal(name, assert(mtls_pool.pool_name(helpers.merged(base, { ssl_verify = false }))))
    assert.is_not.equal(name, assert(mtls_pool.pool_name(helpers.merged(base, { pool = "ns2" }))))
    assert.is_not.equal(name, assert(mtls_pool.pool_name(options("alice", MTLS_PORT))))
    -- the caller's name is the namespace: the host is the caller's business inside it
    assert.equal(name, assert(mtls_pool.pool_name(helpers.merged(base, { host = "localhost" }))))
  end)

  it("is logged as the final name with pool_debug", function()
    local o = options("alice", MTLS_PORT, { pool = "debug-ns", pool_debug = true })
    assert(raw_http.get(o))
    local name = assert(mtls_pool.pool_name(o))
    assert.is_true(#helpers.log_lines("mtls_pool: pool name " .. name) > 0)
  end)

  it("must be a string", function()
    local httpc = new_httpc()
    local ok, err = connect(httpc, options("alice", MTLS_PORT, { pool = 42 }))
    assert.is_nil(ok)
    assert.equal("bad pool: string expected, got number", err)
    local name, name_err = mtls_pool.pool_name(options(nil, MTLS_PORT, { pool = true }))
    assert.is_nil(name)
    assert.equal("bad pool: string expected, got boolean", name_err)
  end)
end)

describe("TLS session resumption", function()
  -- a session from a fresh connection made by `who` (nil: no certificate), connection closed
  local function fresh_session(who)
    local httpc = new_httpc()
    local res, session = exchange(httpc, options(who, RESUME_PORT))
    assert.equal("cdata", type(session))
    assert.equal(dn(who), res.dn)
    httpc.sock:close()
    return session
  end

  local function with_session(who, session, extra)
    local httpc = new_httpc()
    local res = exchange(httpc, options(who, RESUME_PORT, helpers.merged({ ssl_reused_session = session }, extra)))
    httpc.sock:close()
    return res
  end

  it("resumes a session under the identity that made it", function()
    local session = fresh_session("alice")
    local res = with_session("alice", session)
    assert.equal("CN=alice", res.dn)
    assert.equal("r", res.resumed)
  end)

  it("never resumes alice's session for bob, carol or a connect without a certificate", function()
    local session = fresh_session("alice")
    local rows = {}
    for _, who in ipairs({ "bob", "carol", false }) do
      local res = with_session(who or nil, session, { pool_debug = true })
      rows[#rows + 1] = tostring(who or "none") .. " -> '" .. tostring(res.dn) .. "' resumed=" .. tostring(res.resumed)
      assert.equal(dn(who or nil), res.dn, table.concat(rows, "; "))
      assert.equal(".", res.resumed)
    end
    helpers.say("alice's session: ", table.concat(rows, "; "))
    assert.is_true(#helpers.log_lines("ssl_reused_session not used: it was made for another pool") > 0)
  end)

  it("never resumes a session made under another SNI or verify setting", function()
    local session = fresh_session("alice")
    local res = with_session("alice", session, { ssl_verify = false })
    assert.equal(".", res.resumed)
  end)

  it("does not use a session it did not make (here: alice's, from a handshake by hand)", function()
    local sock = ngx.socket.tcp()
    assert(sock:connect("127.0.0.1", RESUME_PORT))
    assert(sock:setclientcert(client("alice").cert, client("alice").key))
    local session = assert(sock:sslhandshake(nil, "localhost", true))
    sock:close()
    for _, who in ipairs({ "bob", false }) do
      local res = with_session(who or nil, session, { pool_debug = true })
      assert.equal(dn(who or nil), res.dn)
      assert.equal(".", res.resumed)
    end
    assert.is_true(#helpers.log_lines("ssl_reused_session not used: resty.mtls_pool did not make it") > 0)
  end)
end)

describe("the cosocket object", function()
  it("presents no certificate that an earlier connect left on it", function()
    local httpc = new_httpc()
    local seen = {}
    for _, who in ipairs({ "alice", false, "bob", false }) do
      local res = exchange(httpc, options(who or nil, RESUME_PORT, { ssl_reused_session = false }))
      seen[#seen + 1] = tostring(who or "none") .. " -> '" .. tostring(res.dn) .. "'"
      assert.equal(dn(who or nil), res.dn, table.concat(seen, "; "))
      httpc.sock:close()
    end
    helpers.say("one object: ", table.concat(seen, "; "))
  end)

  it("pools a connection only under the identity it presented", function()
    local httpc = new_httpc()
    local o = { pool = "sticky-" .. ngx.now() }
    exchange(httpc, options("alice", RESUME_PORT, o))
    httpc.sock:close()
    local res = exchange(httpc, options(nil, RESUME_PORT, o))
    assert.equal("", res.dn)
    assert(httpc.sock:setkeepalive(10000, 4))
    local other = new_httpc()
    res = exchange(other, options(nil, RESUME_PORT, o))
    assert.equal(1, other.sock:getreusedtimes())
    assert.equal("", res.dn)
    other.sock:close()
  end)
end)

describe("a refused connect", function()
  local refusals = {
    { "a key that does not match", function() return options("alice", MTLS_PORT, { ssl_client_priv_key = client("bob").key }) end },
    { "a PEM string key", function() return options("alice", MTLS_PORT, { ssl_client_priv_key = helpers.pem("alice.key") }) end },
    { "a certificate without its key", function() return options("alice", MTLS_PORT, { ssl_client_priv_key = false }) end },
    { "a bad port", function() return options("alice", MTLS_PORT, { port = 0 }) end },
    { "a bad pool", function() return options("alice", MTLS_PORT, { pool = 42 }) end },
    { "a bad proxy", function() return options("alice", MTLS_PORT, { proxy_opts = { https_proxy = "ftp://x" } }) end },
  }
  for _, case in ipairs(refusals) do
    it("leaves no usable connection on the object: " .. case[1], function()
      local httpc = new_httpc()
      local res = exchange(httpc, options("alice"))
      assert.equal("CN=alice", res.dn)
      local ok, err = connect(httpc, case[2]())
      assert.is_nil(ok)
      assert.is_string(err)
      local after, after_err = raw_http.request(httpc)
      assert.is_nil(after, "request() after a refused connect was answered: " .. tostring(after and after.dn))
      assert.matches("closed", after_err)
    end)
  end
end)

describe("a forged key: the victim's public key with another private key", function()
  -- X509_check_private_key compares public keys only: these keys pass it. Only a signature made
  -- with the key and verified with the certificate proves the caller holds the private key.
  local victims = { alice = "forged-alice.key", carol = "forged-carol.key" }
  local function forged(name)
    return assert(require("ngx.ssl").parse_pem_priv_key(helpers.pem(victims[name])))
  end

  for _, provider in ipairs({ "ffi", "object", "openssl" }) do
    it("gets no identity from the " .. provider .. " provider", function()
      if provider == "openssl" and not helpers.add_lib("LUA_RESTY_OPENSSL_LIB") then
        pending("the openssl provider (LUA_RESTY_OPENSSL_LIB is not set)")
        return
      end
      assert(mtls_pool.configure({ provider = provider }))
      finally(function() assert(mtls_pool.configure({ provider = "auto" })) end)
      for name in pairs(victims) do
        local id, err = mtls_pool.client_identity(client(name).cert, forged(name))
        assert.is_nil(id, provider .. " gave " .. name .. "'s forged key an identity")
        assert.equal("private key does not match ssl_client_cert", err)
        -- once the victim's own pair is proven (new objects each, as when PEM is parsed per
        -- request), the forged key must not pass for it
        assert.is_string((mtls_pool.client_identity(helpers.cert(name), helpers.key(name))))
        id, err = mtls_pool.client_identity(helpers.cert(name), forged(name))
        assert.is_nil(id, provider .. " gave " .. name .. "'s forged key an identity after a proof")
        assert.equal("private key does not match ssl_client_cert", err)
      end
    end)
  end

  it("cannot ride the victim's pooled connection", function()
    for name in pairs(victims) do
      local victim = assert(raw_http.get(options(name)))
      assert.equal("CN=" .. name, victim.dn)
      local o = options(name, MTLS_PORT, { ssl_client_priv_key = forged(name) })
      local res, err = raw_http.get(o, "/attack/forged-key")
      assert.is_nil(res, "the forged key was served as " .. tostring(res and res.dn) .. " on connection "
                         .. tostring(res and res.conn) .. " (the victim's: " .. victim.conn .. ")")
      assert.equal("private key does not match ssl_client_cert", err)
    end
  end)
end)

describe("a handshake that raises", function()
  -- alice's options, in a pool of their own: the connection is fresh, so the handshake runs
  local fresh = 0
  local function fresh_options()
    fresh = fresh + 1
    return options("alice", MTLS_PORT, { pool = "raising-" .. fresh })
  end

  -- the real socket, except that sslhandshake raises
  local function raising_socket(message)
    local real = ngx.socket.tcp()
    local wrapper = {}
    for _, method in ipairs({ "connect", "getreusedtimes", "setclientcert", "close", "settimeouts" }) do
      wrapper[method] = function(_, ...) return real[method](real, ...) end
    end
    wrapper.sslhandshake = function() error(message, 0) end
    return wrapper
  end

  it("reports lua-resty-core 0.1.25's assertion as a verification failure", function()
    local raised = "/usr/share/lua/5.1/resty/core/socket.lua:233: assertion failed!"
    local ok, err = connect({ sock = raising_socket(raised) }, fresh_options())
    assert.is_nil(ok)
    assert.equal("SSL handshake failed, most likely certificate verification (" .. raised .. ")", err)
  end)

  it("reports any other error with its own text", function()
    for _, raised in ipairs({ "app.lua:7: something else broke", "app.lua:9: assertion failed!" }) do
      local ok, err = connect({ sock = raising_socket(raised) }, fresh_options())
      assert.is_nil(ok)
      assert.equal(raised, err)
    end
  end)
end)

describe("byte for byte with lua-resty-http", function()
  it("refuses a PEM string key with upstream's message", function()
    local _, err = connect(new_httpc(), options("alice", MTLS_PORT, { ssl_client_priv_key = helpers.pem("alice.key") }))
    assert.equal("bad ssl_client_priv_key: cdata expected, got string", err)
    _, err = connect(new_httpc(), options("alice", MTLS_PORT, { ssl_client_cert = helpers.pem("alice.crt") }))
    assert.equal("bad ssl_client_cert: cdata expected, got string", err)
  end)

  -- the last CONNECT request the recorder refused: its request line, then its header lines
  -- sorted (lua-resty-http sends them in a hash order)
  local function last_connect()
    local sock = ngx.socket.tcp()
    assert(sock:connect("127.0.0.1", RECORD_PORT))
    assert(sock:send("GET /last HTTP/1.1\r\nHost: recorder\r\n\r\n"))
    local res = assert(raw_http.read_response(sock))
    sock:close()
    local lines = {}
    for line in res.body:gmatch("(.-)\r\n") do
      if line ~= "" then
        lines[#lines + 1] = line
      end
    end
    local request_line = table.remove(lines, 1)
    table.sort(lines)
    return request_line .. "\n" .. table.concat(lines, "\n")
  end

  local function through_recorder(extra)
    local proxy = { https_proxy = "http://127.0.0.1:" .. RECORD_PORT, https_proxy_authorization = "Basic eHg6eXk=" }
    return options(nil, MTLS_PORT, helpers.merged({ proxy_opts = proxy }, extra))
  end

  it("sends lua-resty-http's User-Agent with the proxy CONNECT request", function()
    local saved = package.loaded["resty.http"]
    package.loaded["resty.http"] = { _USER_AGENT = "lua-resty-http/test-agent" }
    local ok, err = connect(new_httpc(), through_recorder())
    package.loaded["resty.http"] = saved
    assert.is_nil(ok)
    assert.equal("failed to establish a tunnel through a proxy: 403", err)
    local destination = "127.0.0.1:" .. MTLS_PORT
    assert.equal("CONNECT " .. destination .. " HTTP/1.1\nHost: " .. destination
                 .. "\nProxy-Authorization: Basic eHg6eXk=\nUser-Agent: lua-resty-http/test-agent", last_connect())
  end)

  -- the recorder answers broken responses for these hosts (scripts/fixtures.ts)
  local BROKEN_PROXY_ANSWERS = {
    ["cut.test"] = "failed to issue CONNECT to proxy: closed",
    ["garbage.test"] = "failed to issue CONNECT to proxy: couldn't parse HTTP version from response status line: garbage",
    ["nostatus.test"] = "failed to issue CONNECT to proxy: couldn't parse status code from response status line: "
                        .. "HTTP/1.1 abc",
    ["127.0.0.1"] = "failed to establish a tunnel through a proxy: 403",
  }

  it("reads the proxy's answer as lua-resty-http does, with its messages", function()
    for host, message in pairs(BROKEN_PROXY_ANSWERS) do
      local ok, err = connect(new_httpc(), through_recorder({ host = host }))
      assert.is_nil(ok)
      assert.equal(message, err)
    end
  end)

  it("sends the CONNECT request upstream's own connect sends (LUA_RESTY_HTTP_LIB)", function()
    if not helpers.add_lib("LUA_RESTY_HTTP_LIB") then
      helpers.say("SKIPPED: CONNECT against upstream's (LUA_RESTY_HTTP_LIB is not set)")
      pending("CONNECT against upstream's (LUA_RESTY_HTTP_LIB is not set)")
      return
    end
    helpers.add_lib("LUA_RESTY_OPENSSL_LIB")
    helpers.add_lib("LUA_RESTY_STRING_LIB")
    local loaded, upstream_connect = pcall(require, "resty.http_connect")
    if not loaded then
      pending("upstream's resty.http_connect does not load here: " .. tostring(upstream_connect))
      return
    end
    local http = require "resty.http"
    local httpc = http.new()
    upstream_connect(httpc, through_recorder())
    local theirs = last_connect()
    connect(new_httpc(), through_recorder())
    assert.equal(theirs, last_connect())
    helpers.say("CONNECT as upstream sends it: ", (theirs:gsub("\n", " | ")))
    -- the contract is lua-resty-http 0.17's (0.16 answered some of these with nil)
    for host, message in pairs(http._VERSION:match("^0%.17") and BROKEN_PROXY_ANSWERS or {}) do
      local _, upstream_err, detail = upstream_connect(http.new(), through_recorder({ host = host }))
      if detail then
        -- 0.17.1 returns "failed to issue CONNECT to proxy:" and the reason apart (0.17.2 joins them)
        upstream_err = upstream_err .. " " .. detail
      end
      assert.equal(upstream_err, message)
    end
  end)
end)
