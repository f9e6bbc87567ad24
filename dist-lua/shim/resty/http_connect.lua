local connect = require("resty.mtls_pool.http_connect")
local ____exports = connect
return ____exports
