// Generates dist-lua/ from src/ with TypeScriptToLua, from scratch (so a removed module leaves
// no stale .lua behind), through the plugin that keeps comments and prints plain Lua
// (lua-plugin.ts); then checks the output uses no TypeScriptToLua runtime helpers (the generated
// Lua must stand on its own, like hand-written OpenResty Lua) and runs check-lua.
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import tstl from "typescript-to-lua";
import { checkLua } from "./check-lua.js";
import { readableLua } from "./lua-plugin.js";

const root = process.cwd();
const out = join(root, "dist-lua");

rmSync(out, { recursive: true, force: true });
const result = tstl.transpileProject(join(root, "tstl.json"), { luaPlugins: [{ plugin: readableLua }] });
if (result.diagnostics.length > 0) {
  const host = { getCanonicalFileName: (name: string) => name, getCurrentDirectory: () => root, getNewLine: () => "\n" };
  console.error(ts.formatDiagnosticsWithColorAndContext(result.diagnostics, host));
}
if (result.emitSkipped || result.diagnostics.some((d) => d.category === ts.DiagnosticCategory.Error)) {
  process.exit(1);
}

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
  console.error("build-lua: rewrite the TypeScript so that it compiles to plain Lua (README, \"Development\")");
  process.exit(1);
}
console.log(`build-lua: ${files.length} modules in dist-lua/, no TypeScriptToLua helpers`);
if (!checkLua(root)) {
  process.exit(1);
}
