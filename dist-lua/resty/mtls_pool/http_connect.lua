--- resty.mtls_pool.http_connect: a drop-in for lua-resty-http's resty.http_connect, with the
-- same contract, whose pool names carry the proven client identity. Self-contained: it needs
-- only `self.sock`, and does the proxy CONNECT exchange itself.
--
--   local connect = require "resty.mtls_pool.http_connect"
--   local ok, err, ssl_session = connect(httpc, {
--     scheme = "https",        -- "http", "https", or nil for a unix socket
--     host = "example.com",    -- host name, IP literal ("[::1]"), or "unix:/path/to.sock"
--     port = nil,              -- defaults to 443 / 80 from scheme; requires scheme
--     pool = nil,              -- a namespace for the pool name: identity, SNI and verify
--                              -- still separate connections within it
--     pool_size = nil,         -- as for tcpsock:connect
--     backlog = nil,
--     pool_debug = false,      -- log the pool name at DEBUG (it holds no secrets)
--     ssl_reused_session = nil, ssl_server_name = nil, ssl_send_status_req = nil,
--     ssl_verify = true,       -- only false turns verification off
--     ssl_client_cert = nil,   -- cdata from ngx.ssl.parse_pem_cert, with
--     ssl_client_priv_key = nil, -- cdata from ngx.ssl.parse_pem_priv_key (ngx_lua >= 0.10.23)
--     proxy_opts = nil,        -- defaults to httpc.proxy_opts: http_proxy, https_proxy,
--                              -- http(s)_proxy_authorization, no_proxy
--   })
--
-- Differences from lua-resty-http 0.17, all on the safe side: a client certificate that cannot
-- be set, or a cert without its key, is an error (never a plain-TLS connect); `pool` does not
-- replace the name; ssl_reused_session is used only in the pool whose connect returned it; a
-- connect without a certificate takes off one an earlier connect left on the socket object;
-- every refusal closes the socket (a request after it fails); unix sockets are never proxied;
-- "https" over "unix:/path" is TLS over the socket.
local crypto = require("resty.mtls_pool.crypto")
local clear_errors = crypto.clear_errors
local name = require("resty.mtls_pool.name")
local caller_pool = name.caller_pool
local name_for = name.name_for
local sessions = require("resty.mtls_pool.sessions")
local bind = sessions.bind
local usable = sessions.usable
local target_module = require("resty.mtls_pool.target")
local new_target = target_module.new_target
local resolve = target_module.resolve

local ngx_log = ngx.log
local DEBUG = ngx.DEBUG
local find = string.find
local match = string.match

-- `package` is a reserved word in TypeScript: reach it through _G.
local loaded = _G.package.loaded

-- What the CONNECT request says when lua-resty-http is not loaded (else its _USER_AGENT).
local USER_AGENT = "resty.mtls_pool (Lua) ngx_lua/" .. tostring(ngx.config.ngx_lua_version)

--- lua-resty-http's User-Agent, read per tunnel so that an application's own setting counts.
local function user_agent()
    local http = loaded["resty.http"]
    if type(http) == "table" and type(http._USER_AGENT) == "string" then
        return http._USER_AGENT
    end
    return USER_AGENT
end

-- connect() resolves into this table and copies what it needs into locals before it yields.
local target = new_target()

-- ngx_lua reads pool, pool_size and backlog when connect() is called, before it yields, so
-- one table serves every call.
local tcp_options = {}
local MAX_PROXY_HEADER_LINES = 100

--- Sends CONNECT host:port through a fresh proxy connection, with the headers lua-resty-http's
-- request() sends (RFC 7231 4.3.6: authority-form target and Host); an error, or nil.
local function open_tunnel(sock, destination, authorization)
    local request = "CONNECT " .. destination .. " HTTP/1.1\r\nHost: " .. destination .. "\r\n"
    if authorization ~= nil then
        request = request .. "Proxy-Authorization: " .. authorization .. "\r\n"
    end
    request = request .. "User-Agent: " .. user_agent() .. "\r\n"
    local sent, send_err = sock:send(request .. "\r\n")
    if sent == nil then
        return "failed to issue CONNECT to proxy: " .. tostring(send_err)
    end
    local status_line, status_err = sock:receive("*l")
    if status_line == nil then
        return "failed to issue CONNECT to proxy: " .. tostring(status_err)
    end
    local code = match(status_line, "^HTTP/1%.[01] (%d%d%d)")
    local status = tonumber(code)
    if status == nil then
        return "failed to establish a tunnel through a proxy: bad response"
    end
    if status < 200 or status > 299 then
        return "failed to establish a tunnel through a proxy: " .. tostring(status)
    end
    -- The tunnel starts after the (bodiless) response's headers.
    for _ = 1, MAX_PROXY_HEADER_LINES do
        local line, line_err = sock:receive("*l")
        if line == nil then
            return "failed to establish a tunnel through a proxy: " .. tostring(line_err)
        end
        if line == "" then
            return nil
        end
    end
    return "failed to establish a tunnel through a proxy: too many response headers"
end

--- Closes the socket, so that nothing half-open goes back to the pool and a caller who ignores
-- the error cannot send on the connection an earlier connect left; returns nil, err.
local function fail(sock, err)
    sock:close()
    clear_errors()
    return nil, err
end

-- What lua-resty-core before 0.1.27 (Debian 12 ships 0.1.25) raises when a handshake that fails
-- verification completes without yielding: its assert() after the handshake result.
local RESTY_CORE_ASSERTION = "resty/core/socket%.lua:%d+: assertion failed!$"

--- tcpsock:sslhandshake, made safe against lua-resty-core before 0.1.27: the handshake above
-- raises an assertion, and with ssl_reused_session = false it returns true on the socket
-- it closed. Any other error raised reaches the caller as nil, err with its own text.
local function checked_handshake(sock, reused_session, server_name, verify, send_status_req)
    local completed, session, err = pcall(sock.sslhandshake, sock, reused_session, server_name, verify, send_status_req)
    if not completed then
        local raised = tostring(session)
        local assertion_at = find(raised, RESTY_CORE_ASSERTION)
        if assertion_at ~= nil then
            return nil, "SSL handshake failed, most likely certificate verification (" .. raised
                .. ")"
        end
        return nil, raised
    end
    if session == nil then
        return nil, err
    end
    local alive = sock:getreusedtimes()
    if alive == nil then
        return nil, "SSL handshake failed, most likely certificate verification (the socket was closed)"
    end
    return session, nil
end

local function connect(httpc, options)
    local sock = httpc.sock
    if sock == nil then
        return nil, "not initialized"
    end
    -- Every refusal closes the socket (fail): the object may hold an earlier connection.
    local err = resolve(options, httpc.proxy_opts, target)
    if err ~= nil then
        return fail(sock, err)
    end
    local ssl = target.ssl
    local host = target.host
    local port = target.port
    local proxy_host = target.proxy_host
    local proxy_port = target.proxy_port
    local proxy_authorization = target.proxy_authorization
    local server_name = target.server_name
    local verify = target.verify
    local caller, caller_err = caller_pool(options.pool)
    if caller_err ~= nil then
        return fail(sock, caller_err)
    end
    local cert = options.ssl_client_cert
    local key = options.ssl_client_priv_key
    -- The pool name, and whether it holds a client identity: then cert and key are a proven pair.
    local pool, identified, name_err = name_for(target, cert, key, caller)
    if pool == nil then
        return fail(sock, name_err)
    end
    if identified and sock.setclientcert == nil then
        return fail(sock, "ssl_client_cert needs tcpsock:setclientcert (ngx_lua >= 0.10.23)")
    end
    local pool_debug = options.pool_debug
    if pool_debug then
        ngx_log(DEBUG, "mtls_pool: pool name ", pool)
    end
    tcp_options.pool = pool
    tcp_options.pool_size = options.pool_size
    tcp_options.backlog = options.backlog
    if proxy_host ~= nil then
        local ok, connect_err = sock:connect(proxy_host, proxy_port, tcp_options)
        if ok == nil then
            return fail(
                sock,
                "failed to connect to: " .. proxy_host .. ":" .. tostring(proxy_port)
                    .. ": " .. tostring(connect_err)
            )
        end
    elseif port == nil then
        local ok, connect_err = sock:connect(host, tcp_options)
        if ok == nil then
            return fail(sock, connect_err)
        end
    else
        local ok, connect_err = sock:connect(host, port, tcp_options)
        if ok == nil then
            return fail(sock, connect_err)
        end
    end
    local ssl_session
    if ssl then
        local reused, reused_err = sock:getreusedtimes()
        if reused == nil then
            return fail(sock, reused_err)
        end
        -- A pooled connection is already tunnelled, handshaken and authenticated as this pool's
        -- identity: that is what the pool name guarantees.
        if reused == 0 then
            if proxy_host ~= nil then
                local tunnel_err = open_tunnel(sock, host .. ":" .. tostring(port), proxy_authorization)
                if tunnel_err ~= nil then
                    return fail(sock, tunnel_err)
                end
            end
            if identified then
                local set, set_err = sock:setclientcert(cert, key)
                if set == nil then
                    return fail(sock, "could not set client certificate: " .. tostring(set_err))
                end
            elseif sock.setclientcert ~= nil then
                -- lua-resty-core keeps a pair set by an earlier connect on this object for every later
                -- handshake: without this, a connect meant to present no identity would present it.
                sock:setclientcert(nil, nil)
            end
            local session, handshake_err = checked_handshake(
                sock,
                usable(options.ssl_reused_session, pool, pool_debug),
                server_name,
                verify,
                options.ssl_send_status_req
            )
            if session == nil then
                return fail(sock, handshake_err)
            end
            if session ~= true then
                bind(session, pool)
            end
            ssl_session = session
        end
    end
    httpc.host = host
    httpc.port = port
    httpc.keepalive = true
    httpc.ssl = ssl
    -- Over plain http through a proxy, lua-resty-http sends these with each request.
    if proxy_host ~= nil and not ssl then
        httpc.http_proxy_auth = proxy_authorization
        httpc.path_prefix = port == 80 and "http://" .. host or "http://" .. host .. ":" .. tostring(port)
    else
        httpc.http_proxy_auth = nil
        httpc.path_prefix = nil
    end
    return true, nil, ssl_session
end

return connect
