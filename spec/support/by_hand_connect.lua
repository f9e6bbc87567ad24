-- A connect that uses options.pool verbatim, as lua-resty-http <= 0.17.1 does with any pool name
-- and as an application naming pools itself would: direct TCP or unix socket, then on a fresh
-- connection the client certificate and the handshake. No resty.mtls_pool code runs.
-- The demo and the load tests use it with one identity-less name (the vulnerable "shared"
-- mode); the bench with a name per identity (the "by hand" control).
-- Same signature and returns as resty.mtls_pool.http_connect, for the options those use.
return function(httpc, options)
  local sock = httpc.sock
  local tcp_options = { pool = assert(options.pool, "by_hand_connect needs options.pool") }
  local ok, err
  if options.port then
    ok, err = sock:connect(options.host, options.port, tcp_options)
  else
    ok, err = sock:connect(options.host, tcp_options)
  end
  if not ok then
    return nil, err
  end
  if sock:getreusedtimes() == 0 then
    if options.ssl_client_cert then
      ok, err = sock:setclientcert(options.ssl_client_cert, options.ssl_client_priv_key)
      if not ok then
        sock:close()
        return nil, err
      end
    end
    local session
    session, err = sock:sslhandshake(nil, options.ssl_server_name, options.ssl_verify ~= false)
    if not session then
      sock:close()
      return nil, err
    end
  end
  -- the fields lua-resty-http's own connect sets, as resty.mtls_pool.http_connect does: the bench's
  -- control then differs from it only in naming the pool
  httpc.host, httpc.port, httpc.keepalive, httpc.ssl = options.host, options.port, true, true
  httpc.http_proxy_auth, httpc.path_prefix = nil, nil
  return true
end
