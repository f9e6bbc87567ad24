--- load_pem_pair(cert_pem, key_pem): the parsed certificate chain and private key for PEM text, as
-- { cert = <cdata>, key = <cdata> } (read-only), or nil, err. For applications that hold PEM as
-- strings (a config store, a shared dict, a secret manager): the same pair of strings gives the
-- same objects, so the identity cache stays warm and connections are reused, where parsing per
-- request (~1 ms) would give new objects, and a cold identity, every time.
-- A pair is kept only once its key is proven to be the certificate's (client_identity), so a
-- mismatched key is an error every time, never a cache entry.
local _M = {}
local bounded = require("resty.mtls_pool.bounded")
local new_bounded = bounded.new_bounded
local remember_in = bounded.remember_in
local identity = require("resty.mtls_pool.identity")
local client_identity = identity.client_identity
local ssl = require("ngx.ssl")

local huge = math.huge
local parse_pem_cert = ssl.parse_pem_cert
local parse_pem_priv_key = ssl.parse_pem_priv_key

-- cert PEM -> key PEM -> pair: exact strings as keys (Lua interns them, so a lookup hashes
-- nothing), two levels so that no key is built per call. At most MAX_PAIRS pairs per worker:
-- when full the cache is emptied and the dropped objects are freed once unused.
local MAX_PAIRS = 256
local loaded = new_bounded(MAX_PAIRS, false, huge)

local function load_pem_pair(cert_pem, key_pem)
    if type(cert_pem) ~= "string" then
        return nil, "load_pem_pair: cert_pem: string expected, got " .. type(cert_pem)
    end
    if type(key_pem) ~= "string" then
        return nil, "load_pem_pair: key_pem: string expected, got " .. type(key_pem)
    end
    local by_key = loaded.entries[cert_pem]
    if by_key ~= nil then
        local known = by_key[key_pem]
        if known ~= nil then
            return known, nil
        end
    end
    local cert, cert_err = parse_pem_cert(cert_pem)
    if cert == nil then
        return nil, "load_pem_pair: cannot parse cert_pem: " .. tostring(cert_err)
    end
    local key, key_err = parse_pem_priv_key(key_pem)
    if key == nil then
        return nil, "load_pem_pair: cannot parse key_pem: " .. tostring(key_err)
    end
    local _, id_err = client_identity(cert, key)
    if id_err ~= nil then
        return nil, "load_pem_pair: " .. id_err
    end
    local pair = {cert = cert, key = key}
    remember_in(loaded, cert_pem, key_pem, pair)
    return pair, nil
end

_M.load_pem_pair = load_pem_pair

return _M
