-- Property: the pool name is injective. For >= 100,000 seeded random pairs of resolved option
-- sets (adversarial bytes, empty strings, IPv6 literals, 4 KiB hosts, a caller's pool or none),
-- distinct sets give distinct names and equal sets equal names; every name is also checked
-- against all others. Names with a client identity are built from arbitrary identity strings
-- (build_name); the caches are checked against it: names without one here, names of real
-- (cert, key) objects in the second spec.
local helpers = require "support.helpers"
local mtls_pool = require "resty.mtls_pool"
local name_for = require("resty.mtls_pool.name").name_for
local build_name = require("resty.mtls_pool.name").build_name
local new_target = require("resty.mtls_pool.target").new_target

local PAIRS = tonumber(helpers.env("PROPERTY_PAIRS")) or 100000
local SEED = tonumber(helpers.env("PROPERTY_SEED")) or 20261129

-- Independent of math.random; see helpers.xorshift32 (two tuples differing only in ssl_verify,
-- say, must come up).
local rand = helpers.xorshift32(SEED)

local PIECES = { "a", "b", "Z", "0", "9", ".", "-", "_", ":", "/", "[", "]", "|", "%", "#", "~", "+", "!",
                 "\"", "\0", " ", "\n", "\255", "%7C", "%25", "::1", "[::1]", "|~|", "#443", "\"\"", "unix:" }

local function random_string()
  local roll = rand(100)
  if roll <= 8 then
    return ""
  elseif roll <= 10 then
    -- a 4 KiB host, differing from others only in its last bytes
    return string.rep("h", 4090) .. PIECES[rand(#PIECES)] .. PIECES[rand(#PIECES)]
  end
  local parts = {}
  for i = 1, rand(6) do
    parts[i] = PIECES[rand(#PIECES)]
  end
  return table.concat(parts)
end

local function maybe_string()
  local roll = rand(10)
  if roll == 1 then
    return nil
  end
  return random_string()
end

local FIELDS = { "scheme", "host", "port", "ssl", "server_name", "verify", "proxy_uri",
                 "proxy_authorization", "identity", "pool" }
-- What a name inside a caller's pool is made of: the caller chose which hosts share it.
local NAMESPACED = { pool = true, ssl = true, server_name = true, verify = true, proxy_authorization = true,
                     identity = true }

local function random_value(field)
  if field == "scheme" then
    local roll = rand(4)
    return ({ "http", "https", nil, random_string() })[roll]
  elseif field == "host" then
    return random_string()
  elseif field == "port" then
    local roll = rand(4)
    if roll == 1 then
      return nil
    end
    return ({ 80, 443, rand(65535) })[roll - 1]
  elseif field == "ssl" then
    return rand(2) == 1
  elseif field == "server_name" or field == "verify" then
    local roll = rand(4)
    if roll == 1 then
      return nil
    elseif roll == 2 then
      return false
    elseif roll == 3 and field == "verify" then
      return true
    end
    return random_string()
  elseif field == "identity" then
    local roll = rand(4)
    if roll == 1 then
      return nil
    elseif roll == 2 then
      return "obj:" .. rand(50)
    end
    return random_string()
  elseif field == "pool" then
    if rand(3) > 1 then
      return nil
    end
    return random_string()
  end
  return maybe_string()
end

local function random_tuple()
  local t = {}
  for _, field in ipairs(FIELDS) do
    t[field] = random_value(field)
  end
  return t
end

-- A second, independent injective serialisation (type tag + length prefix) to compare with.
local function canonical(t)
  local out = {}
  for i, field in ipairs(FIELDS) do
    local v = t[field]
    -- over plain http the proxy credentials are not part of the connection's identity
    if field == "proxy_authorization" and not t.ssl then
      v = nil
    end
    -- inside a caller's pool, only the namespaced fields count
    if t.pool ~= nil and not NAMESPACED[field] then
      v = nil
    end
    local s = v == nil and "" or tostring(v)
    out[i] = type(v) .. "/" .. #s .. "/" .. s
  end
  return table.concat(out, ";")
end

local target = new_target()
local function set_target(t)
  for _, field in ipairs(FIELDS) do
    if field ~= "identity" and field ~= "pool" then
      target[field] = t[field]
    end
  end
end

local function name_of(t)
  set_target(t)
  local n, err, _
  if t.identity == nil then
    n, _, err = name_for(target, nil, nil, t.pool)
  else
    n, err = build_name(target, t.identity, t.pool)
  end
  assert(n, err)
  return n
end

-- nil, "" and false are the classic confusions; each field is given those its type allows in a
-- resolved target (resolve() makes the host a string, the credentials a string or nil, ...).
local NIL = {}
local CONFUSIONS = {
  scheme = { NIL, "" }, host = { "" }, port = { NIL }, ssl = { false }, server_name = { NIL, "", false },
  verify = { NIL, false }, proxy_uri = { NIL, "" }, proxy_authorization = { NIL, "" }, identity = { NIL, "" },
  pool = { NIL, "" },
}

local function mutate(t)
  local copy = {}
  for _, field in ipairs(FIELDS) do
    copy[field] = t[field]
  end
  local field = FIELDS[rand(#FIELDS)]
  local v = copy[field]
  local roll = rand(4)
  if type(v) == "string" and roll == 1 then
    copy[field] = v .. PIECES[rand(#PIECES)]
  elseif type(v) == "string" and roll == 2 then
    copy[field] = PIECES[rand(#PIECES)] .. v
  elseif roll == 3 then
    local choices = CONFUSIONS[field]
    local pick = choices[rand(#choices)]
    if pick == NIL then
      pick = nil
    end
    copy[field] = pick
  else
    copy[field] = random_value(field)
  end
  return copy
end

describe("pool name encoding (property)", function()
  it(("is injective over %d seeded random pairs"):format(PAIRS), function()
    local names = {}          -- name -> canonical form of the tuple that produced it
    local collisions, distinct, equal, longest, hashed = 0, 0, 0, 0, 0
    for _ = 1, PAIRS do
      local a = random_tuple()
      local roll = rand(10)
      local b
      if roll <= 5 then
        b = mutate(a)
      elseif roll == 6 then
        b = a
      else
        b = random_tuple()
      end
      local ka, kb = canonical(a), canonical(b)
      local na, nb = name_of(a), name_of(b)
      if ka == kb then
        equal = equal + 1
        if na ~= nb then
          collisions = collisions + 1
        end
      else
        distinct = distinct + 1
        if na == nb then
          collisions = collisions + 1
        end
      end
      for _, pair in ipairs({ { na, ka }, { nb, kb } }) do
        local n, k = pair[1], pair[2]
        if names[n] and names[n] ~= k then
          collisions = collisions + 1
        end
        names[n] = k
        if #n > longest then
          longest = #n
        end
        if n:sub(1, 6) == "mtls1~" then
          hashed = hashed + 1
        end
      end
    end
    helpers.say(("property: seed=%d pairs=%d distinct=%d equal=%d collisions=%d longest=%d hashed=%d"):format(
      SEED, PAIRS, distinct, equal, collisions, longest, hashed))
    assert.equal(0, collisions)
    assert.is_true(longest <= 512)
    assert.is_true(distinct > PAIRS / 2)
    assert.is_true(equal > PAIRS / 20)
    assert.is_true(hashed > 0)
  end)

  it("gives the names of real (cert, key) objects that build_name gives their identity", function()
    local pairs_ = {}
    for i, name in ipairs({ "alice", "bob", "carol", "tenant01" }) do
      local cert, key = helpers.cert(name), helpers.key(name)
      pairs_[i] = { cert = cert, key = key, identity = assert(mtls_pool.client_identity(cert, key)) }
    end
    local checked, stale = 0, 0
    local t = random_tuple()
    for _ = 1, PAIRS / 5 do
      -- mostly small changes to the last tuple, so that cached names are compared field by field
      t = rand(4) == 1 and random_tuple() or mutate(t)
      local pair = pairs_[rand(#pairs_)]
      set_target(t)
      local got, identified = name_for(target, pair.cert, pair.key, t.pool)
      local want = assert(build_name(target, target.ssl and pair.identity or nil, t.pool))
      checked = checked + 1
      if got ~= want or identified ~= (target.ssl == true) then
        stale = stale + 1
      end
    end
    helpers.say(("property: %d names of real (cert, key) objects, %d stale or wrong"):format(checked, stale))
    assert.equal(0, stale)
  end)
end)
