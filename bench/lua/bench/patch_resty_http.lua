-- Patches the worker's lua-resty-http with resty.mtls_pool.patch (the "patch over 0.17.1" client
-- of bench section (d)); an init module of scripts/client.ts, run after the app's init.
local mtls_pool = require "resty.mtls_pool"

local _M = {}

function _M.init()
  assert(mtls_pool.patch(require "resty.http"))
end

return _M
