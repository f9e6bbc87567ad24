-- The rock: `luarocks make --tree <tmp>` (Debian's luarocks, no registry needed) installs every
-- dist-lua module, and the installed copy loads and works inside this nginx worker.
local helpers = require "support.helpers"

local REPO = helpers.env("REPO_ROOT")
local ROCKSPEC = "lua-resty-mtls-pool-0.1.0-1.rockspec"

local run = helpers.run

local function lua_files(dir)
  local _, output = run("cd " .. dir .. " && find resty -name '*.lua' | sort")
  return output
end

describe("the luarocks rock", function()
  local tree

  setup(function()
    tree = helpers.tmpdir("rock")
  end)

  teardown(function()
    run("rm -rf " .. tree)
  end)

  it("installs every generated module with luarocks make", function()
    local ok, output = run(("cd %s && luarocks make --tree %s %s"):format(REPO, tree, ROCKSPEC))
    assert.is_true(ok, output)
    local installed = lua_files(tree .. "/share/lua/5.1")
    assert.equal(lua_files(REPO .. "/dist-lua"), installed)
    helpers.say("rock: installed ", select(2, installed:gsub("\n", "")), " modules into ", tree)
  end)

  it("loads from the installed tree inside nginx, and works", function()
    local dir = tree .. "/share/lua/5.1"
    local saved_path, saved = package.path, {}
    for name in pairs(package.loaded) do
      if name:find("^resty%.mtls_pool") then
        saved[name] = package.loaded[name]
        package.loaded[name] = nil
      end
    end
    package.path = dir .. "/?.lua;" .. saved_path
    local ok, err = pcall(function()
      assert.equal(dir .. "/resty/mtls_pool.lua", package.searchpath("resty.mtls_pool", package.path))
      local mtls_pool = require "resty.mtls_pool"
      assert.equal("mtls1|https|example.com|#443|+|~|+|~|~|~", (mtls_pool.pool_name({ scheme = "https",
                                                                                       host = "example.com" })))
      local id = mtls_pool.client_identity(helpers.cert("alice"), helpers.key("alice"))
      assert.equal("sha256:" .. helpers.fingerprint("alice"), id)
      assert.is_function(require "resty.mtls_pool.http_connect")
    end)
    package.path = saved_path
    for name in pairs(package.loaded) do
      if name:find("^resty%.mtls_pool") then
        package.loaded[name] = saved[name]
      end
    end
    assert(ok, err)
  end)
end)
