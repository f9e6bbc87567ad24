--- Pool-name encoding: pure string work, no ngx, no FFI.
--
-- A name is VERSION followed by one token per field, joined with "|"; a name inside a caller's
-- pool (options.pool) is NAMESPACED followed by the caller's name and the TLS fields. A token is:
--   nil -> "~"    true -> "+"    false -> "!"    "" -> '""'    integer n -> "#n"
--   a non-empty string -> the string with every byte outside [A-Za-z0-9._:/[]-] written %XX.
-- No escaped string contains "|", "~", "+", "!", '"' or "#", and no token is empty, so the
-- token list (and with it the field tuple) can be read back from the name: the encoding is
-- injective. Names longer than MAX_LENGTH are replaced by HASHED_PREFIX .. sha256(name) ..
-- a readable head; unhashed names start with VERSION .. "|" or NAMESPACED .. "|", so the three
-- forms never meet.
local _M = {}
local bounded = require("resty.mtls_pool.bounded")
local new_bounded = bounded.new_bounded
local remember = bounded.remember

local concat = table.concat
local byte = string.byte
local find = string.find
local format = string.format
local gsub = string.gsub
local sub = string.sub
local VERSION = "mtls1"
local HASHED_PREFIX = "mtls1~"
local NAMESPACED = "mtls1@"

--- Longest name kept as is; longer ones are hashed.
local MAX_LENGTH = 512

--- How much of a hashed name's original stays readable, for debugging.
local HEAD_LENGTH = 160

-- Explicit ranges, not %w: that class follows the C locale.
local UNSAFE = "[^0-9A-Za-z._:/%[%]%-]"

local function escape_byte(c)
    return format("%%%02X", byte(c))
end

local function escape(value)
    if value == "" then
        return '""'
    end
    local unsafe_at = find(value, UNSAFE)
    if unsafe_at == nil then
        return value
    end
    local escaped = gsub(value, UNSAFE, escape_byte)
    return escaped
end

-- Tokens of recent strings and numbers, so that building a name costs table lookups rather
-- than pattern scans (string.find with a pattern also stops LuaJIT's trace compiler).
local tokens = new_bounded(1024)

--- The token for one field value; see the module comment.
local function token(value)
    if value == nil then
        return "~"
    end
    if type(value) == "boolean" then
        return value and "+" or "!"
    end
    local known = tokens.entries[value]
    if known ~= nil then
        return known
    end
    local fresh = type(value) == "number" and format("#%d", value) or escape(value)
    remember(tokens, value, fresh)
    return fresh
end

-- Reused for every name: a name is built without yielding, so one buffer per worker is safe.
local parts = {VERSION}

--- The unbounded name for one field tuple. Field order is part of the format: changing it
-- means a new VERSION.
local function fields(scheme, host, port, ssl, server_name, verify, proxy_uri, proxy_credentials, identity)
    parts[2] = token(scheme)
    parts[3] = token(host)
    parts[4] = token(port)
    parts[5] = token(ssl)
    parts[6] = token(server_name)
    parts[7] = token(verify)
    parts[8] = token(proxy_uri)
    parts[9] = token(proxy_credentials)
    parts[10] = token(identity)
    return concat(parts, "|")
end

-- The same, for names inside a caller's pool.
local namespaced_parts = {NAMESPACED}

--- The unbounded name inside the caller's pool `pool`: the caller chose which hosts and proxies
-- share it, while TLS, the SNI name, verification, the proxy credentials and the client identity
-- still separate connections within it.
local function namespaced(pool, ssl, server_name, verify, proxy_credentials, identity)
    namespaced_parts[2] = token(pool)
    namespaced_parts[3] = token(ssl)
    namespaced_parts[4] = token(server_name)
    namespaced_parts[5] = token(verify)
    namespaced_parts[6] = token(proxy_credentials)
    namespaced_parts[7] = token(identity)
    return concat(namespaced_parts, "|")
end

--- The stand-in for a name longer than MAX_LENGTH: HASHED_PREFIX, the hex SHA-256 of the
-- whole name, "|" and the first HEAD_LENGTH bytes after the version.
local function hashed(name, sha256_hex)
    return HASHED_PREFIX .. sha256_hex .. "|"
        .. sub(name, #VERSION + 2, #VERSION + 1 + HEAD_LENGTH)
end

_M.VERSION = VERSION
_M.HASHED_PREFIX = HASHED_PREFIX
_M.NAMESPACED = NAMESPACED
_M.MAX_LENGTH = MAX_LENGTH
_M.token = token
_M.fields = fields
_M.namespaced = namespaced
_M.hashed = hashed

return _M
