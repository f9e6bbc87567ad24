--- resty.mtls_pool: connection-pool names that make mutual-TLS connection reuse safe.
--
--   local name, err = mtls_pool.pool_name(options, default_proxy_opts)
--   local id, err   = mtls_pool.client_identity(cert, key)
--   local pair, err = mtls_pool.load_pem_pair(cert_pem, key_pem) -- pair.cert, pair.key
--   mtls_pool.patch(require "resty.http")
--   mtls_pool.configure{ provider = "auto" | "openssl" | "ffi" | "object" }
--   mtls_pool.provider()
--
-- Reading the modules (resty/mtls_pool/*.lua), in the order a connect uses them; start with
-- http_connect, the whole path in one function:
--   http_connect  connect(httpc, options): resolve, identity, name, then tcpsock:connect with
--                 that pool, the proxy CONNECT, setclientcert and sslhandshake on a new
--                 connection; every refusal closes the socket
--   target        resolve(): the options checked, lua-resty-http's defaults applied, no_proxy
--   identity      client_identity(): checks the cert/key pair, picks a provider (identity/openssl,
--                 identity/ffi, identity/object), caches the identity per cert/key object;
--                 identity/proofs remembers each proven pair by its leaf and key secret, so that
--                 new objects of that pair skip the signature
--   name          name_for() / pool_name(): the pool name of a target and identity (inside the
--                 caller's options.pool, when given), cached
--   sessions      which pool each TLS session was made in: a session resumes only there
--   pem           load_pem_pair(): PEM text to parsed objects, cached, so identities stay warm
--   encode        the name's format: one escaped token per field, injective; long names hashed
--   bounded       the size-bounded caches all of the above use
--   crypto        SHA-256, HMAC and random bytes over nginx's own libcrypto, declared in
--                 include/libcrypto
--   patch         patch(http): lua-resty-http's table-form connect goes through http_connect
local _M = {}
local identity = require("resty.mtls_pool.identity")
local name = require("resty.mtls_pool.name")
local patcher = require("resty.mtls_pool.patch")
local pem = require("resty.mtls_pool.pem")

_M._VERSION = "0.1.0"
_M.pool_name = name.pool_name
_M.client_identity = identity.client_identity
_M.configure = identity.configure
_M.provider = identity.provider
_M.patch = patcher.patch
_M.load_pem_pair = pem.load_pem_pair

return _M
