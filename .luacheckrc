-- luacheck config: code runs inside OpenResty/ngx_lua; specs also see busted's globals.
std = "ngx_lua"

-- The shipped Lua is read and debugged by users: lines a reviewer can read. Specs hold long
-- literal inputs and expectations, so the rule is for dist-lua/ only.
max_line_length = false
files["dist-lua/"] = { max_line_length = 120 }

files["spec/"] = { std = "+busted" }
