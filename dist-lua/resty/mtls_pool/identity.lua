--- Client identity: checks the caller's cert/key pair, picks the provider lazily at first mTLS
-- use (resty.openssl, then the built-in FFI, then object tokens), logs that choice once per
-- worker when it costs something, and caches the identity per (cert, key) object pair.
local _M = {}
local bounded = require("resty.mtls_pool.bounded")
local weak_keys = bounded.weak_keys
local ffi_provider = require("resty.mtls_pool.identity.ffi")
local object_provider = require("resty.mtls_pool.identity.object")
local openssl_provider = require("resty.mtls_pool.identity.openssl")
local proofs = require("resty.mtls_pool.identity.proofs")
local forget_proofs = proofs.forget_proofs

local ngx_log = ngx.log
local DEBUG = ngx.DEBUG
local INFO = ngx.INFO
local WARN = ngx.WARN

-- Each provider module has the same three fields: name, load() and identity().
local PROVIDERS = {openssl = openssl_provider, ffi = ffi_provider, object = object_provider}

--- cert object -> key object -> identity; weak both ways so parsed certificates can be freed.
local function new_cache()
    return weak_keys()
end

local configured = "auto"

-- Counts configure() calls: identities made before and after one may differ (see identities_generation).
local generation = 0
local active

-- What the one-time log line says once `active` is first used; nil: nothing to say.
local notice
local cache = new_cache()
local OBJECT_ADVICE = "pooled mTLS connections are then shared only by requests that pass the same cert and key "
    .. "objects: parse certificates once (ngx.ssl.parse_pem_cert in init_by_lua or a module-level "
    .. "cache), not per request"

--- Chooses the provider when none is active yet; returns an error only for a forced one.
local function choose()
    if active ~= nil then
        return nil
    end
    if configured ~= "auto" then
        local provider = PROVIDERS[configured]
        local err = provider.load()
        if err ~= nil then
            return "identity provider " .. configured .. " unavailable: " .. err
        end
        active = provider
        if configured == "object" then
            notice = {
                WARN,
                "mtls_pool: using per-object client identities as configured; "
                    .. OBJECT_ADVICE
            }
        end
        return nil
    end
    local openssl_err = PROVIDERS.openssl.load()
    if openssl_err == nil then
        active = PROVIDERS.openssl
        return nil
    end
    local ffi_err = PROVIDERS.ffi.load()
    if ffi_err == nil then
        active = PROVIDERS.ffi
        notice = {
            INFO,
            "mtls_pool: " .. openssl_err .. "; using the built-in FFI certificate digest"
        }
        return nil
    end
    active = PROVIDERS.object
    notice = {
        WARN,
        "mtls_pool: " .. openssl_err .. ", and " .. ffi_err
            .. ": falling back to per-object client identities; "
            .. "install lua-resty-openssl to share pooled connections by certificate. Meanwhile "
            .. OBJECT_ADVICE
    }
    return nil
end

local function is_cdata(value)
    return type(value) == "cdata"
end

--- lua-resty-http's own message for the same refusal, and a hint at DEBUG for PEM strings.
local function bad_input(what, parser, value)
    if type(value) == "string" then
        ngx_log(
            DEBUG,
            "mtls_pool: ",
            what,
            " is a string: parse the PEM once with ngx.ssl.",
            parser,
            "() and pass the result"
        )
    end
    return "bad " .. what .. ": cdata expected, got " .. type(value)
end

--- The identity for a cert/key pair: "sha256:<64 hex>" (digest providers) or "obj:<n>".
-- Both must be set; false counts as not set. Errors are returned, never thrown.
local function client_identity(cert, key)
    if cert == nil or cert == false then
        if key == nil or key == false then
            return nil, "ssl_client_cert and ssl_client_priv_key are required"
        end
        return nil, "ssl_client_cert is required when ssl_client_priv_key is set"
    end
    if key == nil or key == false then
        return nil, "ssl_client_priv_key is required when ssl_client_cert is set"
    end
    if not is_cdata(cert) then
        return nil, bad_input("ssl_client_cert", "parse_pem_cert", cert)
    end
    if not is_cdata(key) then
        return nil, bad_input("ssl_client_priv_key", "parse_pem_priv_key", key)
    end
    local chain = cert
    local pkey = key
    local by_key = cache[chain]
    if by_key ~= nil then
        local known = by_key[pkey]
        if known ~= nil then
            return known, nil
        end
    end
    local err = choose()
    if err ~= nil then
        return nil, err
    end
    if notice ~= nil then
        ngx_log(notice[1], notice[2])
        notice = nil
    end
    local provider = active
    local id, id_err = provider.identity(chain, pkey)
    if id == nil then
        return nil, id_err
    end
    if by_key == nil then
        by_key = weak_keys()
        cache[chain] = by_key
    end
    by_key[pkey] = id
    return id, nil
end

--- The identity for connect options: nil, nil when neither ssl_client_cert nor
-- ssl_client_priv_key is set, else as client_identity().
local function options_identity(cert, key)
    -- A known pair first, before any check: only checked pairs are in the cache, and reading a
    -- table with a nil key is allowed. At one call site that names pools with and without a client
    -- certificate, the two paths then differ by two table reads.
    local by_key = cache[cert]
    if by_key ~= nil then
        local known = by_key[key]
        if known ~= nil then
            return known, nil
        end
    end
    if (cert == nil or cert == false) and (key == nil or key == false) then
        return nil, nil
    end
    return client_identity(cert, key)
end

--- configure{ provider = "auto" | "openssl" | "ffi" | "object" }: true, or nil, err.
local function configure(options)
    if type(options) ~= "table" then
        return nil, "bad options: table expected, got " .. type(options)
    end
    local name = options.provider
    if name == nil then
        name = "auto"
    end
    if name ~= "auto" and name ~= "openssl" and name ~= "ffi" and name ~= "object" then
        return nil, 'bad provider: "auto", "openssl", "ffi" or "object" expected, got '
            .. tostring(name)
    end
    if name ~= "auto" then
        local err = PROVIDERS[name].load()
        if err ~= nil then
            return nil, "identity provider " .. name .. " unavailable: " .. err
        end
    end
    configured = name
    generation = generation + 1
    active = nil
    notice = nil
    -- Identities from different providers differ: start afresh.
    cache = new_cache()
    forget_proofs()
    return true, nil
end

--- The name of the provider in use (choosing it now if no mTLS use has yet).
local function provider()
    if choose() ~= nil then
        -- Only a forced provider can fail, and configure() checked it loads.
        return configured
    end
    return active.name
end

--- A number that changes whenever identities may change (configure()): caches keyed by cert and
-- key objects rather than by identity compare it to know their names still hold.
local function identities_generation()
    return generation
end

_M.identities_generation = identities_generation
_M.client_identity = client_identity
_M.options_identity = options_identity
_M.configure = configure
_M.provider = provider

return _M
