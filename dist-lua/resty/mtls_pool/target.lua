--- What a set of httpc:connect options describes, with lua-resty-http 0.17's defaults applied:
-- where to connect, whether and how to do TLS, and which proxy to go through.
-- Pure Lua: no ngx, no FFI. Every user value is checked, since callers are plain Lua.
local _M = {}
local bounded = require("resty.mtls_pool.bounded")
local new_bounded = bounded.new_bounded
local remember = bounded.remember

local byte = string.byte
local find = string.find
local lower = string.lower
local match = string.match
local sub = string.sub

--- A target for resolve() to fill in place, so that callers reuse one table. Its fields:
--   scheme, host, ssl
--   port                 nil for a unix socket ("unix:/path"), or a host given with neither
--                        scheme nor port
--   server_name          https only: the SNI name as given (nil or false: none sent)
--   verify               https only: false only when the caller passed ssl_verify = false
--   proxy_uri, proxy_host, proxy_port
--                        the proxy in use, after no_proxy; nil when connecting directly
--   proxy_authorization  the Proxy-Authorization value for that proxy
function _M.new_target()
    -- Every field is created with a value, then the optional ones are cleared: a key stays in the
    -- table once made, so that resolve() stores nil or a value alike, as a plain store. A missing
    -- key would cost a key insertion (NEWREF) per store, or a branch per field, which at one call
    -- site turns every change of shape (direct or proxied, say) into a trace exit.
    local target = {
        scheme = "",
        host = "",
        port = 0,
        ssl = false,
        server_name = "",
        verify = false,
        proxy_uri = "",
        proxy_host = "",
        proxy_port = 0,
        proxy_authorization = ""
    }
    target.scheme = nil
    target.port = nil
    target.server_name = nil
    target.verify = nil
    target.proxy_uri = nil
    target.proxy_host = nil
    target.proxy_port = nil
    target.proxy_authorization = nil
    return target
end

local DOT = 46 -- "."
local SPACE = 32
local TAB = 9
local LEFT_BRACKET = 91 -- "["
local LOWER_U = 117 -- "u"

local function bad(what, expected, value)
    return "bad " .. what .. ": " .. expected .. " expected, got " .. type(value)
end

--- A port number or numeric string, as an integer from 1 to 65535, else nil.
local function valid_port(value)
    local port = tonumber(value)
    if port == nil or port < 1 or port > 65535 or port % 1 ~= 0 then
        return nil
    end
    return port
end

local MAX_SERVER_NAME = 255
local DEL = 127

-- Strings found free of control bytes: the byte loop runs once per distinct host, SNI or
-- credentials, not on every call (an inner loop costs the caller's trace an exit per call).
local checked = new_bounded(1024)

--- Whether `value` holds a control byte: a byte loop, since LuaJIT compiles no pattern search.
local function has_control(value)
    if checked.entries[value] ~= nil then
        return false
    end
    for i = 1, #value do
        local c = byte(value, i)
        if c < SPACE or c == DEL then
            return true
        end
    end
    remember(checked, value, true)
    return false
end

local function is_blank(c)
    return c == SPACE or c == TAB
end

--- Whether `no_proxy` exempts `host`, as lua-resty-http 0.17 decides it: "*" exempts every host;
-- otherwise a comma-separated list whose entries (a leading "." ignored) match the host itself
-- or, when the entry has a dot, any domain the host is under. Unlike upstream, blanks around
-- entries are ignored ("a.com, b.com" works as curl reads it).
local function exempt(host, no_proxy)
    if no_proxy == "*" then
        return true
    end
    local host_length = #host
    local list_length = #no_proxy
    local start = 1
    while start <= list_length do
        local comma = find(no_proxy, ",", start, true)
        local last = comma == nil and list_length or comma - 1
        local first = start
        while first <= last and is_blank(byte(no_proxy, first)) do
            first = first + 1
        end
        while last >= first and is_blank(byte(no_proxy, last)) do
            last = last - 1
        end
        if first <= last and byte(no_proxy, first) == DOT then
            first = first + 1
        end
        local length = last - first + 1
        if length > 0 then
            if length == host_length then
                if sub(no_proxy, first, last) == host then
                    return true
                end
            elseif length < host_length and byte(host, host_length - length) == DOT then
                -- A parent domain: upstream only compares parents that still hold a dot.
                local dot = find(no_proxy, ".", first, true)
                if dot ~= nil and dot <= last
                    and sub(host, host_length - length + 1) == sub(no_proxy, first, last) then
                    return true
                end
            end
        end
        if comma == nil then
            break
        end
        start = comma + 1
    end
    return false
end

local PROXY_URI_FORM = "expected http://host[:port]"

-- Proxy URIs already parsed: string.match is not compiled by LuaJIT, and a proxy rarely changes.
local proxy_addresses = new_bounded(256)

--- The host and port of an http proxy URI, or an error message.
local function proxy_address(uri)
    local known = proxy_addresses.entries[uri]
    if known ~= nil then
        return known
    end
    -- The URI is never echoed back: it is configuration that may hold secrets.
    local scheme, authority = match(uri, "^(%a[%w+.%-]*)://([^/?#]*)")
    if scheme == nil or authority == nil then
        return "bad proxy URI: " .. PROXY_URI_FORM
    end
    if lower(scheme) ~= "http" then
        return "protocol " .. scheme .. " not supported for proxy connections"
    end
    local at = find(authority, "@", 1, true)
    if at ~= nil then
        return "bad proxy URI: credentials in the URI are not supported, use http(s)_proxy_authorization"
    end
    -- An IPv6 literal keeps its brackets, as ngx's connect() expects it.
    local pattern = byte(authority, 1) == LEFT_BRACKET and "^(%[[^%]]+%])(.*)$" or "^([^:]+)(.*)$"
    local host, rest = match(authority, pattern)
    if host == nil or rest == nil then
        return "bad proxy URI: " .. PROXY_URI_FORM
    end
    local port = 80
    if rest ~= "" then
        local digits = match(rest, "^:(%d+)$")
        port = valid_port(digits)
        if port == nil then
            return "bad proxy URI: " .. PROXY_URI_FORM
        end
    end
    local address = {host = host, port = port}
    remember(proxy_addresses, uri, address)
    return address
end

--- Fills `out` from `options` (and `default_proxy_opts` when options.proxy_opts is nil).
-- Returns an error message, or nil on success.
function _M.resolve(options, default_proxy_opts, out)
    if type(options) ~= "table" then
        return bad("options", "table", options)
    end
    local scheme = options.scheme
    local host = options.host
    if type(host) ~= "string" or host == "" then
        return bad("host", "non-empty string", host)
    end
    -- Control bytes are never part of a host name, and through a proxy the host goes into the
    -- CONNECT request line, where CR/LF would inject headers.
    if has_control(host) then
        return "bad host: control characters are not allowed"
    end
    if scheme ~= nil and scheme ~= "http" and scheme ~= "https" then
        if type(scheme) == "string" then
            return 'bad scheme: "http" or "https" expected, got "' .. scheme .. '"'
        end
        return bad("scheme", '"http" or "https"', scheme)
    end
    -- The first byte first: find() is a C call on every call, and sub(host, 1, 5) would make and
    -- intern a substring; only a host starting with "u" pays for the search.
    local unix = byte(host, 1) == LOWER_U and (find(host, "unix:", 1, true)) == 1
    local port
    if options.port ~= nil then
        if scheme == nil then
            return "'scheme' is required when providing a port"
        end
        if unix then
            return "bad port: a unix socket host takes no port"
        end
        port = valid_port(options.port)
        if port == nil then
            if type(options.port) == "number" or type(options.port) == "string" then
                return "bad port: integer from 1 to 65535 expected, got "
                    .. tostring(options.port)
            end
            return bad("port", "integer from 1 to 65535", options.port)
        end
    elseif scheme ~= nil and not unix then
        port = scheme == "https" and 443 or 80
    end
    local ssl = scheme == "https"
    local server_name
    local verify
    if ssl then
        server_name = options.ssl_server_name
        if type(server_name) == "string" then
            -- OpenSSL refuses these in SSL_set_tlsext_host_name, after the TCP connect, and leaves
            -- its error queued for the worker's next TLS operation: refuse them here instead.
            if server_name == "" or #server_name > MAX_SERVER_NAME
                or has_control(server_name) then
                return "bad ssl_server_name: 1 to 255 bytes without control characters expected"
            end
        elseif server_name ~= nil and server_name ~= false then
            return bad("ssl_server_name", "string", server_name)
        end
        verify = options.ssl_verify ~= false
    end
    out.scheme = scheme
    out.host = host
    out.port = port
    out.ssl = ssl
    out.server_name = server_name
    out.verify = verify
    out.proxy_uri = nil
    out.proxy_host = nil
    out.proxy_port = nil
    out.proxy_authorization = nil
    -- A proxy reaches TCP targets only: a unix socket is always connected to directly.
    if port == nil then
        return nil
    end
    local proxy = options.proxy_opts
    if proxy == nil then
        proxy = default_proxy_opts
    end
    if proxy == nil then
        return nil
    end
    if type(proxy) ~= "table" then
        return bad("proxy_opts", "table", proxy)
    end
    local opts = proxy
    local uri = opts.http_proxy
    local authorization = opts.http_proxy_authorization
    if ssl then
        uri = opts.https_proxy
        authorization = opts.https_proxy_authorization
    end
    local no_proxy = opts.no_proxy
    if uri ~= nil and type(uri) ~= "string" then
        return bad(tostring(scheme) .. "_proxy", "string", uri)
    end
    if authorization ~= nil and type(authorization) ~= "string" then
        return bad(tostring(scheme) .. "_proxy_authorization", "string", authorization)
    end
    if authorization ~= nil and has_control(authorization) then
        -- It becomes a header line, of CONNECT or of each request: CR/LF would inject headers.
        return "bad " .. tostring(scheme)
            .. "_proxy_authorization: control characters are not allowed"
    end
    if no_proxy ~= nil and type(no_proxy) ~= "string" then
        return bad("no_proxy", "string", no_proxy)
    end
    if uri == nil or no_proxy ~= nil and exempt(host, no_proxy) then
        return nil
    end
    local address = proxy_address(uri)
    if type(address) == "string" then
        return address
    end
    out.proxy_host = address.host
    out.proxy_port = address.port
    out.proxy_uri = uri
    out.proxy_authorization = authorization
    return nil
end

return _M
