-- One list of libcrypto functions (resty.mtls_pool.include.libcrypto) drives the cdef and the
-- availability check: a listed function this nginx process lacks makes the built-in FFI
-- provider unavailable, and `auto` falls back to per-object identities, instead of raising at
-- the first call. (The third use of the list, the callers' types, is checked by tsc.)
local helpers = require "support.helpers"

local MISSING = "mtls_pool_spec_missing_function"
local OPENSSL_ENTRY = "resty.openssl.x509"

local function ours_or_openssl(name)
  return name:find("^resty%.mtls_pool") or name:find("^resty%.openssl")
end

-- Loads resty.mtls_pool afresh, with MISSING added to `list` (DECLARATIONS unless given) and
-- lua-resty-openssl hidden (so that `auto` has to go past the FFI provider); returns the module
-- and a function that puts the worker's modules back.
local function load_with_missing_function(list)
  local saved = {}
  for name, module in pairs(package.loaded) do
    if ours_or_openssl(name) then
      saved[name] = module
    end
  end
  for name in pairs(saved) do
    package.loaded[name] = nil
  end
  local saved_preload = package.preload[OPENSSL_ENTRY]
  package.preload[OPENSSL_ENTRY] = function()
    error("module '" .. OPENSSL_ENTRY .. "' not found: hidden by libcrypto_spec")
  end

  local declarations = require("resty.mtls_pool.include.libcrypto")[list or "DECLARATIONS"]
  declarations[MISSING] = "int " .. MISSING .. "(void);"
  local mtls_pool = require "resty.mtls_pool"

  return mtls_pool, function()
    package.preload[OPENSSL_ENTRY] = saved_preload
    for name in pairs(package.loaded) do
      if ours_or_openssl(name) then
        package.loaded[name] = nil
      end
    end
    for name, module in pairs(saved) do
      package.loaded[name] = module
    end
  end
end

describe("the libcrypto function list", function()
  it("resolves every listed function in this nginx", function()
    assert.is_nil(require("resty.mtls_pool.crypto").unavailable())
  end)

  describe("with a function this process lacks", function()
    local mtls_pool, restore

    before_each(function()
      mtls_pool, restore = load_with_missing_function()
    end)

    after_each(function()
      restore()
    end)

    it("makes the ffi provider unavailable, naming the function", function()
      local ok, err = mtls_pool.configure({ provider = "ffi" })
      assert.is_nil(ok)
      assert.equal("identity provider ffi unavailable: libcrypto function " .. MISSING
                   .. " not found in this nginx process", err)
    end)

    it("makes auto fall back to per-object identities, and say why once, instead of raising", function()
      local before = #helpers.log_lines(MISSING)
      local ok, id, err = pcall(mtls_pool.client_identity, helpers.cert("alice"), helpers.key("alice"))
      assert.is_true(ok, id)
      assert.is_nil(err)
      assert.matches("^obj:%d+$", id)
      assert.equal("object", mtls_pool.provider())
      local lines = helpers.log_lines(MISSING)
      assert.equal(before + 1, #lines)
      assert.matches("[warn]", lines[#lines], 1, true)
      assert.matches("falling back to per-object client identities", lines[#lines], 1, true)
    end)

    it("turns the digests that need libcrypto into nil, err", function()
      local ok, name, err = pcall(mtls_pool.pool_name, { scheme = "https", host = ("a"):rep(600) })
      assert.is_true(ok, name)
      assert.is_nil(name)
      assert.equal("cannot bound the pool name: libcrypto function " .. MISSING
                   .. " not found in this nginx process", err)
    end)
  end)

  describe("with an OpenSSL 3.0 function for reading key secrets missing (as on OpenSSL 1.1.1)", function()
    local mtls_pool, restore

    before_each(function()
      mtls_pool, restore = load_with_missing_function("SECRET_DECLARATIONS")
    end)

    after_each(function()
      restore()
    end)

    it("keeps the ffi provider, proving every new key object by a signature", function()
      assert(mtls_pool.configure({ provider = "ffi" }))
      local forged = assert(require("ngx.ssl").parse_pem_priv_key(helpers.pem("forged-alice.key")))
      for _ = 1, 2 do
        assert.equal("sha256:" .. helpers.fingerprint("alice"),
                     (mtls_pool.client_identity(helpers.cert("alice"), helpers.key("alice"))))
        local id, err = mtls_pool.client_identity(helpers.cert("alice"), forged)
        assert.is_nil(id)
        assert.equal("private key does not match ssl_client_cert", err)
      end
    end)
  end)
end)
