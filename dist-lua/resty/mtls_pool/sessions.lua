--- TLS sessions and the pool they were made in. A resumed session carries the client identity,
-- SNI name and verification of the handshake that made it, whatever certificate the resuming
-- connect sets: so a session resumes only in the pool (which names all three) it came from, and
-- one this module never saw is not used at all.
local _M = {}
local bounded = require("resty.mtls_pool.bounded")
local new_bounded = bounded.new_bounded
local remember = bounded.remember

local ngx_log = ngx.log
local DEBUG = ngx.DEBUG

-- session cdata -> pool name, per worker. Weak keys: an entry goes with the session object;
-- bounded: an application that keeps every session cannot grow it past the limit (a forgotten
-- session only costs a full handshake).
local made_in = new_bounded(4096, true)

--- Records that `session` was made by a handshake on a connection of pool `pool`.
local function bind(session, pool)
    remember(made_in, session, pool)
end

--- The session to hand to sslhandshake for a fresh connection of pool `pool`: `reused` itself
-- when it was made in that pool (or is nil or false), else nil, for a full handshake.
local function usable(reused, pool, pool_debug)
    if reused == nil or reused == false then
        return reused
    end
    local pool_of_session = made_in.entries[reused]
    if pool_of_session == pool then
        return reused
    end
    if pool_debug then
        if pool_of_session == nil then
            ngx_log(
                DEBUG,
                "mtls_pool: ssl_reused_session not used: resty.mtls_pool did not make it"
            )
        else
            ngx_log(DEBUG, "mtls_pool: ssl_reused_session not used: it was made for another pool")
        end
    end
    return nil
end

_M.bind = bind
_M.usable = usable

return _M
