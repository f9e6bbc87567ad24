// Generates dist-lua/ from src/ with TypeScriptToLua, from scratch (so a removed module leaves
// no stale .lua behind), then checks the output uses no TypeScriptToLua runtime helpers: the
// generated Lua must stand on its own, like hand-written OpenResty Lua.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

const root = process.cwd();
const out = join(root, "dist-lua");

rmSync(out, { recursive: true, force: true });
execFileSync(join(root, "node_modules", ".bin", "tstl"), ["-p", "tstl.json"], { stdio: "inherit" });

function luaFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? luaFiles(path) : path.endsWith(".lua") ? [path] : [];
  });
}

const files = luaFiles(out);
const offenders = files.filter((file) => /lualib_bundle|__TS__/.test(readFileSync(file, "utf8")) || file.endsWith("lualib_bundle.lua"));
if (offenders.length > 0) {
  console.error(`build-lua: TypeScriptToLua runtime helpers in: ${offenders.join(", ")}`);
  console.error("build-lua: rewrite the TypeScript so that it compiles to plain Lua (see CONTRIBUTING in README)");
  process.exit(1);
}
console.log(`build-lua: ${files.length} modules in dist-lua/, no TypeScriptToLua helpers`);
