-- Every code snippet in README.md, exercised: the Lua blocks run in this worker against the
-- fixtures' mTLS server (README names rewritten to the fixtures), the nginx blocks are loaded by
-- a real nginx, whose worker reports where the modules resolve and exits.
local helpers = require "support.helpers"
local raw_http = require "support.raw_http"
local mtls_pool = require "resty.mtls_pool"

local REPO = helpers.env("REPO_ROOT")
local MTLS_PORT = helpers.env("MTLS_SERVER_PORT")

local function blocks(language)
  local found = {}
  local readme = helpers.read_file(REPO .. "/README.md")
  for code in readme:gmatch("\n```" .. language .. "\n(.-)\n```") do
    found[#found + 1] = code
  end
  return found
end

local run = helpers.run

local function plain(s)
  return (s:gsub("%p", "%%%0"))
end

describe("README", function()
  local certs_alias

  setup(function()
    -- the README's /etc/nginx/mtls/tenant-{a,b}.{crt,key}, as links to alice's and bob's files
    certs_alias = helpers.tmpdir("readme")
    for tenant, name in pairs({ ["tenant-a"] = "alice", ["tenant-b"] = "bob" }) do
      for _, ext in ipairs({ "crt", "key" }) do
        assert(run(("ln -s %s/%s.%s %s/%s.%s"):format(helpers.certs_dir(), name, ext, certs_alias, tenant, ext)))
      end
    end
  end)

  teardown(function()
    run("rm -rf " .. certs_alias)
  end)

  local function localise(code)
    return (code:gsub(plain("/etc/nginx/mtls/"), certs_alias .. "/")
                :gsub(plain('"10.0.0.12"'), '"127.0.0.1"')
                :gsub("8443", MTLS_PORT)
                :gsub(plain('"orders.internal"'), '"localhost"'))
  end

  -- Runs README Lua blocks as one chunk (they build on each other) followed by `check`.
  local function exercise(parts, check)
    local chunk = assert(loadstring(localise(table.concat(parts, "\n")) .. "\n" .. check, "=README.md"))
    local env = setmetatable({ assert = assert, raw_http = raw_http }, { __index = _G })
    return setfenv(chunk, env)()
  end

  local lua = blocks("lua")
  local setup_block, resty_http_block, cosocket_block, configure_block, pem_block
  for _, code in ipairs(lua) do
    if code:find("load_pem_pair", 1, true) then
      pem_block = code
    elseif code:find("parse_pem_cert", 1, true) then
      setup_block = code
    elseif code:find('require "resty.http"', 1, true) then
      resty_http_block = code
    elseif code:find("pool_name(options)", 1, true) then
      cosocket_block = code
    elseif code:find("configure(", 1, true) then
      configure_block = code
    else
      error("README.md has a Lua block that no spec exercises:\n" .. code)
    end
  end

  it("has the five Lua snippets this spec knows", function()
    assert.equal(5, #lua)
    assert.truthy(setup_block and resty_http_block and cosocket_block and configure_block and pem_block)
  end)

  it("load_pem_pair: the same PEM text gives the same objects, and the tenant reaches the server", function()
    exercise({ pem_block }, [=[
      local pem = require("support.helpers").pem
      local first = assert(tenant_options(pem("alice.crt"), pem("alice.key")))
      local again = assert(tenant_options(pem("alice.crt"), pem("alice.key")))
      assert(first.ssl_client_cert == again.ssl_client_cert and first.ssl_client_priv_key == again.ssl_client_priv_key)
      local res = assert(raw_http.get(first))
      assert(res.dn == "CN=alice", "served as " .. tostring(res.dn))
      local none, err = tenant_options(pem("alice.crt"), pem("bob.key"))
      assert(none == nil and err == "load_pem_pair: private key does not match ssl_client_cert", err)
    ]=])
  end)

  it("pool_name + setclientcert: each tenant reaches the server as itself, over pooled connections", function()
    exercise({ setup_block, cosocket_block }, [=[
      for round = 1, 2 do
        for name, cn in pairs({ ["tenant-a"] = "CN=alice", ["tenant-b"] = "CN=bob" }) do
          local sock = assert(open(tenants[name]))
          local reused = sock:getreusedtimes()
          assert(sock:send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"))
          local body
          repeat
            local line = assert(sock:receive("*l"))
            body = line:match("^dn=.*") or body
          until body
          assert(body:match("^dn=(.-) conn=") == cn, name .. " was served as " .. body)
          assert(round == 1 or reused > 0, "expected a pooled connection in round 2")
          sock:setkeepalive()
        end
      end
    ]=])
  end)

  local http_loads, http_err = pcall(require, "resty.http")
  if helpers.env("LUA_RESTY_HTTP_LIB") and not http_loads then
    -- 0.17.2's own resty.http_connect requires lua-resty-string at load
    local why = tostring(http_err):match("^[^\n]*")
    helpers.say("SKIPPED: README's lua-resty-http snippet: lua-resty-http does not load as shipped: ", why)
    pending("SKIPPED: README's lua-resty-http snippet (lua-resty-http does not load as shipped)")
  elseif http_loads then
    it("lua-resty-http with patch(): each tenant reaches the server as itself", function()
      exercise({ setup_block, resty_http_block }, [=[
        for _, pair in ipairs({ { "tenant-a", "CN=alice" }, { "tenant-b", "CN=bob" }, { "tenant-a", "CN=alice" } }) do
          local body = assert(get_orders(tenants[pair[1]]))
          assert(body:match("^dn=(.-) conn=") == pair[2], pair[1] .. " was served as " .. body)
        end
      ]=])
    end)
  else
    helpers.say("SKIPPED: README's lua-resty-http snippet: set LUA_RESTY_HTTP_LIB to a lua-resty-http lib folder")
    pending("SKIPPED: README's lua-resty-http snippet (LUA_RESTY_HTTP_LIB is not set)")
  end

  it("configure(): runs and names the provider", function()
    exercise({ configure_block }, [[ assert(require("resty.mtls_pool").provider() == "ffi") ]])
    assert(mtls_pool.configure({ provider = "auto" }))
  end)

  -- The load_module lines of the nginx running these specs, for a config of our own.
  local function load_modules()
    local prefix = helpers.env("NGINX_ERROR_LOG"):gsub("/logs/error%.log$", "")
    local lines = {}
    for line in io.lines(prefix .. "/conf/nginx.conf") do
      if line:find("^load_module ") then
        lines[#lines + 1] = line
      end
    end
    return table.concat(lines, "\n")
  end

  for i, code in ipairs(blocks("nginx")) do
    it(("nginx block %d runs in a real nginx and finds the modules"):format(i), function()
      local conf = code:gsub(plain("/opt/lua-resty-mtls-pool"), REPO)
      local report = [[
    init_worker_by_lua_block {
        io.stdout:write("mtls_pool=", package.searchpath("resty.mtls_pool", package.path) or "-", "\n")
        io.stdout:write("http_connect=", package.searchpath("resty.http_connect", package.path) or "-", "\n")
        local loaded = pcall(require, "resty.mtls_pool")
        io.stdout:write("loaded=", tostring(loaded), "\n")
        io.stdout:flush()
        os.exit(0, true)
    }
}]]
      conf = conf:gsub("}%s*$", (report:gsub("%%", "%%%%")))
      local dir = helpers.tmpdir("nginx")
      local f = assert(io.open(dir .. "/nginx.conf", "w"))
      f:write(load_modules(), "\ndaemon off;\nmaster_process off;\nerror_log stderr notice;\npid ", dir,
              "/nginx.pid;\nevents {}\n", conf, "\n")
      f:close()
      -- the nginx binary running these specs (nginx clears PATH for its children)
      local _, bin = run("readlink /proc/" .. ngx.worker.pid() .. "/exe")
      local ok, output = run(("timeout 10 %s -p %s/ -c nginx.conf"):format(bin:gsub("%s+$", ""), dir))
      run("rm -rf " .. dir)
      assert.is_true(ok, output)
      assert.matches("mtls_pool=" .. plain(REPO .. "/dist-lua/resty/mtls_pool.lua"), output)
      assert.matches("loaded=true", output, 1, true)
      if code:find("/shim/", 1, true) then
        assert.matches("http_connect=" .. plain(REPO .. "/dist-lua/shim/resty/http_connect.lua"), output)
      end
    end)
  end
end)
