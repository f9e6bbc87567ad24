// The one wrk runner (the reliability suite and the bench): wrk runs on this machine in every
// runtime, registered like any process; `stopWhen`, polled, ends it early with SIGINT, on which
// wrk stops its threads and reports as at the end of its duration.
import { sleep, spawnTracked } from "./processes.js";

export interface WrkRun {
  /** wrk's arguments, e.g. ["-t2", "-c16", "-d10s", "--latency", url] */
  args: string[];
  stopWhen?: () => Promise<boolean>;
  pollMs?: number;
}

/** wrk's whole output; rejects when wrk fails to start or exits non-zero. */
export async function runWrk(run: WrkRun): Promise<string> {
  let out = "";
  let spawned;
  try {
    spawned = spawnTracked("wrk", run.args, {
      cwd: process.cwd(),
      gracefulSignal: "SIGINT",
      label: "wrk",
      onOutput: (chunk) => (out += chunk.toString("utf8")),
    });
  } catch (err) {
    throw new Error(`cannot run wrk (apt-get install wrk): ${err instanceof Error ? err.message : String(err)}`);
  }
  const { handle } = spawned;
  let finished = false;
  const result = handle.exited.then((r) => {
    finished = true;
    return r;
  });
  if (run.stopWhen) {
    const stopWhen = run.stopWhen;
    void (async () => {
      while (!finished) {
        await sleep(run.pollMs ?? 200);
        if (finished) break;
        if (await stopWhen().catch(() => false)) {
          handle.signal("SIGINT");
          break;
        }
      }
    })();
  }
  const { code, signal } = await result;
  if (code !== 0) throw new Error(`wrk ${run.args.join(" ")} exited with ${signal ?? String(code)}:\n${out.slice(-2000)}`);
  return out;
}
