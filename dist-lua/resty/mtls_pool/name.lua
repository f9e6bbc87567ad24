--- pool_name(options, default_proxy_opts): the cosocket pool name for a set of httpc:connect
-- options. Adds to lua-resty-http's fields the proven client identity, and the https proxy
-- credentials as a keyed digest (names get logged: never the credentials themselves). A
-- caller's options.pool is a namespace: identity, TLS fields and credentials still separate.
local _M = {}
local bounded = require("resty.mtls_pool.bounded")
local keeps = bounded.keeps
local new_bounded = bounded.new_bounded
local remember = bounded.remember
local weak_keys = bounded.weak_keys
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
local identities_generation = identity_module.identities_generation
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
-- resolved fields, without building, escaping or interning a string. Each cache holds at most
-- MAX_NAMES names, then is emptied.
local MAX_NAMES = 1024

-- Without a client certificate.
local without_identity = new_bounded(MAX_NAMES)

-- With one: cert object -> key object -> Slots, weak on the objects (the caller's). Keyed by the
-- objects, not by their identity, so that a warm name costs neither the identity nor a lookup of
-- it: an mTLS name then costs two table reads more than a plain one, whichever shape a call site
-- met first. Only pairs whose identity was proven get here, under the identity provider in use:
-- a new provider empties it.
local by_pair = weak_keys()
local pair_names = 0
local pair_generation = identities_generation()

local function forget_pair_names()
    by_pair = weak_keys()
    pair_names = 0
end

local function new_recent(target, pool, name)
    return {
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
end

--- The three keys of the slot for `target` and `pool`: host, SNI name or host, pool or port or host.
local function slot_keys(target, pool)
    local host = target.host
    local server_name = target.server_name
    return host, type(server_name) == "string" and server_name or host, pool or target.port or host
end

--- The name kept in `slots` for `target` and `pool`, if it was built from the same fields.
local function kept_name(slots, target, pool)
    if slots == nil then
        return nil
    end
    local host, server, rest = slot_keys(target, pool)
    local by_server = slots[host]
    if by_server == nil then
        return nil
    end
    local by_pool = by_server[server]
    if by_pool == nil then
        return nil
    end
    local last = by_pool[rest]
    if last ~= nil and last.pool == pool and last.scheme == target.scheme
        and last.port == target.port and last.ssl == target.ssl and last.server_name == target.server_name
        and last.verify == target.verify and last.proxy_uri == target.proxy_uri
        and last.proxy_authorization == target.proxy_authorization then
        return last.name
    end
    return nil
end

--- Keeps `name` in `slots` for `target` and `pool`; false when a key is too long to keep.
local function keep_name(slots, target, pool, name)
    local host, server, last = slot_keys(target, pool)
    if not keeps(without_identity, host) or not keeps(without_identity, server)
        or not keeps(without_identity, last) then
        return false
    end
    local by_server = slots[host]
    if by_server == nil then
        by_server = {}
        slots[host] = by_server
    end
    local by_pool = by_server[server]
    if by_pool == nil then
        by_pool = {}
        by_server[server] = by_pool
    end
    by_pool[last] = new_recent(target, pool, name)
    return true
end

--- Keeps `name` for a (cert, key) pair, a target and a pool.
local function remember_pair_name(cert, key, target, pool, name)
    if pair_names >= MAX_NAMES then
        forget_pair_names()
    end
    local by_key = by_pair[cert]
    if by_key == nil then
        by_key = weak_keys()
        by_pair[cert] = by_key
    end
    local slots = by_key[key]
    if slots == nil then
        slots = {}
        by_key[key] = slots
    end
    if keep_name(slots, target, pool, name) then
        pair_names = pair_names + 1
    end
end

--- Keeps `name` for a target and a pool, without a client identity.
local function remember_name(target, pool, name)
    if without_identity.count >= without_identity.max then
        without_identity.entries = {}
        without_identity.count = 0
    end
    if keep_name(without_identity.entries, target, pool, name) then
        without_identity.count = without_identity.count + 1
    end
end

--- The pool name for a resolved target, the caller's ssl_client_cert and ssl_client_priv_key
-- (ignored without TLS) and pool (nil: none), and whether it carries a client identity; or
-- nil, nil, err when the cert/key pair is refused. Built once per (cert, key) objects, target
-- and pool while the caches keep it; after that, a comparison of the target's fields.
local function name_for(target, cert, key, pool)
    if target.ssl then
        local generation = identities_generation()
        if pair_generation ~= generation then
            forget_pair_names()
            pair_generation = generation
        end
        -- reading a table with a nil key is allowed: plain https finds nothing here
        local by_key = by_pair[cert]
        if by_key ~= nil then
            local known = kept_name(by_key[key], target, pool)
            if known ~= nil then
                return known, true, nil
            end
        end
        local identity, id_err = options_identity(cert, key)
        if id_err ~= nil then
            return nil, nil, id_err
        end
        if identity ~= nil then
            local name, err = build_name(target, identity, pool)
            if name == nil then
                return nil, nil, err
            end
            remember_pair_name(cert, key, target, pool, name)
            return name, true, nil
        end
    end
    local known = kept_name(without_identity.entries, target, pool)
    if known ~= nil then
        return known, false, nil
    end
    local name, err = build_name(target, nil, pool)
    if name == nil then
        return nil, nil, err
    end
    remember_name(target, pool, name)
    return name, false, nil
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
    local name, _, name_err = name_for(scratch, options.ssl_client_cert, options.ssl_client_priv_key, pool)
    if name == nil then
        return nil, name_err
    end
    return name, nil
end

_M.build_name = build_name
_M.caller_pool = caller_pool
_M.name_for = name_for
_M.pool_name = pool_name

return _M
