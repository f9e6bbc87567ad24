/**
 * The fields of a lua-resty-http client object (httpc) that connect reads and sets, as
 * lua-resty-http 0.17's request code reads them.
 */
declare interface HttpClient {
  sock?: TcpSock;
  proxy_opts?: unknown;
  host?: string;
  port?: number;
  keepalive?: boolean;
  ssl?: boolean;
  http_proxy_auth?: string;
  path_prefix?: string;
}
