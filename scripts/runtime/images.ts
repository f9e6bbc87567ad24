// The container runtime's images: a Debian base image per suite (local, pulled, or made with
// debootstrap when no registry answers), and docker/Dockerfile built on it, tagged by a hash of
// every input (the files .dockerignore lets in, the base image's id, the target), so a second
// run finds its images and builds nothing.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type Dockerode from "dockerode";
import { readOrEmpty, settlesWithin, tail } from "./processes.js";
import { REPO } from "./runtime.js";

/** The matrix's container rows: the Debian suite of the base image, and the Dockerfile target. */
export const ROWS = {
  bookworm: { suite: "bookworm", target: "runtime" },
  trixie: { suite: "trixie", target: "runtime" },
  "trixie-lua52compat": { suite: "trixie", target: "lua52compat" },
} as const;
export type Row = keyof typeof ROWS;

const BUILD_TIMEOUT_MS = 20 * 60_000;
const DEBOOTSTRAP_TIMEOUT_MS = 10 * 60_000;
const PULL_TIMEOUT_MS = 30_000;
const IMAGE = "mtls-pool-test";

type Log = (line: string) => void;

async function imageId(docker: Dockerode, ref: string): Promise<string | undefined> {
  try {
    return (await docker.getImage(ref).inspect()).Id;
  } catch {
    return undefined;
  }
}

/** Runs a command with its output in `logFile`; resolves with its status (null on timeout). */
function runLogged(cmd: string, args: string[], logFile: string, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const out = createWriteStream(logFile);
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => {
      out.end(`\n${err.message}\n`);
      clearTimeout(timer);
      resolve(127);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      out.end();
      resolve(code);
    });
  });
}

/** The Debian mirror this machine's apt uses (deb822 .sources or sources.list). */
function debianMirror(): string {
  const files = [
    ...(existsSync("/etc/apt/sources.list.d")
      ? readdirSync("/etc/apt/sources.list.d").filter((f) => /\.(sources|list)$/.test(f)).map((f) => `/etc/apt/sources.list.d/${f}`)
      : []),
    "/etc/apt/sources.list",
  ];
  for (const file of files) {
    const text = readOrEmpty(file);
    const uri = /^URIs:\s*(\S+)/m.exec(text)?.[1] ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/m.exec(text)?.[1];
    if (uri && !uri.includes("security")) return uri;
  }
  return "http://deb.debian.org/debian";
}

/**
 * debian:<suite>-slim when local or pullable, else mtls-pool-base:<suite>, made here with
 * debootstrap from this machine's Debian mirror (there may be no registry at all).
 */
async function baseImage(docker: Dockerode, suite: string, log: Log): Promise<{ ref: string; id: string }> {
  const hub = `debian:${suite}-slim`;
  const own = `mtls-pool-base:${suite}`;
  for (const ref of [hub, own]) {
    const id = await imageId(docker, ref);
    if (id) return { ref, id };
  }
  log(`container runtime: pulling ${hub}`);
  const pulled = await settlesWithin(
    new Promise<void>((resolve, reject) => {
      docker.pull(hub, (err: Error | null, stream: NodeJS.ReadableStream) => {
        if (err) return reject(err);
        docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve()));
      });
    }).catch(() => undefined),
    PULL_TIMEOUT_MS,
  );
  const hubId = pulled ? await imageId(docker, hub) : undefined;
  if (hubId) return { ref: hub, id: hubId };

  const mirror = debianMirror();
  log(`container runtime: no registry answers; making ${own} with debootstrap --variant=minbase ${suite} from ${mirror}`);
  if (process.getuid?.() !== 0) throw new Error(`container runtime: ${hub} cannot be pulled and debootstrap needs root`);
  const dir = mkdtempSync(path.join(os.tmpdir(), `mtls-pool-debootstrap-${suite}-`));
  const logFile = path.join(os.tmpdir(), `mtls-pool-debootstrap-${suite}.log`);
  try {
    const status = await runLogged("debootstrap", ["--variant=minbase", suite, dir, mirror], logFile, DEBOOTSTRAP_TIMEOUT_MS);
    if (status !== 0) {
      throw new Error(`container runtime: debootstrap ${suite} failed (${status === null ? "timed out" : `status ${status}`}); ` +
        `the tail of ${logFile}:\n${tail(readOrEmpty(logFile), 15)}`);
    }
    const imported = spawnSync("sh", ["-c", `tar -C "${dir}" -c . | docker import - ${own}`], { encoding: "utf8" });
    if (imported.status !== 0) throw new Error(`container runtime: docker import ${own} failed: ${imported.stderr.trim()}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const id = await imageId(docker, own);
  if (!id) throw new Error(`container runtime: ${own} missing after docker import`);
  return { ref: own, id };
}

/** The build context's files: what .dockerignore lets in ("*" then "!path" lines), sorted. */
function contextFiles(): string[] {
  const allowed = readFileSync(path.join(REPO, ".dockerignore"), "utf8")
    .split("\n")
    .flatMap((line) => (line.startsWith("!") ? [line.slice(1).replace(/\/$/, "")] : []));
  return [...new Set(allowed.flatMap(filesUnder))].sort();
}

function filesUnder(rel: string): string[] {
  const abs = path.join(REPO, rel);
  if (!statSync(abs).isDirectory()) return [rel];
  return readdirSync(abs).sort().flatMap((entry) => filesUnder(path.join(rel, entry)));
}

function inputsHash(files: string[], baseId: string, target: string): string {
  const hash = createHash("sha256").update(`base=${baseId}\ntarget=${target}\n`);
  for (const file of files) {
    hash.update(`${file}\n`).update(readFileSync(path.join(REPO, file))).update("\n");
  }
  return hash.digest("hex").slice(0, 16);
}

/** The image of `row`, built now unless an image of the same inputs exists; returns its tag. */
export async function ensureImage(docker: Dockerode, row: Row, log: Log): Promise<string> {
  const { suite, target } = ROWS[row];
  const base = await baseImage(docker, suite, log);
  const files = contextFiles();
  const tag = `${IMAGE}:${row}_${inputsHash(files, base.id, target)}`;
  if (await imageId(docker, tag)) {
    log(`container runtime: image ${tag} is up to date (built from the same inputs)`);
    return tag;
  }
  const logFile = path.join(os.tmpdir(), `mtls-pool-build-${row}.log`);
  log(`container runtime: building ${tag} (docker/Dockerfile, target ${target}, BASE=${base.ref}); log in ${logFile}`);
  const started = Date.now();
  const out = createWriteStream(logFile);
  const failure = await new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(`no result within ${BUILD_TIMEOUT_MS / 60_000} min`), BUILD_TIMEOUT_MS);
    const done = (why?: string): void => {
      clearTimeout(timer);
      resolve(why);
    };
    docker
      .buildImage({ context: REPO, src: files }, {
        t: tag,
        dockerfile: "docker/Dockerfile",
        buildargs: { BASE: base.ref },
        target,
        networkmode: "host", // the engine here has no bridge network
        rm: true,
        forcerm: true,
      })
      .then((stream) => {
        let error: string | undefined;
        docker.modem.followProgress(
          stream,
          (err: Error | null) => done(err?.message ?? error),
          (event: { stream?: string; error?: string }) => {
            if (event.stream) out.write(event.stream);
            if (event.error) {
              error = event.error;
              out.write(`\nERROR: ${event.error}\n`);
            }
          },
        );
      }, (err: Error) => done(err.message));
  });
  await new Promise((resolve) => out.end(resolve));
  if (failure !== undefined || !(await imageId(docker, tag))) {
    throw new Error(`container runtime: building the ${row} image failed: ${failure ?? "no image"}; the tail of ${logFile}:\n` +
      tail(readOrEmpty(logFile), 15));
  }
  log(`container runtime: built ${tag} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  // older images of this row are superseded: remove their tags (shared layers stay)
  for (const image of await docker.listImages({ filters: { reference: [`${IMAGE}:${row}_*`] } })) {
    for (const old of image.RepoTags ?? []) {
      if (old !== tag) await docker.getImage(old).remove().catch(() => undefined);
    }
  }
  return tag;
}
