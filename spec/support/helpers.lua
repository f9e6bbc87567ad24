-- Helpers shared by the specs: fixture certificates, the worker's error.log, the environment.
local ssl = require "ngx.ssl"

local _M = {}

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    error("cannot read " .. path .. ": " .. tostring(err), 2)
  end
  local data = f:read("*a")
  f:close()
  return data
end
_M.read_file = read_file

function _M.env(name)
  local value = os.getenv(name)
  if value == "" then
    return nil
  end
  return value
end

function _M.certs_dir()
  return assert(_M.env("MTLS_POOL_CERTS"), "MTLS_POOL_CERTS is not set: run the specs with npm test")
end

function _M.pem(name)
  return read_file(_M.certs_dir() .. "/" .. name)
end

-- A freshly parsed certificate chain (cdata) from <name>.crt, or from a given file name.
function _M.cert(name, file)
  return assert(ssl.parse_pem_cert(_M.pem(file or (name .. ".crt"))))
end

function _M.key(name)
  return assert(ssl.parse_pem_priv_key(_M.pem(name .. ".key")))
end

-- { cert = ..., key = ... } parsed from <dir>/<name>.crt and .key (for the client nginx apps,
-- which get the certificates folder as an argument rather than from the environment).
function _M.client_pair(dir, name)
  return {
    cert = assert(ssl.parse_pem_cert(read_file(dir .. "/" .. name .. ".crt"))),
    key = assert(ssl.parse_pem_priv_key(read_file(dir .. "/" .. name .. ".key"))),
  }
end

-- The SHA-256 fingerprint the openssl CLI computed for <name>.crt, lowercase hex.
function _M.fingerprint(name)
  return (_M.pem(name .. ".fp"):gsub("%s+", ""))
end

-- Lines of this worker's error.log that contain `needle` (plain text), as a list.
function _M.log_lines(needle)
  local path = assert(_M.env("NGINX_ERROR_LOG"), "NGINX_ERROR_LOG is not set")
  local lines = {}
  for line in io.lines(path) do
    if line:find(needle, 1, true) then
      lines[#lines + 1] = line
    end
  end
  return lines
end

-- Runs a shell command; returns whether it exited 0, and its output. The exit status is read
-- from the output: nginx reaps its children itself, so pclose() cannot report it.
function _M.run(command)
  local pipe = assert(io.popen("(" .. command .. ") 2>&1; echo \"exit=$?\""))
  local output = pipe:read("*a")
  pipe:close()
  local body, status = output:match("^(.-)exit=(%d+)%s*$")
  return status == "0", body
end

-- A new temporary directory (mktemp -d); the caller removes it.
function _M.tmpdir(label)
  local ok, out = _M.run("mktemp -d /tmp/mtls-pool-" .. label .. "-XXXXXX")
  assert(ok, out)
  return (out:gsub("%s+$", ""))
end

-- A shallow copy of table `t` with the fields of `extra` (if any) set over it.
function _M.merged(t, extra)
  local out = {}
  for k, v in pairs(t) do
    out[k] = v
  end
  for k, v in pairs(extra or {}) do
    out[k] = v
  end
  return out
end

-- Prints to the test run's output (ngx's print() goes to error.log instead).
function _M.say(...)
  io.stdout:write(...)
  io.stdout:write("\n")
  io.stdout:flush()
end

-- A small deterministic generator (xorshift32) seeded with `seed`, independent of math.random's
-- state: rand(n) is an integer from 1 to n. (An LCG modulo 2^31 read through its low bits, as the
-- property spec once used, repeats them with short periods: whole kinds of cases never came up.)
function _M.xorshift32(seed)
  local bxor, lshift, rshift = bit.bxor, bit.lshift, bit.rshift
  local state = seed
  return function(n)
    state = bxor(state, lshift(state, 13))
    state = bxor(state, rshift(state, 17))
    state = bxor(state, lshift(state, 5))
    return state % n + 1
  end
end

-- Prepends the lib folder named by env var `var` to package.path; returns the folder or nil.
function _M.add_lib(var)
  local dir = _M.env(var)
  if not dir then
    return nil
  end
  if not package.path:find(dir .. "/?.lua;", 1, true) then
    package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
  end
  return dir
end

return _M
