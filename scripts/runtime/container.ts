// Container runtime: nginx runs in an image of docker/Dockerfile (testcontainers), with the host's
// network (it listens on 127.0.0.1 of this machine) and this run's session dir, the repository
// and the optional upstream lib folders mounted at the same paths, so that every path in a
// config means the same inside and out. Each nginx is the container's PID 1: stopping nginx
// stops the container, and its workers cannot outlive it. Every container carries this run's
// label; all of them are removed by id at the end, on failure and on Ctrl-C too.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { ensureEngine } from "./engine.js";
import { ensureImage, ROWS, type Row } from "./images.js";
import { settlesWithin, stopEscalating } from "./processes.js";
import { register, sessionDir } from "./registry.js";
import { OPTIONAL_LIBS, REPO, UsageError, type Runtime } from "./runtime.js";

/** The line docker/entrypoint.sh prints: the container is up (its listeners are waited for next). */
const READY_LINE = "mtls-pool container: starting";
const START_TIMEOUT_MS = 60_000;

export function parseRow(name: string): Row {
  if (!(name in ROWS)) throw new UsageError(`unknown container row "${name}"; rows: ${Object.keys(ROWS).join(", ")}`);
  return name as Row;
}

/**
 * The engine (started if need be), then the images of `rows` (built unless cached; the rows of
 * one Debian suite in turn, the suites side by side). Returns each row's image tag.
 */
export async function prepareImages(rows: Row[], log: (line: string) => void): Promise<Map<Row, string>> {
  const engine = await ensureEngine(log);
  // testcontainers: its reaper image cannot be pulled here (we remove our containers ourselves),
  // and with no bridge network it cannot work out the host's address. Children inherit these.
  Object.assign(process.env, {
    DOCKER_HOST: engine.host,
    TESTCONTAINERS_RYUK_DISABLED: "true",
    TESTCONTAINERS_HOST_OVERRIDE: "127.0.0.1",
  });
  const { getContainerRuntimeClient } = await import("testcontainers");
  const docker = (await getContainerRuntimeClient()).container.dockerode;
  const tags = new Map<Row, string>();
  const suites = [...new Set(rows.map((row) => ROWS[row].suite))];
  await Promise.all(suites.map(async (suite) => {
    for (const row of rows.filter((r) => ROWS[r].suite === suite)) tags.set(row, await ensureImage(docker, row, log));
  }));
  return tags;
}

/** Engine, image, then a Runtime whose launch() starts one container per nginx. */
export async function containerRuntime(row: Row, log: (line: string) => void): Promise<Runtime> {
  const image = (await prepareImages([row], log)).get(row)!;
  const { GenericContainer, Wait, getContainerRuntimeClient } = await import("testcontainers");
  const docker = (await getContainerRuntimeClient()).container.dockerode;

  const run = randomBytes(6).toString("hex");
  const label = { "mtls-pool.run": run };
  const ours = async (): Promise<string[]> =>
    (await docker.listContainers({ all: true, filters: { label: [`mtls-pool.run=${run}`] } })).map((c) => c.Id);
  const removeAll = async (): Promise<void> => {
    for (const id of await ours()) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
  };
  register({
    label: `containers of run ${run} (${image})`,
    stop: removeAll,
    kill: () => {
      spawnSync("sh", ["-c", `docker ps -aq --filter label=mtls-pool.run=${run} | xargs -r docker rm -f`], { stdio: "ignore" });
    },
    alive: async () => (await ours()).length > 0,
  });

  const mounts = [
    { source: sessionDir(), target: sessionDir(), mode: "rw" as const },
    { source: REPO, target: REPO, mode: "rw" as const }, // specs run `luarocks make` in it
    ...OPTIONAL_LIBS.flatMap((name) => {
      const dir = process.env[name];
      return dir ? [{ source: dir, target: dir, mode: "ro" as const }] : [];
    }),
  ];

  return {
    name: `container ${row}`,
    modules: ["/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so"],
    root: true,
    launch: async (spec) => {
      let output = "";
      let logsEnded: Promise<void> = Promise.resolve();
      const started = await new GenericContainer(image)
        .withNetworkMode("host")
        .withLabels(label)
        .withBindMounts(mounts)
        .withEnvironment(spec.env)
        .withWorkingDir(spec.cwd)
        .withCommand(["nginx", "-p", `${spec.prefix}/`, "-c", "conf/nginx.conf"])
        .withWaitStrategy(Wait.forLogMessage(READY_LINE))
        .withStartupTimeout(START_TIMEOUT_MS)
        .withLogConsumer((stream: Readable) => {
          logsEnded = new Promise((resolve) => stream.on("end", resolve).on("close", resolve).on("error", resolve));
          stream.on("data", (data: Buffer | string) => {
            const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data);
            if (chunk.toString("utf8").startsWith(READY_LINE)) return; // ours, not nginx's
            output = (output + chunk.toString("utf8")).slice(-4000);
            spec.onOutput?.(chunk);
          });
        })
        .start()
        .catch((err: Error) => {
          throw new Error(`container runtime: ${image} did not start within ${START_TIMEOUT_MS / 1000} s: ${err.message}`);
        });
      const container = docker.getContainer(started.getId());
      const pid = (await container.inspect()).State.Pid; // nginx's master, as a pid of this machine
      const exited = container.wait().then(
        async (r: { StatusCode: number }) => {
          await settlesWithin(logsEnded, 2000); // the last output, before callers read it
          await container.remove({ force: true }).catch(() => undefined);
          return { code: r.StatusCode, signal: null };
        },
        () => ({ code: null, signal: null }),
      );
      const signal = (sig: NodeJS.Signals): void => {
        void container.kill({ signal: sig }).catch(() => undefined);
      };
      const stop = (): Promise<void> =>
        stopEscalating(exited, signal, "SIGQUIT", () => signal("SIGKILL"));
      return { handle: { pid, exited, signal, stop }, outputTail: () => output };
    },
  };
}
