-- A seeded, stateful random test against the real resumable mTLS server (TLS 1.2, session cache,
-- client certificate optional): client objects in 4 slots are connected as one of 4 identities or
-- none, with or without an explicit pool, with or without a session kept from an earlier connect
-- (of any identity), directly or through tinyproxy; requests, set_keepalive, close, and connects
-- that must be refused followed by a request on the same object, drawn at random.
-- The property: every answered request was seen by the server as the identity of the connect
-- that preceded it on that object (none: an empty DN), and a request after a refused connect is
-- never answered. A violation is replayed in isolation and shrunk to a short sequence.
--
--   MTLS_POOL_SEED=<n> MTLS_POOL_OPS=<n> node .build/scripts/test.js spec/stateful_random_spec.lua
local helpers = require "support.helpers"
local raw_http = require "support.raw_http"
local connect = require "resty.mtls_pool.http_connect"

local env = helpers.env
local SEED = tonumber(env("MTLS_POOL_SEED")) or (ngx.time() % 1000000 + 1)
local OPS = tonumber(env("MTLS_POOL_OPS")) or 20000
local PORT = tonumber(env("RESUME_SERVER_PORT"))
local PROXY = "http://127.0.0.1:" .. tostring(env("PROXY_PORT"))
local IDENTITIES = { "alice", "bob", "carol", "tenant01" }
local SLOTS = 4
local MAX_SHRUNK = 6 -- violations replayed and shrunk per run; the rest are only counted

local clients = {}
for _, name in ipairs(IDENTITIES) do
  clients[name] = { cert = helpers.cert(name), key = helpers.key(name) }
end

local REFUSALS = {
  mismatch = function(o) o.ssl_client_cert, o.ssl_client_priv_key = clients.alice.cert, clients.bob.key end,
  pem_key = function(o) o.ssl_client_cert, o.ssl_client_priv_key = clients.bob.cert, helpers.pem("bob.key") end,
  no_key = function(o) o.ssl_client_cert, o.ssl_client_priv_key = clients.carol.cert, nil end,
  bad_port = function(o) o.port = 70000 end,
  bad_pool = function(o) o.pool = 42 end,
}
local REFUSAL_NAMES = { "mismatch", "pem_key", "no_key", "bad_port", "bad_pool" }

-- Draws `count` operations; op.id numbers them, and a connect's session refers to the id of the
-- earlier connect that returned it.
local function generate(rand, count)
  local ops, connects = {}, {}
  for id = 1, count do
    local roll = rand(100)
    local op = { id = id, slot = rand(SLOTS) }
    if roll <= 8 then
      op.kind = "new"
    elseif roll <= 40 then
      op.kind = "connect"
      local who = rand(#IDENTITIES + 1)
      op.who = IDENTITIES[who] -- nil: no client certificate
      op.pool = rand(2) == 1
      op.proxy = rand(4) == 1
      if #connects > 0 and rand(3) == 1 then
        op.session = connects[rand(#connects)]
      end
      connects[#connects + 1] = id
    elseif roll <= 68 then
      op.kind = "request"
    elseif roll <= 80 then
      op.kind = "keepalive"
    elseif roll <= 90 then
      op.kind = "close"
    else
      op.kind = "refused"
      op.refusal = REFUSAL_NAMES[rand(#REFUSAL_NAMES)]
    end
    ops[id] = op
  end
  return ops
end

local function describe_op(op)
  if op.kind == "connect" then
    return ("#%d slot%d connect %s%s%s%s"):format(op.id, op.slot, op.who or "none", op.pool and " pool" or "",
      op.session and (" session#" .. op.session) or "", op.proxy and " proxy" or "")
  elseif op.kind == "refused" then
    return ("#%d slot%d refused connect (%s) + request"):format(op.id, op.slot, op.refusal)
  end
  return ("#%d slot%d %s"):format(op.id, op.slot, op.kind)
end

local run_number = 0

-- Runs `ops` against the server in a world of their own: fresh client objects, and an SNI name
-- and pool namespace no other run uses, so no pooled connection or session crosses runs.
-- Returns the stats and the violations, each { op = <the request's op>, text = ... }.
local function run(ops)
  run_number = run_number + 1
  local world = ("r%d-%d"):format(run_number, ngx.worker.pid())
  local server_name = world .. ".test"
  local slots, sessions = {}, {}
  local stats = { ops = 0, connects = 0, fresh = 0, resumed = 0, answered = 0, refused = 0, unexpected = 0 }
  local violations = {}
  local function new_slot(i)
    local sock = ngx.socket.tcp()
    sock:settimeouts(5000, 5000, 5000)
    slots[i] = { httpc = { sock = sock }, state = "new" }
  end
  for i = 1, SLOTS do
    new_slot(i)
  end
  local function violation(op, text)
    violations[#violations + 1] = { op = op, text = text, cause = slots[op.slot].last }
  end
  local function request(op, slot)
    local res = raw_http.request(slot.httpc)
    if not res then
      if slot.state == "connected" then
        stats.unexpected = stats.unexpected + 1
      end
      slot.state = "broken"
      return
    end
    stats.answered = stats.answered + 1
    if res.resumed == "r" then
      stats.resumed = stats.resumed + 1
    end
    if slot.state ~= "connected" then
      violation(op, ("answered after a %s connect, as '%s'"):format(slot.state, tostring(res.dn)))
    elseif res.dn ~= (slot.who and ("CN=" .. slot.who) or "") then
      violation(op, ("connected as %s, the server saw '%s'"):format(slot.who or "none", tostring(res.dn)))
    end
  end
  for _, op in ipairs(ops) do
    stats.ops = stats.ops + 1
    local slot = slots[op.slot]
    if op.kind == "new" then
      slot.httpc.sock:close()
      new_slot(op.slot)
    elseif op.kind == "connect" or op.kind == "refused" then
      local o = { scheme = "https", host = "127.0.0.1", port = PORT, ssl_server_name = server_name,
                  ssl_verify = false }
      if op.who then
        o.ssl_client_cert, o.ssl_client_priv_key = clients[op.who].cert, clients[op.who].key
      end
      if op.pool then
        o.pool = "app-" .. world
      end
      if op.proxy then
        o.proxy_opts = { https_proxy = PROXY }
      end
      if op.session then
        o.ssl_reused_session = sessions[op.session]
      end
      if op.kind == "refused" then
        REFUSALS[op.refusal](o)
      end
      local ok, err, session = connect(slot.httpc, o)
      slot.last = { op = op, used_session = o.ssl_reused_session ~= nil,
                    reused = ok and (slot.httpc.sock:getreusedtimes() or 0) > 0 }
      if op.kind == "refused" then
        if ok then
          violation(op, "connect was not refused")
        end
        stats.refused = stats.refused + 1
        slot.state = "refused"
        request(op, slot)
      elseif ok then
        stats.connects = stats.connects + 1
        if session then
          stats.fresh = stats.fresh + 1
          sessions[op.id] = session
        end
        slot.state, slot.who = "connected", op.who
      else
        stats.unexpected = stats.unexpected + 1
        ngx.log(ngx.WARN, "stateful: unexpected connect error: ", err)
        slot.state = "failed"
      end
    elseif op.kind == "request" then
      request(op, slot)
    elseif op.kind == "keepalive" then
      slot.httpc.sock:setkeepalive(60000, 8)
      slot.state = "idle"
    else
      slot.httpc.sock:close()
      slot.state = "closed"
    end
  end
  for i = 1, SLOTS do
    slots[i].httpc.sock:close()
  end
  return stats, violations
end

-- How the connect before a violation got its connection, to shrink one violation of each kind:
-- refused connect, pooled connection (named by an explicit pool or by us), resumed session on a
-- fresh one, or a fresh one without a session (what is left on the socket object).
local function kind_of(v)
  local cause = v.cause
  if not cause then
    return "no connect"
  elseif cause.op.kind == "refused" then
    return "refused connect"
  elseif cause.reused then
    return cause.op.pool and "explicit pool" or "pool name"
  elseif cause.used_session then
    return "session"
  end
  return "socket object"
end

-- Whether `ops`, in a world of their own, show a violation of kind `kind`.
local function fails(ops, kind)
  local _, violations = run(ops)
  for _, v in ipairs(violations) do
    if kind_of(v) == kind then
      return true
    end
  end
  return false
end

-- The shortest sequence greedy removal finds that still shows a violation of the kind of `v` in a
-- world of its own, starting from the last `window` ops up to v's (nil: no window reproduces it).
local function shrink(ops, v)
  local op, kind = v.op, kind_of(v)
  for _, window in ipairs({ 12, 40, 150, 600 }) do
    local first = math.max(1, op.id - window)
    local sequence = {}
    for i = first, op.id do
      sequence[#sequence + 1] = ops[i]
    end
    if fails(sequence, kind) then
      local changed = true
      while changed do
        changed = false
        for i = #sequence, 1, -1 do
          local candidate = {}
          for j, o in ipairs(sequence) do
            if j ~= i then
              candidate[#candidate + 1] = o
            end
          end
          if fails(candidate, kind) then
            sequence, changed = candidate, true
          end
        end
      end
      return sequence
    end
  end
  return nil
end

describe("stateful random operations against the real server", function()
  it("never let a request reach the server as another identity", function()
    local started = ngx.now()
    local ops = generate(helpers.xorshift32(SEED), OPS)
    local stats, violations = run(ops)
    ngx.update_time()
    helpers.say(("stateful: seed=%d ops=%d connects=%d fresh handshakes=%d answered=%d resumed=%d refused=%d "
      .. "unexpected errors=%d violations=%d (%.1f s; replay: MTLS_POOL_SEED=%d)"):format(SEED, stats.ops,
      stats.connects, stats.fresh, stats.answered, stats.resumed, stats.refused, stats.unexpected, #violations,
      ngx.now() - started, SEED))
    local shown, kinds, picked = {}, {}, {}
    for _, v in ipairs(violations) do
      local kind = kind_of(v)
      kinds[kind] = (kinds[kind] or 0) + 1
      if kinds[kind] == 1 and #picked < MAX_SHRUNK then
        picked[#picked + 1] = v
      end
    end
    for _, v in ipairs(picked) do
      local sequence = shrink(ops, v)
      local lines = {}
      for _, op in ipairs(sequence or {}) do
        lines[#lines + 1] = describe_op(op)
      end
      local _, replayed = run(sequence or {})
      shown[#shown + 1] = ("violation (%s, %d like it) at %s: %s\n  shrunk to %d ops: %s\n  replayed: %s"):format(
        kind_of(v), kinds[kind_of(v)], describe_op(v.op), v.text, #lines, sequence and table.concat(lines, "; ") or "(no window reproduces it)",
        replayed[1] and replayed[1].text or "-")
    end
    if #shown > 0 then
      helpers.say(table.concat(shown, "\n"))
    end
    assert.equal(0, #violations, "requests reached the server as another identity: see above")
    -- the run must have exercised what it checks
    assert.is_true(stats.answered >= OPS / 10, "too few answered requests: " .. stats.answered)
    assert.is_true(stats.resumed > 0 or stats.fresh == 0, "no session was ever resumed")
    assert.equal(0, stats.unexpected, "unexpected errors (see error.log)")
  end)
end)
