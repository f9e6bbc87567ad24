-- Runs busted inside this nginx worker, the way resty-cli runs Lua: from a 0-delay timer started
-- by init_worker_by_lua (so specs get cosockets, ngx.sleep, shared dicts, ...), then ends the
-- process with busted's verdict as exit status. Used with `master_process off`.
--
--   init_worker_by_lua_block { require("support.run_busted")({ "-o", "plainTerminal", "spec" }) }

local function run(premature, args)
  if premature then
    return
  end
  -- stdout is a pipe to the Node runner: line-buffer it so output streams and survives a kill
  io.stdout:setvbuf("line")
  io.stdout:write(string.format("ngx_lua_version=%d nginx=%d jit=%s\n",
    ngx.config.ngx_lua_version, ngx.config.nginx_version, jit and jit.version or "none"))

  -- lfs.so sets the global `lfs` when loaded; load it with ngx_lua's _G write guard lifted so
  -- that the guard stays on (and meaningful) for the specs themselves
  local guard = getmetatable(_G)
  setmetatable(_G, nil)
  require("lfs")
  setmetatable(_G, guard)

  -- busted prefixes package.path with ./src/?.lua... unless given --lpath (which cannot be empty):
  -- re-prefix the entries that are already first, a no-op. Same for cpath and ./csrc/?.so.
  local argv = {
    [0] = "busted",
    "--lpath=" .. package.path:match("^[^;]*"),
    "--cpath=" .. package.cpath:match("^[^;]*"),
  }
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
  end
  rawset(_G, "arg", argv)

  -- standalone = false: busted then reads the spec files/dirs from `arg`. On success it returns;
  -- on failure it calls os.exit(1) itself (or error(), which pcall turns into false).
  local ok, err = pcall(require("busted.runner"), { standalone = false })
  if not ok and err ~= nil then
    io.stderr:write("busted: ", tostring(err), "\n")
  end
  os.exit(ok and 0 or 1, true)
end

-- Any error before busted's verdict (a module missing in this runtime, say) ends the process
-- too: a timer that dies leaves nginx idling until the runner's time limit.
local function run_or_exit(premature, args)
  local ok, err = xpcall(run, debug.traceback, premature, args)
  if not ok then
    io.stderr:write("run_busted: ", tostring(err), "\n")
    os.exit(1, true)
  end
end

return function(args)
  local ok, err = ngx.timer.at(0, run_or_exit, args)
  if not ok then
    io.stderr:write("cannot start the busted timer: ", err, "\n")
    os.exit(1, true)
  end
end
