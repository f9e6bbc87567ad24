local ____exports = {}
--- Error messages every identity provider returns, so that they read the same.
____exports.KEY_MISMATCH = "private key does not match ssl_client_cert"
____exports.EMPTY_CHAIN = "bad ssl_client_cert: the certificate chain is empty"
return ____exports
