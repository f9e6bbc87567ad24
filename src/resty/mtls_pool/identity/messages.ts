/** Error messages every identity provider returns, so that they read the same. */
export const KEY_MISMATCH = "private key does not match ssl_client_cert";
export const EMPTY_CHAIN = "bad ssl_client_cert: the certificate chain is empty";

/**
 * What a key signs to prove it is the certificate's private key. Any fixed text will do: a key
 * object that does not hold the private key cannot make a valid signature of anything.
 */
export const CHALLENGE = "resty.mtls_pool proof of possession";
