// The one registry of what a run started: processes (each in its own process group), containers,
// the Docker engine, and temp dirs. Whatever happens (normal end, Ctrl-C, SIGTERM, uncaught
// error) everything in it is stopped by pid or id, and cleanupAll() checks that nothing is left.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface Resource {
  /** what it is, for messages: "nginx (pid 123)", "container 3f2a... (trixie)" */
  label: string;
  /** graceful stop, bounded in time; never rejects */
  stop(): Promise<void>;
  /** last resort, synchronous (for the 'exit' handler) */
  kill(): void;
  /** true while anything of it still runs */
  alive(): Promise<boolean>;
}

const resources = new Set<Resource>();
const tempDirs: string[] = [];
let session: string | undefined;
let handlersInstalled = false;

export const keepTmp = process.env.KEEP_TMP === "1";

export function register(resource: Resource): void {
  installHandlers();
  resources.add(resource);
}

// ---------------------------------------------------------------------------------------------
// /proc: process trees and groups

interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgrp: number;
}

function procStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // "pid (comm) state ppid pgrp ...": comm may contain spaces, so parse after the last ')'
      const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.push({ pid: Number(entry), state: state!, ppid: Number(ppid), pgrp: Number(pgrp) });
    } catch {
      // the process went away while we were looking
    }
  }
  return out;
}

/** Pids whose parent is `pid` (nginx workers of a master), read from /proc. */
export function childPids(pid: number): number[] {
  return procStats().filter((p) => p.ppid === pid).map((p) => p.pid);
}

/** Live (not zombie) processes of process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  return procStats().filter((p) => p.pgrp === pgid && p.state !== "Z").map((p) => p.pid);
}

/**
 * SIGKILL a whole process group. Killing a master and then its workers one by one races with
 * the master respawning a worker it saw die; a group signal reaches all of them at once, and
 * an orphaned worker (its master gone) is still in the group.
 */
export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // nothing left in the group
  }
}

// ---------------------------------------------------------------------------------------------
// temp dirs: all inside one session dir, which containers get mounted at the same path

/** The run's own directory under os.tmpdir(); every makeTempDir() is inside it. */
export function sessionDir(): string {
  installHandlers();
  session ??= mkdtempSync(path.join(os.tmpdir(), "mtls-pool-"));
  return session;
}

/** A fresh temp dir inside sessionDir(), removed at exit unless KEEP_TMP=1. */
export function makeTempDir(label: string): string {
  const dir = mkdtempSync(path.join(sessionDir(), `${label}-`));
  tempDirs.push(dir);
  return dir;
}

function removeTempDirs(): void {
  if (keepTmp) return;
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  if (session !== undefined) rmSync(session, { recursive: true, force: true });
  session = undefined;
}

// ---------------------------------------------------------------------------------------------
// cleanup

const withTimeout = <T>(p: Promise<T>, ms: number, fallback: T): Promise<T> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    void p.then((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });

/**
 * Stops everything still registered, in reverse order of registration (so containers are gone
 * before the engine stops), and checks each is gone before the next. Returns what is left
 * (empty when all stopped) and the temp dirs (kept with KEEP_TMP=1).
 */
export async function cleanupAll(): Promise<{ leftovers: string[]; dirs: string[] }> {
  const leftovers: string[] = [];
  // a check that cannot be made (the engine already gone) counts as nothing left
  const alive = (r: Resource): Promise<boolean> => withTimeout(r.alive().catch(() => false), 10_000, true);
  for (const r of [...resources].reverse()) {
    await withTimeout(r.stop().catch(() => undefined), 30_000, undefined);
    if (await alive(r)) {
      r.kill();
      // a SIGKILL takes effect at once; give the kernel a moment to tear the processes down
      for (let i = 0; i < 20 && (await alive(r)); i++) await new Promise((res) => setTimeout(res, 100));
      if (await alive(r)) leftovers.push(r.label);
    }
    resources.delete(r);
  }
  const dirs = [session ?? "", ...tempDirs].filter(Boolean);
  removeTempDirs();
  return { leftovers, dirs };
}

/** Synchronous last resort, safe in an 'exit' handler. */
function killNow(): void {
  for (const r of [...resources].reverse()) r.kill();
  resources.clear();
  removeTempDirs();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", killNow);
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig} received: stopping every process and container we started\n`);
      void withTimeout(cleanupAll(), 45_000, undefined).then(() => process.exit(code));
    });
  }
  const fatal = (err: unknown): void => {
    process.stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killNow();
    process.exit(1);
  };
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", fatal);
}
