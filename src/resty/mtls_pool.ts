/**
 * resty.mtls_pool: connection-pool names that make mutual-TLS connection reuse safe.
 *
 *   local name, err = mtls_pool.pool_name(options, default_proxy_opts)
 *   local id, err   = mtls_pool.client_identity(cert, key)
 *   mtls_pool.patch(require "resty.http")
 *   mtls_pool.configure{ provider = "auto" | "openssl" | "ffi" | "object" }
 *   mtls_pool.provider()
 */
export const _VERSION = "0.1.0";
export { pool_name } from "./mtls_pool/name";
export { client_identity, configure, provider } from "./mtls_pool/identity";
export { patch } from "./mtls_pool/patch";
