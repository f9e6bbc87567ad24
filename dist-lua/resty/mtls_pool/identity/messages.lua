--- Error messages every identity provider returns, so that they read the same.
local _M = {}

_M.KEY_MISMATCH = "private key does not match ssl_client_cert"
_M.EMPTY_CHAIN = "bad ssl_client_cert: the certificate chain is empty"

return _M
