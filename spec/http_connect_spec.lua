-- The drop-in connect against real processes: an nginx mTLS server (ssl_verify_client on,
-- echoing $ssl_client_s_dn and $connection), tinyproxy for CONNECT, a unix socket.
local helpers = require "support.helpers"
local raw_http = require "support.raw_http"
local mtls_pool = require "resty.mtls_pool"
local connect = require "resty.mtls_pool.http_connect"

local env = helpers.env
local cert, key = helpers.cert, helpers.key

local MTLS_PORT = tonumber(env("MTLS_SERVER_PORT"))
local MTLS_SOCK = env("MTLS_SERVER_SOCK")
local TLS_PORT = tonumber(env("TLS_SERVER_PORT"))
local HTTP_PORT = tonumber(env("HTTP_SERVER_PORT"))
local PROXY = "http://127.0.0.1:" .. tostring(env("PROXY_PORT"))
local AUTH_PROXY = "http://127.0.0.1:" .. tostring(env("PROXY_AUTH_PORT"))
local PROXY_CREDENTIALS = "Basic " .. ngx.encode_base64(tostring(env("PROXY_AUTH_USER")) .. ":"
                                                        .. tostring(env("PROXY_AUTH_PASS")))

-- Certificates parsed once, as a real application does.
local clients = {}
local function client(name)
  if not clients[name] then
    clients[name] = { cert = cert(name), key = key(name) }
  end
  return clients[name]
end

local function mtls(name, extra)
  local c = client(name)
  local options = { scheme = "https", host = "127.0.0.1", port = MTLS_PORT, ssl_server_name = "localhost",
                    ssl_client_cert = c.cert, ssl_client_priv_key = c.key }
  for k, v in pairs(extra or {}) do
    options[k] = v
  end
  return options
end

local function get(options, connect_fn)
  local res, err = raw_http.get(options, nil, nil, nil, connect_fn)
  assert(res, err)
  return res
end

-- Sends alice, bob, alice, bob... `rounds` times; returns the rows and the mismatch count.
local function alternate(rounds, extra, connect_fn)
  local rows, mismatches, reused = {}, 0, 0
  for i = 1, rounds * 2 do
    local who = (i % 2 == 1) and "alice" or "bob"
    local res = get(mtls(who, extra), connect_fn)
    assert.equal(200, res.status)
    if res.dn ~= "CN=" .. who then
      mismatches = mismatches + 1
    end
    if res.reused > 0 then
      reused = reused + 1
    end
    rows[#rows + 1] = ("%s -> %s conn=%d reused=%d"):format(who, tostring(res.dn), res.conn, res.reused)
  end
  return rows, mismatches, reused
end

describe("http_connect against a real mTLS server", function()
  setup(function()
    assert(mtls_pool.configure({ provider = "auto" }))
  end)

  it("keeps alice and bob apart through one worker, and still reuses connections", function()
    local rows, mismatches, reused = alternate(4)
    helpers.say("isolated: ", table.concat(rows, "; "))
    assert.equal(0, mismatches)
    assert.is_true(reused >= 6, "expected pooled connections to be reused, got " .. reused)
  end)

  it("leaks identities with an identity-less pool name (the scenario can fail)", function()
    local rows, mismatches = alternate(4, { pool = "identity-less:127.0.0.1:" .. MTLS_PORT },
                                       require("support.by_hand_connect"))
    helpers.say("identity-less: ", table.concat(rows, "; "))
    assert.is_true(mismatches > 0, "the shared pool was expected to serve bob on alice's connection")
  end)

  it("talks mTLS over a unix socket", function()
    local options = { scheme = "https", host = "unix:" .. MTLS_SOCK, ssl_server_name = "localhost" }
    for _, who in ipairs({ "alice", "bob", "alice", "bob" }) do
      local c = client(who)
      options.ssl_client_cert, options.ssl_client_priv_key = c.cert, c.key
      local res = get(options)
      assert.equal("CN=" .. who, res.dn)
    end
  end)

  it("plain https and http still work, and send no client certificate", function()
    local res = get({ scheme = "https", host = "127.0.0.1", port = TLS_PORT, ssl_server_name = "localhost" })
    assert.equal(200, res.status)
    assert.equal("", res.dn)
    res = get({ scheme = "http", host = "127.0.0.1", port = HTTP_PORT })
    assert.equal(200, res.status)
  end)

  it("a certificate from another CA: the server refuses it, and the next good request works", function()
    local res = get(mtls("mallory"))
    assert.equal(400, res.status)
    assert.is_nil(res.dn)
    local after = get(mtls("alice"))
    assert.equal(200, after.status)
    assert.equal("CN=alice", after.dn)
  end)

  it("a failed handshake closes the socket: nothing broken goes back to the pool", function()
    local options = mtls("carol", { ssl_server_name = "not-localhost.invalid" })
    local res, err = raw_http.get(options)
    assert.is_nil(res)
    assert.matches("certificate", err)
    -- same pool name, verification fixed: a fresh connection, not a half-open one
    local ok = get(mtls("carol", { ssl_server_name = "localhost" }))
    assert.equal("CN=carol", ok.dn)
  end)

  it("refuses a victim's certificate with an attacker's key, even with the victim's connection pooled", function()
    local victim = get(mtls("alice"))
    assert.equal("CN=alice", victim.dn)
    local httpc = { sock = ngx.socket.tcp() }
    local ok, err = connect(httpc, mtls("alice", { ssl_client_priv_key = key("attacker") }))
    assert.is_nil(ok)
    assert.equal("private key does not match ssl_client_cert", err)
  end)

  it("errors, never connects plain TLS, when only one of cert and key is given", function()
    local httpc = { sock = ngx.socket.tcp() }
    local ok, err = connect(httpc, mtls("alice", { ssl_client_priv_key = false }))
    assert.is_nil(ok)
    assert.equal("ssl_client_priv_key is required when ssl_client_cert is set", err)
  end)

  it("errors on an ngx_lua without tcpsock:setclientcert (< 0.10.23) instead of connecting plain TLS", function()
    -- a socket object as older ngx_lua builds have it: everything but setclientcert
    local real = ngx.socket.tcp()
    local old_sock = setmetatable({}, { __index = function(_, method)
      if method == "setclientcert" then
        return nil
      end
      return function(_, ...) return real[method](real, ...) end
    end })
    local ok, err = connect({ sock = old_sock }, mtls("alice"))
    assert.is_nil(ok)
    assert.equal("ssl_client_cert needs tcpsock:setclientcert (ngx_lua >= 0.10.23)", err)
    assert.is_nil(real:getreusedtimes(), "nothing may have been connected")
    -- plain https still works on such a socket
    ok, err = connect({ sock = old_sock }, { scheme = "https", host = "127.0.0.1", port = TLS_PORT,
                                             ssl_server_name = "localhost" })
    assert.is_true(ok, err)
    real:close()
  end)

  it("sets the fields lua-resty-http's request code reads", function()
    local res = get(mtls("alice"))
    local httpc = res.httpc
    assert.equal("127.0.0.1", httpc.host)
    assert.equal(MTLS_PORT, httpc.port)
    assert.is_true(httpc.keepalive)
    assert.is_true(httpc.ssl)
    assert.is_nil(httpc.path_prefix)
    assert.is_nil(httpc.http_proxy_auth)
  end)

  it("returns the SSL session when asked for one, and honours an explicit pool name", function()
    local httpc = { sock = ngx.socket.tcp() }
    local ok, err, session = connect(httpc, mtls("bob", { pool = "explicit-bob", ssl_reused_session = false }))
    assert.is_true(ok, err)
    assert.is_not_nil(session)
    httpc.sock:close()
    httpc = { sock = ngx.socket.tcp() }
    ok, err = connect(httpc, { scheme = "https", host = "127.0.0.1", port = MTLS_PORT, pool = 42 })
    assert.is_nil(ok)
    assert.equal("bad pool: string expected, got number", err)
  end)

  it("logs the pool name at DEBUG with pool_debug, without secrets", function()
    local before = #helpers.log_lines("mtls_pool: pool name ")
    get(mtls("alice", { pool_debug = true, proxy_opts = { https_proxy = PROXY, https_proxy_authorization = "Basic c2VjcmV0" } }))
    local lines = helpers.log_lines("mtls_pool: pool name ")
    assert.equal(before + 1, #lines)
    assert.matches("[debug]", lines[#lines], 1, true)
    assert.matches("|sha256:" .. helpers.fingerprint("alice"), lines[#lines], 1, true)
    assert.is_nil(lines[#lines]:find("c2VjcmV0", 1, true))
  end)
end)

describe("http_connect through a real CONNECT proxy (tinyproxy)", function()
  it("keeps identities apart through the tunnel, and reuses tunnels", function()
    local rows, mismatches, reused = alternate(3, { proxy_opts = { https_proxy = PROXY } })
    helpers.say("via proxy: ", table.concat(rows, "; "))
    assert.equal(0, mismatches)
    assert.is_true(reused >= 4)
  end)

  it("authenticates to a proxy with Basic credentials, and keeps credentials apart", function()
    local with = { proxy_opts = { https_proxy = AUTH_PROXY, https_proxy_authorization = PROXY_CREDENTIALS } }
    local first = get(mtls("alice", with))
    local again = get(mtls("alice", with))
    assert.equal("CN=alice", again.dn)
    assert.equal(first.conn, again.conn)
    -- other credentials: another pool, so the proxy checks them on a fresh tunnel
    local res, err = raw_http.get(mtls("alice", { proxy_opts = { https_proxy = AUTH_PROXY,
                                                                 https_proxy_authorization = "Basic bm86bm8=" } }))
    assert.is_nil(res)
    -- tinyproxy answers wrong credentials with 401, missing ones with 407
    assert.equal("failed to establish a tunnel through a proxy: 401", err)
    res, err = raw_http.get(mtls("alice", { proxy_opts = { https_proxy = AUTH_PROXY } }))
    assert.is_nil(res)
    assert.equal("failed to establish a tunnel through a proxy: 407", err)
  end)

  it("honours no_proxy (a dead proxy that must not be used)", function()
    local dead = "http://127.0.0.1:9"
    local res = get(mtls("bob", { proxy_opts = { https_proxy = dead, no_proxy = "localhost,127.0.0.1" } }))
    assert.equal("CN=bob", res.dn)
    local _, err = raw_http.get(mtls("bob", { proxy_opts = { https_proxy = dead, no_proxy = "example.com" } }))
    assert.matches("^failed to connect to: 127.0.0.1:9: ", err)
  end)

  it("plain http through the proxy sends absolute-form targets and per-request credentials", function()
    local res = get({ scheme = "http", host = "127.0.0.1", port = HTTP_PORT,
                      proxy_opts = { http_proxy = AUTH_PROXY, http_proxy_authorization = PROXY_CREDENTIALS } })
    assert.equal(200, res.status)
    assert.equal("http://127.0.0.1:" .. HTTP_PORT, res.httpc.path_prefix)
    assert.equal(PROXY_CREDENTIALS, res.httpc.http_proxy_auth)
  end)
end)
