-- Reliability: bad input through pool_name() and the drop-in connect(). Each row must give its
-- clear error as nil, err (never a thrown Lua error), must not authenticate anything to the
-- mTLS server (it accepts no connection and logs no request), and must leave no socket open
-- or pooled. The server's view comes from its access log and connection counter
-- (spec/support/reliability.lua).
local ffi = require "ffi"
local ssl = require "ngx.ssl"
local helpers = require "support.helpers"
local raw_http = require "support.raw_http"
local rel = require "support.reliability"
local mtls_pool = require "resty.mtls_pool"
local connect = require "resty.mtls_pool.http_connect"

local env = helpers.env
local PROXY = "http://127.0.0.1:" .. tostring(env("PROXY_PORT"))
local BIG = string.rep("a", 64 * 1024) -- a 64 KiB host name

local KEY_MISMATCH = "private key does not match ssl_client_cert"
local CERT_ONLY = "ssl_client_priv_key is required when ssl_client_cert is set"
local KEY_ONLY = "ssl_client_cert is required when ssl_client_priv_key is set"

-- An empty certificate chain: a STACK_OF(X509) with no element, as a cdata like parse_pem_cert's.
local function empty_chain()
  pcall(ffi.cdef, "void *OPENSSL_sk_new_null(void);")
  pcall(ffi.cdef, "void OPENSSL_sk_free(void *stack);")
  return ffi.gc(ffi.C.OPENSSL_sk_new_null(), ffi.C.OPENSSL_sk_free)
end

local GARBAGE_PEM = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"

-- `options` without the field `name`.
local function without(options, name)
  options[name] = nil
  return options
end

-- Each row: options (a table, or a function returning them), optional default_proxy_opts, then
--   name_err: pool_name's error, or false when pool_name must succeed (a bounded name);
--   err: connect's error (a string: exact; { pattern }: a Lua pattern), default name_err;
--   accepts: TCP connections the server may accept (1 only when TLS fails client-side after
--   connecting; no row may get as far as a request).
local function rows()
  local alice = rel.client("alice")
  local cert, key = alice.cert, alice.key
  local tls = function(extra)
    return rel.options(nil, extra)
  end
  return {
    { "cert nil, key set", tls({ ssl_client_priv_key = key }), name_err = KEY_ONLY },
    { "cert false, key set", tls({ ssl_client_cert = false, ssl_client_priv_key = key }), name_err = KEY_ONLY },
    { "cert set, key nil", tls({ ssl_client_cert = cert }), name_err = CERT_ONLY },
    { "cert set, key false", tls({ ssl_client_cert = cert, ssl_client_priv_key = false }), name_err = CERT_ONLY },
    { "cert number", tls({ ssl_client_cert = 42, ssl_client_priv_key = key }),
      name_err = "bad ssl_client_cert: cdata expected, got number" },
    { "cert table", tls({ ssl_client_cert = {}, ssl_client_priv_key = key }),
      name_err = "bad ssl_client_cert: cdata expected, got table" },
    { "cert true", tls({ ssl_client_cert = true, ssl_client_priv_key = key }),
      name_err = "bad ssl_client_cert: cdata expected, got boolean" },
    { "key number", tls({ ssl_client_cert = cert, ssl_client_priv_key = 7 }),
      name_err = "bad ssl_client_priv_key: cdata expected, got number" },
    { "key table", tls({ ssl_client_cert = cert, ssl_client_priv_key = { key } }),
      name_err = "bad ssl_client_priv_key: cdata expected, got table" },
    { "key true", tls({ ssl_client_cert = cert, ssl_client_priv_key = true }),
      name_err = "bad ssl_client_priv_key: cdata expected, got boolean" },
    { "cert and key as PEM text", tls({ ssl_client_cert = helpers.pem("alice.crt"), ssl_client_priv_key = key }),
      name_err = "bad ssl_client_cert: cdata expected, got string" },
    { "key as PEM text", tls({ ssl_client_cert = cert, ssl_client_priv_key = helpers.pem("alice.key") }),
      name_err = "bad ssl_client_priv_key: cdata expected, got string" },
    { "garbage PEM text as cert", tls({ ssl_client_cert = GARBAGE_PEM, ssl_client_priv_key = key }),
      name_err = "bad ssl_client_cert: cdata expected, got string" },
    -- what a caller that ignores parse errors passes on: nil from the parser
    { "garbage PEM parsed (nil) as cert", tls({ ssl_client_cert = ssl.parse_pem_cert(GARBAGE_PEM), ssl_client_priv_key = key }),
      name_err = KEY_ONLY },
    { "garbage PEM parsed (nil) as key", tls({ ssl_client_cert = cert, ssl_client_priv_key = ssl.parse_pem_priv_key("garbage") }),
      name_err = CERT_ONLY },
    { "an empty chain", tls({ ssl_client_cert = empty_chain(), ssl_client_priv_key = key }),
      name_err = "bad ssl_client_cert: the certificate chain is empty" },
    { "a mismatched key (RSA)", tls({ ssl_client_cert = cert, ssl_client_priv_key = helpers.key("attacker") }),
      name_err = KEY_MISMATCH },
    { "a mismatched key (EC for an RSA cert)", tls({ ssl_client_cert = cert, ssl_client_priv_key = rel.client("carol").key }),
      name_err = KEY_MISMATCH },
    { "proxy URI with scheme https", rel.options("alice", { proxy_opts = { https_proxy = "https://127.0.0.1:3128" } }),
      name_err = "protocol https not supported for proxy connections" },
    { "proxy URI with scheme socks5", rel.options("alice", { proxy_opts = { https_proxy = "socks5://127.0.0.1:1080" } }),
      name_err = "protocol socks5 not supported for proxy connections" },
    { "default proxy URI with scheme ftp", rel.options("alice"), default_proxy_opts = { https_proxy = "ftp://127.0.0.1:21" },
      name_err = "protocol ftp not supported for proxy connections" },
    { "proxy URI without scheme", rel.options("alice", { proxy_opts = { https_proxy = "127.0.0.1:3128" } }),
      name_err = "bad proxy URI: expected http://host[:port]" },
    { "proxy URI with credentials (not echoed)",
      rel.options("alice", { proxy_opts = { https_proxy = "http://user:s3cret@127.0.0.1:3128" } }),
      name_err = "bad proxy URI: credentials in the URI are not supported, use http(s)_proxy_authorization" },
    { "proxy URI not a string", rel.options("alice", { proxy_opts = { https_proxy = 3128 } }),
      name_err = "bad https_proxy: string expected, got number" },
    { "port without scheme", without(rel.options("alice"), "scheme"),
      name_err = "'scheme' is required when providing a port" },
    { "scheme not a string", rel.options("alice", { scheme = true }),
      name_err = "bad scheme: \"http\" or \"https\" expected, got boolean" },
    { "unix socket with a port", rel.options("alice", { host = "unix:/nonexistent.sock" }),
      name_err = "bad port: a unix socket host takes no port" },
    { "port out of range", rel.options("alice", { port = 65536 }),
      name_err = "bad port: integer from 1 to 65535 expected, got 65536" },
    { "options not a table", "https://127.0.0.1/", name_err = "bad options: table expected, got string" },
    { "options nil", nil, name_err = "bad options: table expected, got nil" },
    { "host nil", rel.options("alice", { host = false }), name_err = "bad host: non-empty string expected, got boolean" },
    { "64 KiB host name", rel.options("alice", { host = BIG }), name_err = false,
      err = { '^no resolver defined to resolve "aaaa' } },
    { "64 KiB host name through a proxy", rel.options("alice", { host = BIG, proxy_opts = { https_proxy = PROXY } }),
      name_err = false, err = { "^failed to establish a tunnel through a proxy: %d+$" } },
    { "64 KiB proxy host name", rel.options("alice", { proxy_opts = { https_proxy = "http://" .. BIG .. ":3128" } }),
      name_err = false, err = { "^failed to connect to: aaaa" } },
    { "64 KiB unix socket path", without(rel.options("alice", { host = "unix:/" .. BIG }), "port"),
      name_err = false, err = { "." } },
    { "64 KiB ssl_server_name", rel.options("alice", { ssl_server_name = BIG }),
      name_err = "bad ssl_server_name: 1 to 255 bytes without control characters expected" },
    { "CR/LF in the host (header injection into CONNECT)",
      rel.options("alice", { host = "127.0.0.1\r\nX-Injected: 1", proxy_opts = { https_proxy = PROXY } }),
      name_err = "bad host: control characters are not allowed" },
    { "CR/LF in the proxy credentials",
      rel.options("alice", { proxy_opts = { https_proxy = PROXY, https_proxy_authorization = "Basic eDp5\r\nX-Injected: 1" } }),
      name_err = "bad https_proxy_authorization: control characters are not allowed" },
  }
end

local function matches(expected, actual)
  if type(expected) == "table" then
    return type(actual) == "string" and actual:find(expected[1]) ~= nil
  end
  return expected == actual
end

local function show(err)
  err = tostring(err)
  return #err > 200 and err:sub(1, 200) .. ("... (%d bytes)"):format(#err) or err
end

describe("bad input through pool_name and connect", function()
  setup(function()
    assert(mtls_pool.configure({ provider = "auto" }))
  end)

  local checked = 0
  for _, row in ipairs(rows()) do
    local label, options = row[1], row[2]
    local expected = row.err
    if expected == nil then
      expected = row.name_err
    end
    it(label .. ": its clear error, no throw, nothing reaches the server, nothing pooled", function()
      -- pool_name
      local called, name, name_err = pcall(mtls_pool.pool_name, options, row.default_proxy_opts)
      assert.is_true(called, "pool_name threw: " .. tostring(name))
      if row.name_err then
        assert.is_nil(name)
        assert.equal(row.name_err, name_err)
      else
        assert.is_nil(name_err)
        assert.is_string(name)
        assert.is_true(#name <= 512, "pool name of " .. #name .. " bytes")
      end

      -- connect, watched from the server
      local httpc = { sock = ngx.socket.tcp(), proxy_opts = row.default_proxy_opts }
      httpc.sock:settimeouts(3000, 3000, 3000)
      local seen, called_ok, ok, err = rel.observe(pcall, connect, httpc, options)
      assert.is_true(called_ok, "connect threw: " .. tostring(ok))
      assert.is_nil(ok)
      assert.is_true(matches(expected, err), ("expected %s, got %s"):format(show(
        type(expected) == "table" and "/" .. expected[1] .. "/" or expected), show(err)))
      assert.is_nil(tostring(err):find("s3cret", 1, true), "the error echoes a secret")
      -- the caller's socket is not connected: nothing can be sent on it, authenticated or not
      local sent, send_err = httpc.sock:send("GET /bad-input HTTP/1.1\r\nHost: localhost\r\n\r\n")
      assert.is_nil(sent)
      assert.equal("closed", send_err)

      assert.equal(row.accepts or 0, seen.accepted, "connections the server accepted")
      assert.equal(0, #seen.requests, "requests the server answered:\n" .. rel.lines(seen.requests))
      assert.equal(0, seen.established, "sockets left open to the server")
      if name then
        assert.is_false(rel.pooled(name), "a connection was left in pool " .. name:sub(1, 80))
      end
      checked = checked + 1
    end)
  end

  it("summary", function()
    helpers.say(("bad input: %d rows through pool_name and connect: clear errors, no throw, nothing reached "
                 .. "the server, nothing pooled"):format(checked))
    assert.is_true(checked > 0)
  end)

  -- When a handshake that fails verification completes synchronously (common on loopback),
  -- lua-resty-core's sslhandshake (Debian's 0.1.25, before lua-resty-core #500/#533) throws
  -- "assertion failed!" when asked for a session, and returns true (on a socket it has closed)
  -- when passed ssl_reused_session = false. connect must turn both into nil, err.
  it("a certificate verification failure is nil, err: never thrown, never ok", function()
    local counts = { refused = 0, thrown = 0, ok = 0 }
    local seen = rel.observe(function()
      for i = 1, 100 do
        local options = rel.options("bob", { ssl_server_name = "wrong.example" })
        if i % 2 == 0 then
          options.ssl_reused_session = false
        end
        local httpc = { sock = ngx.socket.tcp() }
        local called, ok, err = pcall(connect, httpc, options)
        if not called then
          assert.is_truthy(tostring(ok):find("resty/core/socket%.lua:%d+: assertion failed"), tostring(ok))
          counts.thrown = counts.thrown + 1
          httpc.sock:close()
        elseif ok then
          counts.ok = counts.ok + 1
          -- the socket is closed all the same: nothing goes out unverified
          local sent, send_err = httpc.sock:send("GET /unverified HTTP/1.1\r\nHost: localhost\r\n\r\n")
          assert.is_nil(sent)
          assert.equal("closed", send_err)
        else
          -- "certificate host mismatch", or however connect words a verification error it recovered
          assert.matches("certificate", err)
          counts.refused = counts.refused + 1
        end
      end
    end)
    assert.equal(0, #seen.requests, "requests the server answered:\n" .. rel.lines(seen.requests))
    assert.equal(0, seen.established, "sockets left open to the server")
    helpers.say(("verification failures: 100 connects: %d nil, err; %d thrown; %d ok on a closed socket")
                :format(counts.refused, counts.thrown, counts.ok))
    assert.same({ thrown = 0, ok = 0 }, { thrown = counts.thrown, ok = counts.ok })
  end)

  -- ngx_lua leaves OpenSSL's errors from a failed handshake on the queue, and the next TLS
  -- operation of the worker would log them as [alert] "ignoring stale global SSL error":
  -- connect clears the queue whenever it gives up on a handshake.
  it("a failed handshake leaves no OpenSSL error behind for the next TLS operation", function()
    local next_options = rel.options("bob", { pool = "reliability-fresh" }) -- parsed now: parsing clears errors
    local before = #helpers.log_lines("ignoring stale global SSL error")
    for _ = 1, 10 do
      local ok, err = connect({ sock = ngx.socket.tcp() }, rel.options("alice", { ssl_server_name = "wrong.example" }))
      assert.is_nil(ok)
      assert.matches("certificate", err)
    end
    -- the next TLS handshake of this worker, on a fresh connection
    local res, get_err = raw_http.get(next_options, "/", nil, false)
    assert(res, get_err)
    assert.equal("CN=bob", res.dn)
    assert.equal(before, #helpers.log_lines("ignoring stale global SSL error"))
  end)
end)
