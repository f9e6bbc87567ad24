package = "lua-resty-mtls-pool"
version = "0.1.0-1"
source = {
  -- `luarocks make` builds from this checkout; `url` is where a packed source rock would come from.
  url = "git+https://github.com/lua-resty-mtls-pool/lua-resty-mtls-pool.git",
  tag = "v0.1.0",
}
description = {
  summary = "Connection-pool names that make mutual-TLS connection reuse safe in lua-resty-http",
  detailed = [[
    Pool names for OpenResty cosockets that include a proven client identity (SHA-256 of the
    leaf certificate, after checking the caller holds its private key), a drop-in replacement
    for lua-resty-http's resty.http_connect, and patch() for lua-resty-http. Optional: with
    lua-resty-openssl installed it is used for the digest; without it, a built-in FFI digest
    over nginx's own libcrypto is used.
  ]],
  license = "BSD-2-Clause",
}
dependencies = {
  "lua >= 5.1",
  -- lua-resty-openssl is optional and deliberately not listed: see README, "Identity providers".
}
build = {
  type = "builtin",
  -- The vendoring shim (dist-lua/shim/resty/http_connect.lua) is not installed: it would replace
  -- lua-resty-http's own resty.http_connect in the tree. Use mtls_pool.patch() with the rock.
  modules = {
    ["resty.mtls_pool"] = "dist-lua/resty/mtls_pool.lua",
    ["resty.mtls_pool.bounded"] = "dist-lua/resty/mtls_pool/bounded.lua",
    ["resty.mtls_pool.crypto"] = "dist-lua/resty/mtls_pool/crypto.lua",
    ["resty.mtls_pool.encode"] = "dist-lua/resty/mtls_pool/encode.lua",
    ["resty.mtls_pool.http_connect"] = "dist-lua/resty/mtls_pool/http_connect.lua",
    ["resty.mtls_pool.identity"] = "dist-lua/resty/mtls_pool/identity.lua",
    ["resty.mtls_pool.identity.ffi"] = "dist-lua/resty/mtls_pool/identity/ffi.lua",
    ["resty.mtls_pool.identity.messages"] = "dist-lua/resty/mtls_pool/identity/messages.lua",
    ["resty.mtls_pool.identity.object"] = "dist-lua/resty/mtls_pool/identity/object.lua",
    ["resty.mtls_pool.identity.openssl"] = "dist-lua/resty/mtls_pool/identity/openssl.lua",
    ["resty.mtls_pool.identity.proofs"] = "dist-lua/resty/mtls_pool/identity/proofs.lua",
    ["resty.mtls_pool.include.libcrypto"] = "dist-lua/resty/mtls_pool/include/libcrypto.lua",
    ["resty.mtls_pool.name"] = "dist-lua/resty/mtls_pool/name.lua",
    ["resty.mtls_pool.patch"] = "dist-lua/resty/mtls_pool/patch.lua",
    ["resty.mtls_pool.pem"] = "dist-lua/resty/mtls_pool/pem.lua",
    ["resty.mtls_pool.sessions"] = "dist-lua/resty/mtls_pool/sessions.lua",
    ["resty.mtls_pool.target"] = "dist-lua/resty/mtls_pool/target.lua",
  },
}
