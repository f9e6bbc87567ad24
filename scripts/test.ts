// Test runner: certificates, fixture servers, then busted inside a real nginx worker.
//
//   node .build/scripts/test.js [--runtime=<runtime>] [--no-suites|--only-suites] [spec files or dirs...]
//
// <runtime> (or RUNTIME=): local | container[:bookworm|trixie|trixie-lua52compat] | auto (default).
// First line after the runtime's: what nginx reports from inside a worker (scripts/runtime/probe.ts).
//
// Without spec arguments, the Node suites (scripts/suites/: reliability under load and faults)
// run after busted, their checks count in the totals, and a summary block precedes the last line.
// Ends with exactly one line `tests: <passed> passed, <failed> failed, <skipped> skipped` and a
// non-zero exit status when anything failed, busted printed no summary, or nginx crashed/timed out.
import { existsSync } from "node:fs";
import path from "node:path";
import { makeCerts } from "./certs.js";
import { startFixtures, type Fixtures } from "./fixtures.js";
import { runReliability } from "./suites/reliability.js";
import { chooseRuntime } from "./runtime/choose.js";
import { startNginx } from "./runtime/nginx.js";
import { describeProbe, probeNginx } from "./runtime/probe.js";
import { cleanupAll, keepTmp, makeTempDir } from "./runtime/registry.js";
import { OPTIONAL_LIBS, REPO, UsageError } from "./runtime/runtime.js";

const TIME_LIMIT_MS = 10 * 60 * 1000;
// Seeds and sizes of the randomised specs (stateful_random_spec.lua, pool_name_property_spec.lua).
const SPEC_SETTINGS = ["MTLS_POOL_SEED", "MTLS_POOL_OPS", "PROPERTY_SEED", "PROPERTY_PAIRS"];

interface Args {
  runtime: string;
  specs: string[];
  busted: boolean;
  suites: boolean;
}

function parseArgs(argv: string[]): Args {
  let runtime = process.env.RUNTIME ?? "auto";
  const specs: string[] = [];
  let suites: boolean | undefined;
  let busted = true;
  for (const a of argv) {
    if (a.startsWith("--runtime=")) runtime = a.slice("--runtime=".length);
    else if (a === "--no-suites") suites = false;
    else if (a === "--only-suites") [suites, busted] = [true, false];
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}`);
    else {
      const abs = path.resolve(a);
      if (!existsSync(abs)) throw new UsageError(`no such spec file or directory: ${a}`);
      const rel = path.relative(REPO, abs);
      specs.push(rel.startsWith("..") ? abs : rel || ".");
    }
  }
  return { runtime, specs: specs.length > 0 ? specs : ["spec"], busted, suites: suites ?? specs.length === 0 };
}

/** A Lua string literal for any text (nginx's *_by_lua_block parser understands Lua strings). */
function luaString(s: string): string {
  const escaped = s
    .replace(/[\\"]/g, "\\$&")
    .replace(/[\x00-\x1f\x7f]/g, (c) => `\\${c.charCodeAt(0).toString().padStart(3, "0")}`);
  return `"${escaped}"`;
}

interface Summary {
  passed: number;
  failed: number;
  pending: number;
}

/** busted's last "N successes / N failures / N errors / N pending : T seconds" line, if any. */
function parseSummary(output: string): Summary | undefined {
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const re = /^(\d+) success(?:es)? \/ (\d+) failures? \/ (\d+) errors? \/ (\d+) pending : [\d.]+ seconds/gm;
  let summary: Summary | undefined;
  for (const m of plain.matchAll(re)) {
    summary = { passed: Number(m[1]), failed: Number(m[2]) + Number(m[3]), pending: Number(m[4]) };
  }
  return summary;
}

/** Runs busted in a single-process nginx; returns busted's summary and what went wrong, if anything. */
async function runBusted(
  specs: string[],
  fixtures: Fixtures,
): Promise<{ summary?: Summary; problem?: string; output: string }> {
  const prefix = makeTempDir("busted");
  const errorLog = path.join(prefix, "logs", "error.log");
  const libs = OPTIONAL_LIBS.flatMap((name) => {
    const dir = process.env[name];
    return dir ? [[name, dir] as const] : [];
  });
  const settings = SPEC_SETTINGS.flatMap((name) => (process.env[name] ? [[name, process.env[name]] as const] : []));
  const env: Record<string, string> = {
    ...fixtures.env,
    ...Object.fromEntries(settings),
    ...Object.fromEntries(libs),
    REPO_ROOT: REPO,
    NGINX_ERROR_LOG: errorLog,
  };
  const luaPath = [
    `${REPO}/dist-lua/?.lua`,
    `${REPO}/dist-lua/?/init.lua`,
    `${REPO}/spec/?.lua`,
    ...libs.flatMap(([, dir]) => [`${dir}/?.lua`, `${dir}/?/init.lua`]),
  ].join(";");
  const ci = process.env.CI === "true" || process.env.CI === "1";
  const output = ci || !process.stdout.isTTY ? "plainTerminal" : "utfTerminal";
  const bustedArgs = ["-o", output, ...specs].map(luaString).join(", ");
  const body = `
  lua_package_path "${luaPath};;";
  lua_ssl_trusted_certificate ${fixtures.certs}/ca.crt;
  lua_ssl_verify_depth 3;
  lua_shared_dict test 1m;
  init_worker_by_lua_block { require("support.run_busted")({ ${bustedArgs} }) }`;

  let text = "";
  const nginx = await startNginx({
    prefix,
    body,
    masterProcess: false,
    // Specs assert on their own ngx.log(ngx.DEBUG) lines. Debian's nginx is built --with-debug, so
    // this also logs nginx/ngx_lua internals (~0.5 MB per run); OpenResty's default build does not.
    errorLogLevel: "debug",
    env,
    cwd: REPO,
    onOutput: (chunk) => {
      process.stdout.write(chunk);
      text += chunk.toString("utf8");
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), TIME_LIMIT_MS)));
  const result = await Promise.race([nginx.exited, timedOut]);
  clearTimeout(timer);
  if (result === "timeout") await nginx.stop();

  const summary = parseSummary(text);
  const problem =
    result === "timeout"
      ? `busted did not finish within ${TIME_LIMIT_MS / 1000} s`
      : result.code !== 0 && (summary === undefined || summary.failed === 0)
        ? `nginx exited with ${result.signal ?? `status ${String(result.code)}`}`
        : summary === undefined
          ? "busted printed no summary line"
          : undefined;
  if (problem !== undefined) {
    const lines = nginx.readErrorLog().trimEnd().split("\n").filter((line) => !line.includes("[debug]"));
    console.log(`\n--- ${errorLog} (tail, without debug lines; KEEP_TMP=1 keeps it):\n${lines.slice(-30).join("\n")}`);
  }
  return { ...(summary ? { summary } : {}), ...(problem ? { problem } : {}), output: text };
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(err.message);
    return 2;
  }

  let summary: Summary | undefined;
  let problem: string | undefined;
  let fixtures: Fixtures | undefined;
  const suites = { passed: 0, failed: 0, skipped: 0 };
  const report: string[] = [];
  try {
    await chooseRuntime(args.runtime);
    console.log(describeProbe(await probeNginx()));
    const certs = await makeCerts(makeTempDir("certs"));
    fixtures = await startFixtures(certs);
    if (args.busted) {
      const busted = await runBusted(args.specs, fixtures);
      ({ summary, problem } = busted);
      // what the reliability specs printed
      const lines = busted.output.replace(/\x1b\[[0-9;]*m/g, "").split("\n");
      report.push(...lines.flatMap((line) => /(?:attack \d|bad input:|verification failures:).*/.exec(line)?.[0] ?? [])
        .map((line) => `specs     ${line}`));
    } else {
      summary = { passed: 0, failed: 0, pending: 0 };
    }
    if (args.suites) {
      await fixtures.stop(); // idle during the suites: give their CPU back
      fixtures = undefined;
      console.log("\nreliability suite (scripts/suites/reliability.ts)");
      const started = Date.now();
      const result = await runReliability({ certs });
      suites.passed += result.passed;
      suites.failed += result.failed;
      suites.skipped += result.skipped;
      report.push(...result.summary, `time      ${((Date.now() - started) / 1000).toFixed(1)} s for the reliability suite`);
    }
  } catch (err) {
    problem = err instanceof Error ? err.message : String(err);
  } finally {
    await fixtures?.stop();
    const { leftovers, dirs } = await cleanupAll();
    if (keepTmp) console.log(`KEEP_TMP=1: kept ${dirs.join(" ")}`);
    if (leftovers.length > 0) problem ??= `still running after cleanup: ${leftovers.join(", ")}`;
  }

  if (report.length > 0) console.log(`\n=== reliability summary\n${report.join("\n")}\n`);
  if (problem !== undefined) console.log(`harness failure (counted as one failed test): ${problem}`);
  const passed = (summary?.passed ?? 0) + suites.passed;
  const failed = (summary?.failed ?? 0) + suites.failed + (problem !== undefined ? 1 : 0);
  console.log(`tests: ${passed} passed, ${failed} failed, ${(summary?.pending ?? 0) + suites.skipped} skipped`);
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
