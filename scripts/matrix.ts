// `npm run test:matrix`: the same scenarios (every busted spec, the reliability suite, the demo)
// in each runtime row: this machine's nginx, then containers of Debian 12, Debian 13 and Debian 13
// with an OpenResty-like LuaJIT (LUA52COMPAT). Images are built first (or found by their input
// hash); each row is `test.js --runtime=<row>` then `demo.js` with RUNTIME=<row>, their output
// streamed. Ends with one table: what each row read from inside nginx, and its counts. Exits
// non-zero when any row failed. A dockerd started here is stopped at the end, by pid.
import { readFileSync } from "node:fs";
import path from "node:path";
import { prepareImages } from "./runtime/container.js";
import { ROWS, type Row } from "./runtime/images.js";
import { spawnTracked } from "./runtime/processes.js";
import { parseProbe, type Probe } from "./runtime/probe.js";
import { cleanupAll } from "./runtime/registry.js";
import { REPO } from "./runtime/runtime.js";

const ROW_TIMEOUT_MS = 20 * 60_000;
const CONTAINER_ROWS = Object.keys(ROWS) as Row[];

interface Result {
  row: string;
  probe?: Probe;
  passed: number;
  failed: number;
  skipped: number;
  demo: string;
  seconds: number;
}

/** Runs a compiled script of ours; its output goes to ours; resolves with status and output. */
async function run(script: string, args: string[], env: Record<string, string>): Promise<{ ok: boolean; output: string }> {
  let output = "";
  const { handle } = spawnTracked(process.execPath, [path.join(REPO, ".build", "scripts", script), ...args], {
    cwd: REPO,
    env,
    gracefulSignal: "SIGINT", // the runners then stop what they started
    label: `${script} ${args.join(" ")}`.trim(),
    onOutput: (chunk) => {
      process.stdout.write(chunk);
      output += chunk.toString("utf8");
    },
  });
  const timer = setTimeout(() => {
    process.stdout.write(`\nmatrix: ${script} over ${ROW_TIMEOUT_MS / 60_000} min, stopping it\n`);
    void handle.stop();
  }, ROW_TIMEOUT_MS);
  const { code } = await handle.exited;
  clearTimeout(timer);
  return { ok: code === 0, output };
}

async function runRow(runtime: string, label: string): Promise<Result> {
  const started = Date.now();
  console.log(`\n=== matrix row ${label}: npm test, then npm run demo, with RUNTIME=${runtime}\n`);
  const tests = await run("test.js", [`--runtime=${runtime}`], {});
  const counts = /^tests: (\d+) passed, (\d+) failed, (\d+) skipped$/m.exec(tests.output);
  const demo = await run("demo.js", [], { RUNTIME: runtime });
  const demoOk = demo.ok && /every process stopped/.test(demo.output);
  return {
    row: label,
    ...(parseProbe(tests.output) ? { probe: parseProbe(tests.output)! } : {}),
    passed: Number(counts?.[1] ?? 0),
    // no counts line (the runner died) counts as a failure too
    failed: Number(counts?.[2] ?? 0) + (counts && (tests.ok || Number(counts[2]) > 0) ? 0 : 1),
    skipped: Number(counts?.[3] ?? 0),
    demo: demoOk ? "ok" : "FAILED",
    seconds: (Date.now() - started) / 1000,
  };
}

function table(results: Result[]): string {
  const header = ["row", "nginx", "ngx_lua", "LuaJIT", "LUA52COMPAT", "OpenSSL", "passed", "failed", "skipped", "demo", "time"];
  const rows = results.map((r) => [
    r.row, r.probe?.nginx ?? "?", r.probe?.ngxLua ?? "?", r.probe?.jit ?? "?", r.probe?.lua52compat ?? "?",
    r.probe?.openssl ?? "?", String(r.passed), String(r.failed), String(r.skipped), r.demo, `${r.seconds.toFixed(0)} s`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

async function main(): Promise<number> {
  const started = Date.now();
  const debian = readFileSync("/etc/debian_version", "utf8").trim();
  const results: Result[] = [];
  let problem: string | undefined;
  try {
    console.log("=== matrix: images");
    const imagesStarted = Date.now();
    await prepareImages(CONTAINER_ROWS, console.log);
    console.log(`matrix: images ready in ${((Date.now() - imagesStarted) / 1000).toFixed(0)} s`);
    results.push(await runRow("local", `local (Debian ${debian})`));
    for (const row of CONTAINER_ROWS) results.push(await runRow(`container:${row}`, `container ${row}`));
  } catch (err) {
    problem = err instanceof Error ? err.message : String(err);
  } finally {
    const { leftovers } = await cleanupAll();
    if (leftovers.length > 0) problem ??= `still running after cleanup: ${leftovers.join(", ")}`;
  }
  console.log(`\n=== matrix (${((Date.now() - started) / 1000).toFixed(0)} s)\n${table(results)}`);
  const failedRows = results.filter((r) => r.failed > 0 || r.demo !== "ok").map((r) => r.row);
  if (problem !== undefined) console.log(`matrix: ${problem}`);
  console.log(failedRows.length === 0 && problem === undefined
    ? `matrix: all ${results.length} rows passed`
    : `matrix: FAILED${failedRows.length > 0 ? `: ${failedRows.join(", ")}` : ""}`);
  return failedRows.length === 0 && problem === undefined ? 0 : 1;
}

process.exitCode = await main();
