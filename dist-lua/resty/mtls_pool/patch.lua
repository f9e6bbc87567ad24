--- patch(http) for lua-resty-http: its table-form httpc:connect(options) then goes through
-- resty.mtls_pool.http_connect, so an application that already uses lua-resty-http gets pool
-- names with the client identity from one line at start-up.
local _M = {}
local bounded = require("resty.mtls_pool.bounded")
local weak_keys = bounded.weak_keys
local connect = require("resty.mtls_pool.http_connect")

-- Modules already patched; weak so that patching keeps nothing alive.
local patched = weak_keys()

--- patch(http): makes lua-resty-http's table-form httpc:connect(options) use our connect.
-- Idempotent; the other call forms (host, port[, opts] and "unix:" paths) are untouched.
local function patch(http)
    if type(http) ~= "table" or type(http.connect) ~= "function" then
        return nil, 'bad http module: expected the table require("resty.http") returns'
    end
    if patched[http] then
        return http, nil
    end
    local original = http.connect
    http.connect = function(httpc, options, ...)
        if type(options) == "table" then
            return connect(httpc, options)
        end
        return original(httpc, options, ...)
    end
    patched[http] = true
    return http, nil
end

_M.patch = patch

return _M
