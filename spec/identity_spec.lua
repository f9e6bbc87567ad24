-- Client identity: proven SHA-256 of the leaf certificate, for each provider; bad input;
-- what gets logged. Real certificates made by the test setup with the openssl CLI.
local ffi = require "ffi"
local helpers = require "support.helpers"
local mtls_pool = require "resty.mtls_pool"

local cert, key = helpers.cert, helpers.key

local function identity(c, k)
  local id, err = mtls_pool.client_identity(c, k)
  assert.is_nil(err)
  return id
end

local function configure(provider)
  assert(mtls_pool.configure({ provider = provider }))
end

local function digest_provider_specs(provider)
  describe("provider " .. provider, function()
    before_each(function()
      configure(provider)
    end)
    after_each(function()
      configure("auto")
    end)

    it("is the provider in use", function()
      assert.equal(provider, mtls_pool.provider())
    end)

    it("equals `openssl x509 -fingerprint -sha256` of the same file, RSA, EC and Ed25519", function()
      for _, name in ipairs({ "alice", "carol", "erin" }) do
        -- twice: a proof, then new objects of the proven pair
        for _ = 1, 2 do
          assert.equal("sha256:" .. helpers.fingerprint(name), identity(cert(name), key(name)))
        end
      end
    end)

    it("tells alice from bob", function()
      assert.are_not.equal(identity(cert("alice"), key("alice")), identity(cert("bob"), key("bob")))
    end)

    it("gives one certificate parsed twice the same identity", function()
      assert.equal(identity(cert("alice"), key("alice")), identity(cert("alice"), key("alice")))
    end)

    it("is the leaf's identity for a chain with an intermediate", function()
      local chain = cert("dave", "dave-chain.crt")
      assert.equal("sha256:" .. helpers.fingerprint("dave"), identity(chain, key("dave")))
    end)

    it("refuses a victim's certificate with an attacker's key", function()
      local id, err = mtls_pool.client_identity(cert("alice"), key("attacker"))
      assert.is_nil(id)
      assert.equal("private key does not match ssl_client_cert", err)
      -- also when the victim's identity is already cached for the victim's own objects
      local victim = cert("alice")
      assert.is_string(identity(victim, key("alice")))
      id, err = mtls_pool.client_identity(victim, key("bob"))
      assert.is_nil(id)
      assert.equal("private key does not match ssl_client_cert", err)
    end)
  end)
end

describe("client identity", function()
  digest_provider_specs("ffi")

  local openssl_lib = helpers.add_lib("LUA_RESTY_OPENSSL_LIB")
  if openssl_lib then
    helpers.add_lib("LUA_RESTY_STRING_LIB")
    helpers.say("identity: resty.openssl provider from ", openssl_lib)
    digest_provider_specs("openssl")
  else
    helpers.say("SKIPPED: resty.openssl identity provider: set LUA_RESTY_OPENSSL_LIB to a lua-resty-openssl lib folder")
    pending("SKIPPED: resty.openssl identity provider (LUA_RESTY_OPENSSL_LIB is not set)")
  end

  describe("provider object", function()
    before_each(function()
      configure("object")
    end)
    after_each(function()
      configure("auto")
    end)

    it("gives each (cert, key) object pair its own token, stable for that pair", function()
      local c, k = cert("alice"), key("alice")
      local first = identity(c, k)
      assert.matches("^obj:%d+$", first)
      assert.equal(first, identity(c, k))
      assert.are_not.equal(first, identity(cert("alice"), key("alice")))
      assert.are_not.equal(first, identity(c, key("alice")))
    end)

    it("names pools with the provider in use, also for objects named before configure()", function()
      local pool_name = require("resty.mtls_pool").pool_name
      local c, k = cert("alice"), key("alice")
      local options = { scheme = "https", host = "example.com", ssl_client_cert = c, ssl_client_priv_key = k }
      local as_object = assert(pool_name(options))
      assert.matches("|obj:%d+$", as_object)
      configure("ffi")
      assert.equal("|sha256:" .. helpers.fingerprint("alice"), assert(pool_name(options)):match("|sha256:%x+$"))
      configure("object")
      local again = assert(pool_name(options))
      assert.matches("|obj:%d+$", again)
      assert.is_not.equal(as_object, again)
    end)

    it("never reuses a token after configure() starts a fresh cache", function()
      local c, k = cert("alice"), key("alice")
      local before = tonumber((identity(c, k):match("%d+")))
      configure("object")
      local after = tonumber((identity(c, k):match("%d+")))
      assert.is_true(after > before)
    end)

    it("refuses a victim's certificate with an attacker's key", function()
      local id, err = mtls_pool.client_identity(cert("alice"), key("attacker"))
      assert.is_nil(id)
      assert.equal("private key does not match ssl_client_cert", err)
    end)
  end)

  describe("configure", function()
    it("rejects unknown providers and non-tables", function()
      local ok, err = mtls_pool.configure({ provider = "md5" })
      assert.is_nil(ok)
      assert.equal('bad provider: "auto", "openssl", "ffi" or "object" expected, got md5', err)
      ok, err = mtls_pool.configure("ffi")
      assert.is_nil(ok)
      assert.equal("bad options: table expected, got string", err)
    end)

    if not openssl_lib then
      it("says why a forced provider is unavailable", function()
        local ok, err = mtls_pool.configure({ provider = "openssl" })
        assert.is_nil(ok)
        assert.matches("^identity provider openssl unavailable: lua%-resty%-openssl not found: ", err)
      end)
    end
  end)
end)

describe("client identity input", function()
  local empty_chain

  setup(function()
    pcall(ffi.cdef, "void *OPENSSL_sk_new_null(void); void OPENSSL_sk_free(void *st);")
    empty_chain = ffi.gc(ffi.C.OPENSSL_sk_new_null(), ffi.C.OPENSSL_sk_free)
  end)

  local function fails(c, k)
    local id, err = mtls_pool.client_identity(c, k)
    assert.is_nil(id)
    assert.is_string(err)
    return err
  end

  it("wants both the certificate and the key, naming the missing one", function()
    assert.equal("ssl_client_priv_key is required when ssl_client_cert is set", fails(cert("alice"), nil))
    assert.equal("ssl_client_cert is required when ssl_client_priv_key is set", fails(nil, key("alice")))
    assert.equal("ssl_client_priv_key is required when ssl_client_cert is set", fails(cert("alice"), false))
    assert.equal("ssl_client_cert and ssl_client_priv_key are required", fails(nil, nil))
  end)

  it("rejects PEM strings with lua-resty-http's message, and says how to parse them at DEBUG", function()
    assert.equal("bad ssl_client_cert: cdata expected, got string", fails(helpers.pem("alice.crt"), key("alice")))
    assert.equal("bad ssl_client_priv_key: cdata expected, got string", fails(cert("alice"), helpers.pem("alice.key")))
    assert.is_true(#helpers.log_lines("mtls_pool: ssl_client_priv_key is a string: parse the PEM once with "
                                      .. "ngx.ssl.parse_pem_priv_key() and pass the result") > 0)
  end)

  it("rejects other types", function()
    assert.equal("bad ssl_client_cert: cdata expected, got number", fails(42, key("alice")))
    assert.equal("bad ssl_client_cert: cdata expected, got table", fails({}, key("alice")))
    assert.equal("bad ssl_client_cert: cdata expected, got boolean", fails(true, key("alice")))
    assert.equal("bad ssl_client_priv_key: cdata expected, got table", fails(cert("alice"), {}))
    assert.equal("bad ssl_client_priv_key: cdata expected, got function", fails(cert("alice"), print))
  end)

  for _, provider in ipairs({ "ffi", "object" }) do
    it("rejects an empty chain (" .. provider .. ")", function()
      assert(mtls_pool.configure({ provider = provider }))
      assert.equal("bad ssl_client_cert: the certificate chain is empty", fails(empty_chain, key("alice")))
      assert(mtls_pool.configure({ provider = "auto" }))
    end)
  end

  it("rejects a key for another certificate in the chain (the intermediate's own key is not the leaf's)", function()
    assert.equal("private key does not match ssl_client_cert", fails(cert("dave", "dave-chain.crt"), key("alice")))
  end)

  it("does it all through pool_name too, for https only", function()
    local n, err = mtls_pool.pool_name({ scheme = "https", host = "h", ssl_client_cert = cert("alice") })
    assert.is_nil(n)
    assert.equal("ssl_client_priv_key is required when ssl_client_cert is set", err)
    n, err = mtls_pool.pool_name({ scheme = "https", host = "h", ssl_client_cert = cert("alice"),
                                   ssl_client_priv_key = key("attacker") })
    assert.is_nil(n)
    assert.equal("private key does not match ssl_client_cert", err)
    -- lua-resty-http ignores client certificates for plain http
    n, err = mtls_pool.pool_name({ scheme = "http", host = "h", ssl_client_cert = "junk" })
    assert.is_nil(err)
    assert.equal("mtls1|http|h|#80|!|~|~|~|~|~", n)
  end)

  it("puts the identity into the pool name", function()
    assert(mtls_pool.configure({ provider = "ffi" }))
    local n = mtls_pool.pool_name({ scheme = "https", host = "h", ssl_client_cert = cert("bob"),
                                    ssl_client_priv_key = key("bob") })
    assert.equal("mtls1|https|h|#443|+|~|+|~|~|sha256:" .. helpers.fingerprint("bob"), n)
    assert(mtls_pool.configure({ provider = "auto" }))
  end)
end)

describe("client identity logging", function()
  local MARK = "mtls_pool:"

  it("logs nothing when only plain https is used", function()
    assert(mtls_pool.configure({ provider = "auto" }))
    local before = #helpers.log_lines(MARK)
    for i = 1, 100 do
      assert(mtls_pool.pool_name({ scheme = "https", host = "h" .. i }))
    end
    assert.equal(before, #helpers.log_lines(MARK))
  end)

  it("warns exactly once per worker for 100 mTLS uses with the object provider", function()
    assert(mtls_pool.configure({ provider = "object" }))
    local before = #helpers.log_lines(MARK)
    for _ = 1, 100 do
      assert(mtls_pool.pool_name({ scheme = "https", host = "h", ssl_client_cert = cert("alice"),
                                   ssl_client_priv_key = key("alice") }))
    end
    local lines = helpers.log_lines(MARK)
    assert.equal(before + 1, #lines)
    assert.matches("[warn]", lines[#lines], 1, true)
    assert.matches("per-object client identities", lines[#lines], 1, true)
    assert(mtls_pool.configure({ provider = "auto" }))
  end)

  it("says once, at INFO, when auto falls back to the built-in FFI digest", function()
    assert(mtls_pool.configure({ provider = "auto" }))
    local before = #helpers.log_lines(MARK)
    for _ = 1, 100 do
      identity(cert("alice"), key("alice"))
    end
    local lines = helpers.log_lines(MARK)
    if mtls_pool.provider() == "openssl" then
      -- lua-resty-openssl is on the path: nothing to say
      assert.equal(before, #lines)
    else
      assert.equal("ffi", mtls_pool.provider())
      assert.equal(before + 1, #lines)
      assert.matches("[info]", lines[#lines], 1, true)
      assert.matches("using the built-in FFI certificate digest", lines[#lines], 1, true)
    end
  end)
end)
