-- The real lua-resty-http (lib folder in LUA_RESTY_HTTP_LIB; it is in no registry here) against
-- the real mTLS server: as shipped, patched with mtls_pool.patch(), and through the vendoring
-- shim (dist-lua/shim ahead of it on package.path). Prints what each way does.
local helpers = require "support.helpers"
local mtls_pool = require "resty.mtls_pool"

local LIB = helpers.env("LUA_RESTY_HTTP_LIB")
local REPO = helpers.env("REPO_ROOT")
local MTLS_PORT = tonumber(helpers.env("MTLS_SERVER_PORT"))

if not LIB then
  helpers.say("SKIPPED: lua-resty-http compat suite: set LUA_RESTY_HTTP_LIB to a lua-resty-http lib folder")
  describe("lua-resty-http compat", function()
    pending("SKIPPED: lua-resty-http compat suite (LUA_RESTY_HTTP_LIB is not set)")
  end)
  return
end

-- A fresh copy of resty.http; with the shim first on package.path when `shim` is set. The
-- copy keeps the resty.http_connect it required at load time.
local function load_http(shim)
  package.loaded["resty.http"] = nil
  package.loaded["resty.http_connect"] = nil
  local saved = package.path
  if shim then
    package.path = REPO .. "/dist-lua/shim/?.lua;" .. package.path
  end
  local http = require "resty.http"
  package.path = saved
  package.loaded["resty.http"] = nil
  package.loaded["resty.http_connect"] = nil
  return http
end

local clients = {}
for _, name in ipairs({ "alice", "bob" }) do
  clients[name] = { cert = helpers.cert(name), key = helpers.key(name) }
end

-- One request as `who` through lua-resty-http's own API (with the connect options `extra`); the
-- connection goes back to the pool.
local function request(http, who, extra)
  local httpc = http.new()
  local ok, err = httpc:connect(helpers.merged({
    scheme = "https", host = "127.0.0.1", port = MTLS_PORT, ssl_server_name = "localhost",
    ssl_client_cert = clients[who].cert, ssl_client_priv_key = clients[who].key,
  }, extra))
  if not ok then
    return nil, "connect: " .. tostring(err)
  end
  local reused = httpc.sock:getreusedtimes()
  local res
  res, err = httpc:request({ path = "/", headers = { Host = "localhost" } })
  if not res then
    return nil, "request: " .. tostring(err)
  end
  local body = res:read_body()
  httpc:set_keepalive()
  return { status = res.status, dn = body and body:match("dn=(.-) conn="), reused = reused }
end

-- alice, bob, alice, bob, ...: how many requests the server saw as someone else, and how many
-- failed (with the first error).
local function alternate(http, extra)
  local mismatches, failures, reused, first_err = 0, 0, 0, nil
  for i = 1, 8 do
    local who = (i % 2 == 1) and "alice" or "bob"
    local res, err = request(http, who, extra)
    if not res then
      failures = failures + 1
      first_err = first_err or err
    elseif res.status ~= 200 or res.dn ~= "CN=" .. who then
      mismatches = mismatches + 1
      first_err = first_err or ("status " .. res.status .. " dn=" .. tostring(res.dn) .. " for " .. who)
    end
    if res and res.reused > 0 then
      reused = reused + 1
    end
  end
  return { mismatches = mismatches, failures = failures, reused = reused, err = first_err }
end

local function report(way, version, r)
  helpers.say(("compat: lua-resty-http %s %s: %d/8 wrong identity, %d/8 failed, %d reused%s"):format(
    version, way, r.mismatches, r.failures, r.reused, r.err and (" (first: " .. r.err .. ")") or ""))
end

describe("lua-resty-http compat", function()
  -- loaded through the shim: 0.17.2's own resty.http_connect needs lua-resty-string to load
  local version = load_http(true)._VERSION
  helpers.say("compat: lua-resty-http ", version, " from ", LIB)

  setup(function()
    assert(mtls_pool.configure({ provider = "auto" }))
  end)

  it("as shipped (reported: <= 0.17.1 leaks or ignores certificates, 0.17.2 needs lua-resty-openssl)", function()
    local loaded, http = pcall(load_http, false)
    if not loaded then
      helpers.say("compat: lua-resty-http ", version, " as shipped: cannot load: ", (tostring(http):match("^[^\n]*")))
      return
    end
    local r = alternate(http)
    report("as shipped", version, r)
    if version == "0.17.1" then
      assert.is_true(r.mismatches > 0, "0.17.1 was expected to serve bob on alice's connection")
    end
  end)

  it("patched with mtls_pool.patch(): every request as its own identity, connections reused", function()
    local loaded, http = pcall(load_http, false)
    if not loaded then
      helpers.say("compat: lua-resty-http ", version, " patched: not applicable, it cannot load as shipped")
      return
    end
    local patched = assert(mtls_pool.patch(http))
    assert.equal(http, patched)
    local connect = http.connect
    assert.equal(http, mtls_pool.patch(http))
    assert.equal(connect, http.connect, "patch() must be idempotent")
    local r = alternate(http)
    report("patched", version, r)
    assert.same({ mismatches = 0, failures = 0 }, { mismatches = r.mismatches, failures = r.failures })
    assert.is_true(r.reused >= 4)
  end)

  it("through the vendoring shim, unmodified: every request as its own identity", function()
    local r = alternate(load_http(true))
    report("with the shim", version, r)
    assert.same({ mismatches = 0, failures = 0 }, { mismatches = r.mismatches, failures = r.failures })
    assert.is_true(r.reused >= 4)
  end)

  -- The same http module patched, or loaded through the shim.
  local function fixed_ways()
    local ways = { { "with the shim", load_http(true) } }
    local loaded, http = pcall(load_http, false)
    if loaded then
      ways[#ways + 1] = { "patched", assert(mtls_pool.patch(http)) }
    end
    return ways
  end

  it("an application's own pool name still keeps identities apart (patched and shim)", function()
    for _, way in ipairs(fixed_ways()) do
      local r = alternate(way[2], { pool = "shared-by-app" })
      report(way[1] .. ", pool = \"shared-by-app\"", version, r)
      assert.same({ mismatches = 0, failures = 0 }, { mismatches = r.mismatches, failures = r.failures })
      assert.is_true(r.reused >= 4)
    end
  end)

  it("a refused connect leaves no connection for request() (patched and shim)", function()
    for _, way in ipairs(fixed_ways()) do
      local httpc = way[2].new()
      assert(httpc:connect({ scheme = "https", host = "127.0.0.1", port = MTLS_PORT, ssl_server_name = "localhost",
                             ssl_client_cert = clients.alice.cert, ssl_client_priv_key = clients.alice.key }))
      local ok, err = httpc:connect({ scheme = "https", host = "127.0.0.1", port = MTLS_PORT,
                                      ssl_server_name = "localhost", ssl_client_cert = clients.alice.cert,
                                      ssl_client_priv_key = clients.bob.key })
      assert.is_nil(ok)
      assert.equal("private key does not match ssl_client_cert", err)
      local res, req_err = httpc:request({ path = "/", headers = { Host = "localhost" } })
      assert.is_nil(res, way[1] .. ": request() after a refused connect was answered")
      assert.equal("closed", req_err)
    end
  end)

  it("patch() leaves the other connect forms alone", function()
    local http = assert(mtls_pool.patch(load_http(true)))
    local httpc = http.new()
    local ok, err = httpc:connect("127.0.0.1", MTLS_PORT)
    assert.is_true(ok == 1 or ok == true, err)
    assert.equal("127.0.0.1", httpc.host)
    assert.is_false(httpc.ssl)
    httpc:close()
  end)

  it("patch() refuses what is not lua-resty-http", function()
    local ok, err = mtls_pool.patch({})
    assert.is_nil(ok)
    assert.equal('bad http module: expected the table require("resty.http") returns', err)
  end)
end)
