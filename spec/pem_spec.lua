-- load_pem_pair: PEM text to parsed objects through a bounded per-worker cache, against the real
-- mTLS server for the objects it returns.
local helpers = require "support.helpers"
local raw_http = require "support.raw_http"
local mtls_pool = require "resty.mtls_pool"

local MTLS_PORT = tonumber(helpers.env("MTLS_SERVER_PORT"))

describe("load_pem_pair", function()
  it("gives the same objects for the same PEM text, and their identity is the certificate's", function()
    local cert_pem, key_pem = helpers.pem("alice.crt"), helpers.pem("alice.key")
    local pair = assert(mtls_pool.load_pem_pair(cert_pem, key_pem))
    assert.equal("cdata", type(pair.cert))
    assert.equal("cdata", type(pair.key))
    -- equal strings from another source are the same Lua strings: the same entry
    local again = assert(mtls_pool.load_pem_pair(cert_pem .. "", helpers.pem("alice.key")))
    assert.equal(pair, again)
    assert.equal("sha256:" .. helpers.fingerprint("alice"), mtls_pool.client_identity(pair.cert, pair.key))
  end)

  it("never mixes up two pairs", function()
    local a = assert(mtls_pool.load_pem_pair(helpers.pem("alice.crt"), helpers.pem("alice.key")))
    local b = assert(mtls_pool.load_pem_pair(helpers.pem("bob.crt"), helpers.pem("bob.key")))
    assert.is_not.equal(a, b)
    assert.equal("sha256:" .. helpers.fingerprint("bob"), mtls_pool.client_identity(b.cert, b.key))
  end)

  it("refuses a key that is not the certificate's, every time, without caching it", function()
    for _ = 1, 2 do
      local pair, err = mtls_pool.load_pem_pair(helpers.pem("alice.crt"), helpers.pem("bob.key"))
      assert.is_nil(pair)
      assert.equal("load_pem_pair: private key does not match ssl_client_cert", err)
      pair, err = mtls_pool.load_pem_pair(helpers.pem("carol.crt"), helpers.pem("forged-carol.key"))
      assert.is_nil(pair)
      assert.equal("load_pem_pair: private key does not match ssl_client_cert", err)
    end
  end)

  it("refuses what is not PEM text", function()
    local function err_of(cert_pem, key_pem)
      local pair, err = mtls_pool.load_pem_pair(cert_pem, key_pem)
      assert.is_nil(pair)
      return err
    end
    assert.equal("load_pem_pair: cert_pem: string expected, got nil", err_of(nil, helpers.pem("alice.key")))
    assert.equal("load_pem_pair: key_pem: string expected, got table", err_of(helpers.pem("alice.crt"), {}))
    assert.matches("^load_pem_pair: cannot parse cert_pem: ", err_of("not a certificate", helpers.pem("alice.key")))
    assert.matches("^load_pem_pair: cannot parse key_pem: ", err_of(helpers.pem("alice.crt"), "not a key"))
  end)

  it("loads a chain (leaf and intermediate) that the server verifies", function()
    local pair = assert(mtls_pool.load_pem_pair(helpers.pem("dave-chain.crt"), helpers.pem("dave.key")))
    local res = assert(raw_http.get({ scheme = "https", host = "127.0.0.1", port = MTLS_PORT,
                                      ssl_server_name = "localhost", ssl_client_cert = pair.cert,
                                      ssl_client_priv_key = pair.key }))
    assert.equal(200, res.status)
    assert.equal("CN=dave", res.dn)
  end)

  it("stays bounded however many distinct pairs pass", function()
    local certs, keys = {}, {}
    for i = 1, 16 do
      local name = ("tenant%02d"):format(i)
      certs[i], keys[i] = helpers.pem(name .. ".crt"), helpers.pem(name .. ".key")
    end
    -- distinct PEM strings, made per load (only the cache can keep them): text before the BEGIN
    -- line is not part of the PEM
    local function load_range(first, last, loads)
      local span = last - first + 1
      for n = 0, loads - 1 do
        local i = first + n % span
        assert(mtls_pool.load_pem_pair("# copy " .. i .. "\n" .. certs[i % 16 + 1], keys[i % 16 + 1]))
      end
      collectgarbage()
      collectgarbage()
      return collectgarbage("count")
    end
    local before = load_range(1, 1000, 3000)
    local after = load_range(1001, 7000, 6000)
    helpers.say(("pem: Lua heap %d KB after 3,000 loads of 1,000 pairs, %+d KB after 6,000 loads of "
                 .. "6,000 new pairs"):format(before, after - before))
    assert.is_true(after - before < 512, "the PEM cache grew: " .. (after - before) .. " KB")
  end)
end)
