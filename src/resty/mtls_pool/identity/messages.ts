/** Error messages every identity provider returns, so that they read the same. */
export const KEY_MISMATCH = "private key does not match ssl_client_cert";
export const EMPTY_CHAIN = "bad ssl_client_cert: the certificate chain is empty";
