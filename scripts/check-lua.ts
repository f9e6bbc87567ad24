// Checks dist-lua/ against src/ for what TypeScriptToLua does not promise by itself:
// - every comment of a src/ module reaches its Lua file, in the same order (a reader of dist-lua/
//   gets the why-comments), and the module's header comment opens both files;
// - comments say nil, never undefined (the Lua reader's word);
// - the version is one fact: resty.mtls_pool's _VERSION (which opm reads through dist.ini's
//   main_module), package.json and the rockspec.
// Run by `npm run build` (so by .ci/run) after generating dist-lua/; alone, against the
// committed dist-lua/, as `node .build/scripts/check-lua.js`.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import { luaCommentLines, sourceComments } from "./lua-comments.js";

function tsModules(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return tsModules(path);
    return path.endsWith(".ts") && !path.endsWith(".d.ts") ? [path] : [];
  });
}

/** Where a line of Lua has its `--` comment (outside string literals), or -1. */
function commentStart(line: string): number {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i];
    if (quote !== undefined) {
      if (c === "\\") i += 1;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === "-" && line[i + 1] === "-") {
      return i;
    }
  }
  return -1;
}

/** Whitespace-collapsed text, so that a comment matches whatever indentation it was printed at. */
function squash(lines: string[]): string {
  return lines.join(" ").replace(/\s+/g, " ").trim();
}

/**
 * The spans of a source's type-only declarations (interfaces, type aliases, `declare`), comments
 * included: they describe TypeScript types, which have no Lua, so their comments have no Lua to
 * sit next to.
 */
function typeOnlySpans(path: string, text: string): [number, number][] {
  const spans: [number, number][] = [];
  const visit = (node: ts.Node): void => {
    const ambient = ts.canHaveModifiers(node) && ts.getModifiers(node)?.some((m) => m.kind === ts.SyntaxKind.DeclareKeyword);
    if (ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node) || ambient) {
      spans.push([node.getFullStart(), node.getEnd()]);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true));
  return spans;
}

interface Counted {
  comments: number;
  typeOnly: number;
}

/** Problems with one module's comments; `counted` gets how many comments were found in place. */
function checkComments(root: string, source: string, counted: Counted): string[] {
  const lua = join(root, "dist-lua", relative(join(root, "src"), source).replace(/\.ts$/, ".lua"));
  const where = relative(root, source);
  if (!existsSync(lua)) return [`${where}: no ${relative(root, lua)}`];
  const luaText = readFileSync(lua, "utf8");
  const luaLines = luaText.split("\n");
  // The Lua file's comments as one string, each line's text after its "--".
  const luaComments = squash(luaLines.flatMap((line) => {
    const at = commentStart(line);
    return at < 0 ? [] : [line.slice(at + 2)];
  }));
  const sourceText = readFileSync(source, "utf8");
  const comments = sourceComments(sourceText);
  const typeOnly = typeOnlySpans(source, sourceText);
  const problems: string[] = [];
  if (comments.length === 0 || !sourceText.startsWith("/**")) {
    problems.push(`${where}:1: no module header: start the file with a /** */ comment saying what the module is for`);
  } else if (luaLines[0] !== "--" + luaCommentLines(comments[0].text)[0]) {
    problems.push(`${relative(root, lua)}:1: does not start with the module header of ${where}`);
  }
  let from = 0;
  for (const comment of comments) {
    const lines = luaCommentLines(comment.text);
    const text = squash(lines);
    const shown = JSON.stringify(text.replace(/^- /, ""));
    if (/\bundefined\b/.test(text)) {
      problems.push(`${where}:${comment.line}: say nil, not undefined, in comments: ${shown}`);
    }
    if (typeOnly.some(([start, end]) => comment.pos >= start && comment.pos < end)) {
      counted.typeOnly += 1;
      continue;
    }
    const at = luaComments.indexOf(text, from);
    if (at < 0) {
      const elsewhere = luaComments.includes(text) ? " in place (it is printed elsewhere)" : "";
      problems.push(`${where}:${comment.line}: comment missing from ${relative(root, lua)}${elsewhere}: ${shown}`);
      continue;
    }
    counted.comments += 1;
    from = at + text.length;
  }
  return problems;
}

/** Problems with the version: one value in the module, package.json, the rockspec and dist.ini. */
function checkVersion(root: string): string[] {
  const versions = new Map<string, string | undefined>();
  const module = readFileSync(join(root, "dist-lua", "resty", "mtls_pool.lua"), "utf8");
  versions.set("dist-lua/resty/mtls_pool.lua _VERSION", /_VERSION = "([^"]+)"/.exec(module)?.[1]);
  versions.set("package.json version", JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version);
  const rockspecs = readdirSync(root).filter((name) => name.endsWith(".rockspec"));
  if (rockspecs.length !== 1) return [`expected one rockspec, found ${rockspecs.length}`];
  const rockspec = readFileSync(join(root, rockspecs[0]), "utf8");
  versions.set(`${rockspecs[0]} version`, /^version = "([^"]+)-\d+"/m.exec(rockspec)?.[1]);
  versions.set(`${rockspecs[0]} file name`, /-([^-]+)-\d+\.rockspec$/.exec(rockspecs[0])?.[1]);
  versions.set(`${rockspecs[0]} source tag`, /^\s*tag = "v([^"]+)"/m.exec(rockspec)?.[1]);
  const wanted = versions.get("package.json version");
  const problems = [...versions]
    .filter(([, version]) => version !== wanted)
    .map(([where, version]) => `${where} is ${version ?? "missing"}, package.json says ${wanted}`);
  // opm has no version key: it reads _VERSION from the main module.
  const distIni = readFileSync(join(root, "dist.ini"), "utf8");
  if (/^main_module = (\S+)/m.exec(distIni)?.[1] !== "dist-lua/resty/mtls_pool.lua") {
    problems.push("dist.ini: main_module must be dist-lua/resty/mtls_pool.lua, where opm reads the version");
  }
  return problems;
}

/** Runs every check, prints what it found, and says whether all passed. */
export function checkLua(root: string): boolean {
  const modules = tsModules(join(root, "src"));
  const counted = { comments: 0, typeOnly: 0 };
  const problems = [
    ...modules.flatMap((source) => checkComments(root, source, counted)),
    ...checkVersion(root),
  ];
  for (const problem of problems) console.error(`check-lua: ${problem}`);
  if (problems.length > 0) {
    console.error(`check-lua: ${problems.length} problem(s) (README, "Development": scripts/lua-plugin.ts carries` +
      " the comments above a statement or after it on its line)");
    return false;
  }
  const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
  console.log(`check-lua: ${counted.comments} comments of ${modules.length} src/ modules all in dist-lua/, in order, ` +
    `headers first, nil not undefined (${counted.typeOnly} on TypeScript-only types); version ${version} everywhere`);
  return true;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exit(checkLua(process.cwd()) ? 0 : 1);
}
