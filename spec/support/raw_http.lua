-- A minimal HTTP/1.1 client over resty.mtls_pool.http_connect, for the integration specs:
-- one GET per call, keepalive on success, and what the mTLS server echoed back.
local connect = require "resty.mtls_pool.http_connect"

local _M = {}

-- Reads one response (status line, headers, Content-Length body) from `sock`.
function _M.read_response(sock)
  local status_line, err = sock:receive("*l")
  if not status_line then
    return nil, "status line: " .. tostring(err)
  end
  local status = tonumber(status_line:match("^HTTP/1%.%d (%d%d%d)"))
  local length, close
  while true do
    local line
    line, err = sock:receive("*l")
    if not line then
      return nil, "headers: " .. tostring(err)
    end
    if line == "" then
      break
    end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    name = name and name:lower()
    if name == "content-length" then
      length = tonumber(value)
    elseif name == "connection" and value:lower() == "close" then
      close = true
    end
  end
  local body = ""
  if length and length > 0 then
    body, err = sock:receive(length)
    if not body then
      return nil, "body: " .. tostring(err)
    end
  end
  return { status = status, body = body, close = close }
end

-- Sends GET `path` on the connected `httpc` and reads the response, leaving the connection as
-- it is. Returns { status, body, close, dn, conn, resumed } or nil, err.
function _M.request(httpc, path, headers)
  local target = (httpc.path_prefix or "") .. (path or "/")
  local request = { "GET ", target, " HTTP/1.1\r\nHost: localhost\r\n" }
  if httpc.http_proxy_auth then
    request[#request + 1] = "Proxy-Authorization: " .. httpc.http_proxy_auth .. "\r\n"
  end
  for name, value in pairs(headers or {}) do
    request[#request + 1] = name .. ": " .. value .. "\r\n"
  end
  request[#request + 1] = "\r\n"
  local sent, err = httpc.sock:send(table.concat(request))
  if not sent then
    return nil, "send: " .. tostring(err)
  end
  local res
  res, err = _M.read_response(httpc.sock)
  if not res then
    return nil, err
  end
  res.dn = res.body:match("dn=(.-) conn=")
  res.conn = tonumber(res.body:match("conn=(%d+)"))
  res.resumed = res.body:match("resumed=(%S+)")
  return res
end

-- How long a pooled connection may stay idle (ms): well under the test servers' keepalive_timeout
-- (60 s), so that it is this side that closes an idle pooled connection, never the server as a
-- spec reuses it. The bench raises it together with its server's.
_M.keepalive_timeout = 10000

-- GET `path` with connect options `options` on a new client object; the connection goes back
-- to the pool afterwards unless `keepalive` is false or the server closes it. `connect_fn`
-- defaults to resty.mtls_pool.http_connect.
-- Returns { status, body, dn, conn, reused, httpc } or nil, err (from connect or the exchange).
function _M.get(options, path, headers, keepalive, connect_fn)
  local httpc = { sock = ngx.socket.tcp(), proxy_opts = options.default_proxy_opts }
  httpc.sock:settimeouts(5000, 5000, 5000)
  local ok, err = (connect_fn or connect)(httpc, options)
  if not ok then
    return nil, err
  end
  local reused = httpc.sock:getreusedtimes()
  local res
  res, err = _M.request(httpc, path, headers)
  if not res then
    httpc.sock:close()
    return nil, err
  end
  if res.close or keepalive == false then
    httpc.sock:close()
  else
    httpc.sock:setkeepalive(_M.keepalive_timeout, 16)
  end
  res.reused = reused
  res.httpc = httpc
  return res
end

return _M
