/**
 * The parts of the ngx_lua API this project calls, and nothing more.
 * Reference: lua-nginx-module README (0.10.23) and lua-resty-core's ngx.ssl.
 */
/** @noSelfInFile */

/** An opaque cdata value: LuaJIT reports type(x) == "cdata". */
declare interface CData {
  readonly __cdata: unique symbol;
}

/** `STACK_OF(X509) *` as returned by ngx.ssl.parse_pem_cert (a `void *` cdata). */
declare interface CertChain extends CData {
  readonly __certChain: unique symbol;
}

/** `EVP_PKEY *` as returned by ngx.ssl.parse_pem_priv_key (a `void *` cdata). */
declare interface PrivateKey extends CData {
  readonly __privateKey: unique symbol;
}

/** The `SSL_SESSION *` cdata sslhandshake returns when reusing sessions is requested. */
declare interface SslSession extends CData {
  readonly __sslSession: unique symbol;
}

declare interface TcpConnectOptions {
  pool?: string;
  pool_size?: number;
  backlog?: number;
}

declare interface TcpSock {
  connect(this: TcpSock, host: string, port: number, options?: TcpConnectOptions): LuaMultiReturn<[1 | undefined, string | undefined]>;
  connect(this: TcpSock, unixPath: string, options?: TcpConnectOptions): LuaMultiReturn<[1 | undefined, string | undefined]>;
  sslhandshake(
    this: TcpSock,
    reusedSession: SslSession | boolean | undefined,
    serverName: string | false | undefined,
    sslVerify: boolean | undefined,
    sendStatusReq: boolean | undefined,
  ): LuaMultiReturn<[SslSession | true | undefined, string | undefined]>;
  /**
   * ngx_lua >= 0.10.23 only. The pair stays on the object for every later handshake on it;
   * nil, nil takes it off.
   */
  setclientcert?(
    this: TcpSock,
    cert: CertChain | undefined,
    key: PrivateKey | undefined,
  ): LuaMultiReturn<[true | undefined, string | undefined]>;
  getreusedtimes(this: TcpSock): LuaMultiReturn<[number | undefined, string | undefined]>;
  setkeepalive(this: TcpSock, timeout?: number, size?: number): LuaMultiReturn<[1 | undefined, string | undefined]>;
  send(this: TcpSock, data: string): LuaMultiReturn<[number | undefined, string | undefined]>;
  receive(this: TcpSock, pattern?: string | number): LuaMultiReturn<[string | undefined, string | undefined, string | undefined]>;
  close(this: TcpSock): LuaMultiReturn<[1 | undefined, string | undefined]>;
  settimeouts(this: TcpSock, connect: number, send: number, read: number): void;
}

declare namespace ngx {
  const DEBUG: number;
  const INFO: number;
  const NOTICE: number;
  const WARN: number;
  const ERR: number;
  function log(level: number, ...message: (string | number | boolean | undefined)[]): void;

  namespace config {
    const ngx_lua_version: number;
    const nginx_version: number;
    const debug: boolean;
  }
  namespace worker {
    function pid(): number;
  }
  namespace socket {
    function tcp(): TcpSock;
  }
}

declare module "ngx.ssl" {
  /** @noSelf */
  export function parse_pem_cert(pem: string): LuaMultiReturn<[CertChain | undefined, string | undefined]>;
  /** @noSelf */
  export function parse_pem_priv_key(pem: string): LuaMultiReturn<[PrivateKey | undefined, string | undefined]>;
}
