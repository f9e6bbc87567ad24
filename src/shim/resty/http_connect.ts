/**
 * Vendoring shim: dist-lua/shim/resty/http_connect.lua. Put dist-lua/shim ahead of
 * lua-resty-http in lua_package_path and its `require "resty.http_connect"` gets our connect:
 * an unmodified lua-resty-http then names its pools by client identity.
 */
import connect = require("../../resty/mtls_pool/http_connect");

export = connect;
