--- pool_name(options, default_proxy_opts): the cosocket pool name for a set of httpc:connect
-- options. Adds to lua-resty-http's fields the proven client identity, and the https proxy
-- credentials as a keyed digest (names get logged: never the credentials themselves). A
-- caller's options.pool is a namespace: identity, TLS fields and credentials still separate.
local _M = {}
local bounded = require("resty.mtls_pool.bounded")
local keeps = bounded.keeps
local new_bounded = bounded.new_bounded
local remember = bounded.remember
local remember_in = bounded.remember_in
local encode = require("resty.mtls_pool.encode")
local fields = encode.fields
local hashed = encode.hashed
local MAX_LENGTH = encode.MAX_LENGTH
local namespaced = encode.namespaced
local crypto = require("resty.mtls_pool.crypto")
local hmac_sha256_hex = crypto.hmac_sha256_hex
local random32 = crypto.random32
local sha256_hex = crypto.sha256_hex
local identity_module = require("resty.mtls_pool.identity")
local options_identity = identity_module.options_identity
local target_module = require("resty.mtls_pool.target")
local new_target = target_module.new_target
local resolve = target_module.resolve

-- Per-worker secret for the credentials digest: names only need to agree within a worker.
local credentials_key

--- Digests of recent credentials, so that building a name does no HMAC.
local credentials_digests = new_bounded(256)

local function credentials_digest(authorization)
    local known = credentials_digests.entries[authorization]
    if known ~= nil then
        return known, nil
    end
    if credentials_key == nil then
        local key, err = random32()
        if key == nil then
            return nil, "cannot digest proxy credentials: " .. err
        end
        credentials_key = key
    end
    local digest, err = hmac_sha256_hex(credentials_key, authorization)
    if digest == nil then
        return nil, "cannot digest proxy credentials: " .. err
    end
    remember(credentials_digests, authorization, digest)
    return digest, nil
end

--- The name for a resolved target and a client identity (nil: no client certificate), inside
-- the caller's pool `pool` when it is not nil.
local function build_name(target, identity, pool)
    -- Over plain http the credentials travel with each request, not with the connection.
    local credentials
    if target.ssl and target.proxy_authorization ~= nil then
        local digest, err = credentials_digest(target.proxy_authorization)
        if digest == nil then
            return nil, err
        end
        credentials = digest
    end
    local name
    if pool == nil then
        name = fields(
            target.scheme,
            target.host,
            target.port,
            target.ssl,
            target.server_name,
            target.verify,
            target.proxy_uri,
            credentials,
            identity
        )
    else
        name = namespaced(pool, target.ssl, target.server_name, target.verify, credentials, identity)
    end
    if #name <= MAX_LENGTH then
        return name, nil
    end
    local digest, err = sha256_hex(name)
    if digest == nil then
        return nil, "cannot bound the pool name: " .. err
    end
    return hashed(name, digest), nil
end

-- Names already built, with the fields they were built from: a warm name is a comparison of the
-- resolved fields, without building, escaping or interning a string. Without a client identity:
-- host -> Recent; with one: identity -> host -> Recent (`count` counts Recent entries). Apart,
-- so that the lookup without identity uses no constant key in a table that grows with identities
-- (LuaJIT specialises such a lookup on the table's size and leaves the trace when it changes).
local without_identity = new_bounded(1024)
local with_identity = new_bounded(1024)

local function remember_name(target, identity, pool, name)
    if not keeps(without_identity, target.host) then
        return
    end
    local recent = {
        pool = pool,
        scheme = target.scheme,
        port = target.port,
        ssl = target.ssl,
        server_name = target.server_name,
        verify = target.verify,
        proxy_uri = target.proxy_uri,
        proxy_authorization = target.proxy_authorization,
        name = name
    }
    if identity == nil then
        remember(without_identity, target.host, recent)
    else
        remember_in(with_identity, identity, target.host, recent)
    end
end

--- The pool name for a resolved target, a client identity (nil: none) and the caller's pool (nil:
-- none), or nil, err. Built once per identity, target and pool while the cache keeps it; after
-- that, a comparison of the target's fields.
local function name_for(target, identity, pool)
    local by_host = identity == nil and without_identity.entries or with_identity.entries[identity]
    local last
    if by_host ~= nil then
        last = by_host[target.host]
    end
    if last ~= nil and last.pool == pool and last.scheme == target.scheme
        and last.port == target.port and last.ssl == target.ssl and last.server_name == target.server_name
        and last.verify == target.verify and last.proxy_uri == target.proxy_uri
        and last.proxy_authorization == target.proxy_authorization then
        return last.name, nil
    end
    local name, err = build_name(target, identity, pool)
    if name == nil then
        return nil, err
    end
    remember_name(target, identity, pool, name)
    return name, nil
end

-- pool_name() resolves into this table; nothing between resolve and use yields.
local scratch = new_target()

--- options.pool checked: a string or nil; the error message otherwise.
local function caller_pool(pool)
    if pool == nil or type(pool) == "string" then
        return pool, nil
    end
    return nil, "bad pool: string expected, got " .. type(pool)
end

--- The pool name for httpc:connect options, or nil, err.
local function pool_name(options, default_proxy_opts)
    local err = resolve(options, default_proxy_opts, scratch)
    if err ~= nil then
        return nil, err
    end
    local pool, pool_err = caller_pool(options.pool)
    if pool_err ~= nil then
        return nil, pool_err
    end
    local identity
    if scratch.ssl then
        local id, id_err = options_identity(options.ssl_client_cert, options.ssl_client_priv_key)
        if id_err ~= nil then
            return nil, id_err
        end
        identity = id
    end
    return name_for(scratch, identity, pool)
end

_M.caller_pool = caller_pool
_M.name_for = name_for
_M.pool_name = pool_name

return _M
