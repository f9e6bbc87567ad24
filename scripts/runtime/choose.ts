// RUNTIME / --runtime: local | container[:row] | auto. `auto` takes this machine's nginx when it
// has one with ngx_lua, else a Docker engine (reachable, or startable as root), and says why.
import { containerRuntime, parseRow } from "./container.js";
import { cannotStartWhy, findEngine } from "./engine.js";
import { findLocalNginx, localRuntime } from "./local.js";
import { setRuntime, UsageError, type Runtime } from "./runtime.js";

export const RUNTIME_USAGE = "local | container[:bookworm|trixie|trixie-lua52compat] | auto";

export async function chooseRuntime(choice: string, log: (line: string) => void = console.log): Promise<Runtime> {
  const [kind, row] = choice.split(":", 2) as [string, string | undefined];
  let rt: Runtime;
  if (kind === "local") {
    const nginx = findLocalNginx();
    log(`runtime: local (requested), ${nginx.bin}`);
    rt = localRuntime(nginx);
  } else if (kind === "container") {
    const r = parseRow(row ?? "bookworm");
    log(`runtime: container ${r} (requested)`);
    rt = await containerRuntime(r, log);
  } else if (kind === "auto" && row === undefined) {
    let localWhy: string;
    try {
      const nginx = findLocalNginx();
      log(`runtime: local, auto: ${nginx.bin} has ngx_lua (RUNTIME=container for the container runtime)`);
      rt = localRuntime(nginx);
      setRuntime(rt);
      return rt;
    } catch (err) {
      localWhy = err instanceof Error ? err.message : String(err);
    }
    const engine = await findEngine();
    const cannot = engine.engine ? undefined : cannotStartWhy();
    if (cannot !== undefined) throw new UsageError(`runtime auto: no local runtime (${localWhy}) and no container runtime (${engine.why}; ${cannot})`);
    log(`runtime: container bookworm, auto: no local nginx (${localWhy}); ${engine.engine ? engine.why : "dockerd can be started"}`);
    rt = await containerRuntime("bookworm", log);
  } else {
    throw new UsageError(`unknown runtime "${choice}"; use ${RUNTIME_USAGE}`);
  }
  setRuntime(rt);
  return rt;
}
