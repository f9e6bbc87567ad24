-- Pool names for the option sets lua-resty-http 0.17 accepts: defaults, unix sockets, proxies,
-- no_proxy, credentials, errors, and the bounded caches behind them. Identities are covered by
-- identity_spec.lua.
local helpers = require "support.helpers"
local mtls_pool = require "resty.mtls_pool"

local pool_name = mtls_pool.pool_name

local function name(options, default_proxy_opts)
  local n, err = pool_name(options, default_proxy_opts)
  assert.is_nil(err)
  assert.is_string(n)
  return n
end

local function fails(options, default_proxy_opts)
  local n, err = pool_name(options, default_proxy_opts)
  assert.is_nil(n)
  assert.is_string(err)
  return err
end

describe("pool_name examples", function()
  local examples = {
    { "https defaults", { scheme = "https", host = "example.com" },
      "mtls1|https|example.com|#443|+|~|+|~|~|~" },
    { "http defaults", { scheme = "http", host = "example.com" },
      "mtls1|http|example.com|#80|!|~|~|~|~|~" },
    { "explicit port", { scheme = "https", host = "example.com", port = 8443 },
      "mtls1|https|example.com|#8443|+|~|+|~|~|~" },
    { "port as a string", { scheme = "https", host = "example.com", port = "8443" },
      "mtls1|https|example.com|#8443|+|~|+|~|~|~" },
    { "ssl_verify = false", { scheme = "https", host = "example.com", ssl_verify = false },
      "mtls1|https|example.com|#443|+|~|!|~|~|~" },
    { "only false disables ssl_verify", { scheme = "https", host = "example.com", ssl_verify = "no" },
      "mtls1|https|example.com|#443|+|~|+|~|~|~" },
    { "SNI name", { scheme = "https", host = "10.0.0.1", ssl_server_name = "api.example.com" },
      "mtls1|https|10.0.0.1|#443|+|api.example.com|+|~|~|~" },
    { "SNI false", { scheme = "https", host = "example.com", ssl_server_name = false },
      "mtls1|https|example.com|#443|+|!|+|~|~|~" },
    { "http ignores TLS options", { scheme = "http", host = "example.com", ssl_server_name = "x", ssl_verify = false },
      "mtls1|http|example.com|#80|!|~|~|~|~|~" },
    { "IPv6 literal", { scheme = "https", host = "[::1]", port = 8443 },
      "mtls1|https|[::1]|#8443|+|~|+|~|~|~" },
    { "separator bytes are escaped", { scheme = "https", host = "a|b:c%d#e~f" },
      "mtls1|https|a%7Cb:c%25d%23e%7Ef|#443|+|~|+|~|~|~" },
    { "unix socket", { host = "unix:/run/app.sock" },
      "mtls1|~|unix:/run/app.sock|~|!|~|~|~|~|~" },
    { "TLS over a unix socket", { scheme = "https", host = "unix:/run/app.sock" },
      "mtls1|https|unix:/run/app.sock|~|+|~|+|~|~|~" },
    { "unix socket ignores proxies", { host = "unix:/run/app.sock", proxy_opts = { http_proxy = "http://p:3128" } },
      "mtls1|~|unix:/run/app.sock|~|!|~|~|~|~|~" },
    { "http proxy", { scheme = "http", host = "example.com", proxy_opts = { http_proxy = "http://proxy:3128" } },
      "mtls1|http|example.com|#80|!|~|~|http://proxy:3128|~|~" },
    { "https proxy", { scheme = "https", host = "example.com", proxy_opts = { https_proxy = "http://proxy:3128" } },
      "mtls1|https|example.com|#443|+|~|+|http://proxy:3128|~|~" },
    { "http request ignores https_proxy",
      { scheme = "http", host = "example.com", proxy_opts = { https_proxy = "http://proxy:3128" } },
      "mtls1|http|example.com|#80|!|~|~|~|~|~" },
    { "IPv6 proxy", { scheme = "https", host = "example.com", proxy_opts = { https_proxy = "http://[::1]:3128" } },
      "mtls1|https|example.com|#443|+|~|+|http://[::1]:3128|~|~" },
  }
  for _, example in ipairs(examples) do
    it(example[1], function()
      assert.equal(example[3], name(example[2]))
    end)
  end

  it("encodes absent, empty and false differently", function()
    local token = require("resty.mtls_pool.encode").token
    assert.same({ "~", '""', "!", "+", "#0", "0" }, { token(nil), token(""), token(false), token(true), token(0), token("0") })
    assert.are_not.equal(name({ scheme = "https", host = "h" }), name({ scheme = "https", host = "h", ssl_server_name = false }))
  end)

  it("default_proxy_opts apply when options.proxy_opts is nil, and options.proxy_opts wins", function()
    local defaults = { https_proxy = "http://default:3128" }
    assert.matches("|http://default:3128|", name({ scheme = "https", host = "h" }, defaults), 1, true)
    assert.matches("|http://mine:3128|",
      name({ scheme = "https", host = "h", proxy_opts = { https_proxy = "http://mine:3128" } }, defaults), 1, true)
  end)

  it("bounds the length of long names and keeps them distinct", function()
    local long_a = name({ scheme = "https", host = string.rep("a", 4096) })
    local long_b = name({ scheme = "https", host = string.rep("a", 4095) .. "b" })
    assert.is_true(#long_a <= 512)
    assert.equal("mtls1~", long_a:sub(1, 6))
    assert.are_not.equal(long_a, long_b)
    assert.equal(long_a, name({ scheme = "https", host = string.rep("a", 4096) }))
  end)
end)

describe("pool_name no_proxy", function()
  local function proxied(host, no_proxy)
    local n = name({ scheme = "https", host = host,
                     proxy_opts = { https_proxy = "http://proxy:3128", no_proxy = no_proxy } })
    return n:find("|http://proxy:3128|", 1, true) ~= nil
  end

  local cases = {
    { "example.com", nil, true },
    { "example.com", "*", false },
    { "example.com", "example.com", false },
    { "api.example.com", "example.com", false },
    { "api.example.com", ".example.com", false },
    { "example.com", ".example.com", false },
    { "notexample.com", "example.com", true },
    { "example.com.evil", "example.com", true },
    { "other.org", "a.com,other.org", false },
    { "other.org", "a.com, other.org ", false },
    { "localhost", "localhost", false },
    -- as upstream: an entry without a dot matches only that exact host
    { "api.com", "com", true },
    { "a.localhost", "localhost", true },
    { "example.com", "a.com,,b.com", true },
    { "example.com", "", true },
  }
  for _, case in ipairs(cases) do
    local host, no_proxy, expected = case[1], case[2], case[3]
    it(("%s with no_proxy %q is %s"):format(host, tostring(no_proxy), expected and "proxied" or "direct"), function()
      assert.equal(expected, proxied(host, no_proxy))
    end)
  end
end)

describe("pool_name proxy credentials", function()
  local function https_via(authorization)
    return name({ scheme = "https", host = "example.com",
                  proxy_opts = { https_proxy = "http://proxy:3128", https_proxy_authorization = authorization } })
  end

  it("https: different credentials give different pools, equal credentials the same", function()
    local alice = https_via("Basic YWxpY2U6c2VjcmV0")
    assert.are_not.equal(alice, https_via("Basic Ym9iOnNlY3JldA=="))
    assert.equal(alice, https_via("Basic YWxpY2U6c2VjcmV0"))
    assert.are_not.equal(alice, https_via(nil))
    assert.are_not.equal(https_via(nil), https_via(""))
  end)

  it("never appear in the name, whole or in part", function()
    local secret = "Basic c3VwZXI6c2VjcmV0LXBhc3N3b3Jk"
    local n = https_via(secret)
    assert.is_nil(n:find(secret, 1, true))
    assert.is_nil(n:find("c3VwZXI6c2VjcmV0", 1, true))
    assert.is_nil(n:find("Basic", 1, true))
    assert.matches("|http://proxy:3128|%x+|~$", n)
  end)

  it("http: the credentials go with each request, not into the pool name", function()
    local function http_via(authorization)
      return name({ scheme = "http", host = "example.com",
                    proxy_opts = { http_proxy = "http://proxy:3128", http_proxy_authorization = authorization } })
    end
    assert.equal(http_via("Basic YWxpY2U6c2VjcmV0"), http_via("Basic Ym9iOnNlY3JldA=="))
    assert.is_nil(http_via("Basic YWxpY2U6c2VjcmV0"):find("YWxpY2U6c2VjcmV0", 1, true))
  end)

  it("are dropped when no_proxy exempts the host", function()
    local n = name({ scheme = "https", host = "example.com",
                     proxy_opts = { https_proxy = "http://proxy:3128", https_proxy_authorization = "Basic eA==",
                                    no_proxy = "example.com" } })
    assert.equal("mtls1|https|example.com|#443|+|~|+|~|~|~", n)
  end)
end)

describe("pool_name errors", function()
  local cases = {
    { "options not a table", "x", "bad options: table expected, got string" },
    { "no host", { scheme = "https" }, "bad host: non-empty string expected, got nil" },
    { "empty host", { scheme = "https", host = "" }, "bad host: non-empty string expected, got string" },
    { "host not a string", { scheme = "https", host = 42 }, "bad host: non-empty string expected, got number" },
    { "unknown scheme", { scheme = "ftp", host = "h" }, "bad scheme: \"http\" or \"https\" expected, got \"ftp\"" },
    { "port without scheme", { host = "h", port = 443 }, "'scheme' is required when providing a port" },
    { "port out of range", { scheme = "https", host = "h", port = 70000 },
      "bad port: integer from 1 to 65535 expected, got 70000" },
    { "port not a number", { scheme = "https", host = "h", port = "https" },
      "bad port: integer from 1 to 65535 expected, got https" },
    { "fractional port", { scheme = "https", host = "h", port = 44.5 },
      "bad port: integer from 1 to 65535 expected, got 44.5" },
    { "port table", { scheme = "https", host = "h", port = {} },
      "bad port: integer from 1 to 65535 expected, got table" },
    { "unix socket with a port", { scheme = "https", host = "unix:/x.sock", port = 1 },
      "bad port: a unix socket host takes no port" },
    { "SNI name not a string", { scheme = "https", host = "h", ssl_server_name = 1 },
      "bad ssl_server_name: string expected, got number" },
    { "empty SNI name", { scheme = "https", host = "h", ssl_server_name = "" },
      "bad ssl_server_name: 1 to 255 bytes without control characters expected" },
    { "SNI name over 255 bytes", { scheme = "https", host = "h", ssl_server_name = string.rep("s", 256) },
      "bad ssl_server_name: 1 to 255 bytes without control characters expected" },
    { "SNI name with CR/LF", { scheme = "https", host = "h", ssl_server_name = "a\r\nb" },
      "bad ssl_server_name: 1 to 255 bytes without control characters expected" },
    { "host with CR/LF", { scheme = "https", host = "h\r\nX-Injected: 1" },
      "bad host: control characters are not allowed" },
    { "host with NUL", { scheme = "http", host = "h\0" }, "bad host: control characters are not allowed" },
    { "proxy authorization with CR/LF",
      { scheme = "https", host = "h", proxy_opts = { https_proxy = "http://p", https_proxy_authorization = "Basic x\r\nX: y" } },
      "bad https_proxy_authorization: control characters are not allowed" },
    { "proxy_opts not a table", { scheme = "https", host = "h", proxy_opts = "http://p" },
      "bad proxy_opts: table expected, got string" },
    { "proxy URI not a string", { scheme = "https", host = "h", proxy_opts = { https_proxy = 1 } },
      "bad https_proxy: string expected, got number" },
    { "proxy URI with another scheme", { scheme = "https", host = "h", proxy_opts = { https_proxy = "socks5://p:1" } },
      "protocol socks5 not supported for proxy connections" },
    { "proxy URI without scheme", { scheme = "http", host = "h", proxy_opts = { http_proxy = "proxy:3128" } },
      "bad proxy URI: expected http://host[:port]" },
    { "empty proxy URI", { scheme = "http", host = "h", proxy_opts = { http_proxy = "" } },
      "bad proxy URI: expected http://host[:port]" },
    { "proxy URI with a bad port", { scheme = "http", host = "h", proxy_opts = { http_proxy = "http://p:99999" } },
      "bad proxy URI: expected http://host[:port]" },
    { "credentials in the proxy URI",
      { scheme = "https", host = "h", proxy_opts = { https_proxy = "http://user:pw@p:3128" } },
      "bad proxy URI: credentials in the URI are not supported, use http(s)_proxy_authorization" },
    { "proxy authorization not a string",
      { scheme = "https", host = "h", proxy_opts = { https_proxy = "http://p", https_proxy_authorization = {} } },
      "bad https_proxy_authorization: string expected, got table" },
    { "no_proxy not a string",
      { scheme = "https", host = "h", proxy_opts = { https_proxy = "http://p", no_proxy = true } },
      "bad no_proxy: string expected, got boolean" },
  }
  for _, case in ipairs(cases) do
    it(case[1], function()
      assert.equal(case[3], fails(case[2]))
    end)
  end

  it("never echoes a proxy URI, which may hold secrets", function()
    local err = fails({ scheme = "https", host = "h", proxy_opts = { https_proxy = "http://u:hunter2@p" } })
    assert.is_nil(err:find("hunter2", 1, true))
  end)
end)

describe("pool_name caches", function()
  -- Every call with another host, SNI name, proxy and credentials: each cache fills, is emptied
  -- and fills again. An unbounded one would keep ~50,000 entries (tens of MB).
  local function distinct_calls(from, to)
    for i = from, to do
      name({ scheme = "https", host = "h" .. i .. ".example", ssl_server_name = "sni" .. i .. ".example",
             proxy_opts = { https_proxy = "http://proxy" .. i .. ".example:3128",
                            https_proxy_authorization = "Basic " .. i } })
    end
  end

  local function lua_kb()
    collectgarbage()
    collectgarbage()
    return collectgarbage("count")
  end

  it("stay bounded when every call names something new", function()
    distinct_calls(1, 5000)
    local base = lua_kb()
    distinct_calls(5001, 55000)
    local grown = lua_kb() - base
    helpers.say(("caches: Lua heap %d KB after 5,000 distinct pool_names, %+d KB after 50,000 more"):format(
      base, grown))
    assert.is_true(grown < 2048, ("grew by %d KB"):format(grown))
  end)
end)
