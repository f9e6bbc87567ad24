-- Smoke test of the harness itself: busted runs inside a real nginx worker and the fixture
-- servers (scripts/fixtures.ts) are reachable with the test certificates (scripts/certs.ts).
local ssl = require "ngx.ssl"

local helpers = require "support.helpers"

local read = helpers.pem

-- GET / over TLS (server verified against the test CA), optionally with a client certificate
local function get(port, cert, key)
  local sock = ngx.socket.tcp()
  sock:settimeout(5000)
  assert(sock:connect("127.0.0.1", port))
  if cert then
    assert(sock:setclientcert(cert, key))
  end
  assert(sock:sslhandshake(nil, "localhost", true))
  assert(sock:send("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
  local status = assert(sock:receive("*l"))
  local response = assert(sock:receive("*a"))
  sock:close()
  return status, response
end

describe("test harness", function()
  it("runs inside an nginx worker with ngx_lua >= 0.10.23", function()
    assert.is_true(ngx.config.ngx_lua_version >= 10023)
    assert.is_number(ngx.worker.pid())
  end)

  it("verifies the plain TLS server against the test CA", function()
    local sock = ngx.socket.tcp()
    sock:settimeout(5000)
    assert(sock:connect("127.0.0.1", tonumber(os.getenv("TLS_SERVER_PORT"))))
    local session, err = sock:sslhandshake(nil, "localhost", true)
    assert.is_nil(err)
    assert.truthy(session)
    sock:close()
  end)

  it("authenticates to the mTLS server as alice", function()
    local cert = assert(ssl.parse_pem_cert(read("alice.crt")))
    local key = assert(ssl.parse_pem_priv_key(read("alice.key")))
    local status, response = get(tonumber(os.getenv("MTLS_SERVER_PORT")), cert, key)
    assert.equal("HTTP/1.1 200 OK", status)
    assert.matches("dn=CN=alice ", response, 1, true)
  end)

  it("gets 400 from the mTLS server without a client certificate", function()
    local status = get(tonumber(os.getenv("MTLS_SERVER_PORT")))
    assert.equal("HTTP/1.1 400 Bad Request", status)
  end)
end)
