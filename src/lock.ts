/**
 * The writers' lock of an index file (Node only; the browser side is in web/platform.ts). Writers
 * of one path exclude each other, across processes and across hosts that share the file system:
 * `ZGQIndex.save` and `ZGQIndex.update` run while holding it, so two `zgq add` runs on one file
 * both land instead of one silently replacing the other (issue 15).
 *
 * How (proper-lockfile, with these choices):
 * - The lock is the directory `<path>.lock` beside the file, made with mkdir, which is atomic on
 *   local and network file systems alike. The holder refreshes its mtime every
 *   {@link LOCK_REFRESH_MS}; a lock not refreshed for {@link LOCK_STALE_MS} belongs to a writer
 *   that died (SIGKILL, power loss) and is taken over. A normal exit, SIGINT or SIGTERM removes it.
 * - `<path>.lock/owner.json` names the holder (pid, host, start time, a random token). It lives
 *   inside the lock directory, written right after mkdir, so it appears and disappears with the
 *   lock and can never describe a previous holder (a file beside it could). proper-lockfile
 *   removes locks with rmdir, so it gets an fs whose rmdir removes owner.json first.
 * - A holder whose event loop stalls past LOCK_STALE_MS (a huge synchronous load) looks dead and
 *   may be taken over. So a write checks, just before its rename makes it visible
 *   ({@link Lease.verify}), that owner.json still carries its token; if not, it fails with LOCKED
 *   and replaces nothing. The file stamp check of `save` (CONFLICT) covers the moment between.
 * - The stale time is the same for every writer (proper-lockfile's rule: mixed stale times let
 *   two writers hold one lock), so it is a constant, not an option.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';

import { ZGQError } from './errors.js';
import { checkPath } from './io.js';

/** A lock not refreshed for this long (ms) is abandoned and taken over by the next writer. */
export const LOCK_STALE_MS = 20_000;

/** How often (ms) a holder refreshes its lock's mtime: ten refreshes fit in LOCK_STALE_MS. */
export const LOCK_REFRESH_MS = 2_000;

/**
 * How long (ms) a writer waits for the lock by default: longer than LOCK_STALE_MS, so a lock left
 * by a killed writer is taken over rather than reported.
 */
export const DEFAULT_LOCK_WAIT_MS = 30_000;

const OWNER_FILE = 'owner.json';

/** What the holder of a lock recorded about itself (fields absent when it could not be read). */
export interface LockHolder {
  pid?: number;
  host?: string;
  /** When it took the lock (ISO 8601). */
  since?: string;
}

/** The held lock of one path, given to the function that runs under it. */
export interface Lease {
  /** The locked file, as an absolute path with its directory's symlinks resolved. */
  readonly path: string;
  /**
   * Checks that this writer still holds the lock; call it just before making a write visible.
   *
   * @throws ZGQError `LOCKED` when the lock was lost (taken over after this process stalled past
   *   LOCK_STALE_MS, or its directory removed by hand).
   */
  verify(): Promise<void>;
}

/** Options of {@link withFileLock}. */
export interface FileLockOptions {
  /** How long to wait for a lock another writer holds, in ms; 0 fails at once. Default DEFAULT_LOCK_WAIT_MS. */
  wait?: number;
}

/** The lock directory of `path` (where {@link withFileLock} puts it). */
export function lockPathOf(path: string): string {
  return `${path}.lock`;
}

/**
 * Runs `fn` while holding the writers' lock of `path`, waiting up to `options.wait` ms for it.
 * The file itself need not exist; its directory must. The lock is released when `fn` settles.
 *
 * @returns what `fn` returns.
 * @throws ZGQError `INVALID_ARGUMENT` for a bad path or wait; `LOCKED` naming the path and the
 *   holder (pid, host, since) when the wait ends first; `IO` when the lock cannot be made (missing
 *   directory, no permission); whatever `fn` throws.
 */
export async function withFileLock<T>(path: string, fn: (lease: Lease) => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  checkPath(path, 'path');
  const wait = options.wait ?? DEFAULT_LOCK_WAIT_MS;
  if (typeof wait !== 'number' || !(wait >= 0) || wait === Infinity) {
    throw new ZGQError('INVALID_ARGUMENT', `lock wait must be a finite number of milliseconds >= 0; got ${String(wait)}`);
  }
  const file = await canonical(path);
  const lockDir = lockPathOf(file);
  const token = randomBytes(8).toString('hex');
  let lost: Error | undefined;
  const settings: lockfile.LockOptions = {
    stale: LOCK_STALE_MS,
    update: LOCK_REFRESH_MS,
    realpath: false,
    fs: ownerRecordingFs(token),
    // proper-lockfile's default throws from a timer, which would kill the process; verify() reports it instead
    onCompromised: (e) => {
      lost = e;
    },
  };
  const deadline = Date.now() + wait;
  let pause = 20;
  let release: () => Promise<void>;
  for (;;) {
    try {
      release = await lockfile.lock(file, settings);
      break;
    } catch (e) {
      if (errnoCode(e) !== 'ELOCKED') {
        const why = errnoCode(e) === 'ENOENT' ? 'its directory does not exist' : describeCause(e);
        throw new ZGQError('IO', `cannot lock ${path} for writing (lock ${lockDir}): ${why}`, { cause: e });
      }
      const left = deadline - Date.now();
      if (left <= 0) throw await lockedError(path, lockDir, wait);
      // polling with backoff: a lock held across processes has no wake-up signal
      await sleep(Math.min(left, pause * (0.5 + Math.random())));
      pause = Math.min(pause * 2, 500);
    }
  }
  const lease: Lease = {
    path: file,
    verify: async () => {
      const holder = lost ? null : await readOwner(lockDir);
      if (lost || holder?.token !== token) {
        throw new ZGQError(
          'LOCKED',
          `${path}: lost the writers' lock (${lockDir}) before the write was complete` +
            (lost ? ` (${lost.message})` : holder ? `; it is now held by ${describeHolder(holder)}` : '; its lock directory is gone') +
            `: a lock not refreshed for ${LOCK_STALE_MS / 1000} s is taken over, e.g. after the process stalled; nothing was replaced`,
        );
      }
    },
  };
  try {
    return await fn(lease);
  } finally {
    // a lost lock is no longer ours to remove
    await release().catch(() => undefined);
  }
}

/**
 * Who holds the lock of `path` now, as recorded in its owner.json; null when nobody does.
 * A holder that died keeps its record until the lock is taken over.
 */
export async function lockHolder(path: string): Promise<LockHolder | null> {
  checkPath(path, 'path');
  const owner = await readOwner(lockPathOf(await canonical(path)));
  if (!owner) return null;
  const { token: _token, ...holder } = owner;
  return holder;
}

/** Absolute path with the directory's symlinks resolved: one file, one lock, however it is named. */
async function canonical(path: string): Promise<string> {
  const full = resolve(path);
  try {
    return join(await realpath(dirname(full)), basename(full));
  } catch {
    // a missing directory: mkdir of the lock reports it
    return full;
  }
}

/** Node's fs, except that making a lock also records its owner and removing one removes the record. */
function ownerRecordingFs(token: string): typeof fs {
  const record = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), token });
  const mkdir = (dir: string, callback: (e: NodeJS.ErrnoException | null) => void): void => {
    fs.mkdir(dir, (e) => {
      if (e) return callback(e);
      // the record is for messages and verify(): the lock is the directory, even without it
      fs.writeFile(join(dir, OWNER_FILE), record, () => callback(null));
    });
  };
  const rmdir = (dir: string, callback: (e: NodeJS.ErrnoException | null) => void): void => {
    fs.unlink(join(dir, OWNER_FILE), () => fs.rmdir(dir, callback));
  };
  const rmdirSync = (dir: string): void => {
    try {
      fs.unlinkSync(join(dir, OWNER_FILE));
    } catch {
      // already gone
    }
    fs.rmdirSync(dir);
  };
  return { ...fs, mkdir, rmdir, rmdirSync } as unknown as typeof fs;
}

async function readOwner(lockDir: string): Promise<(LockHolder & { token?: string }) | null> {
  let text: string;
  try {
    text = await readFile(join(lockDir, OWNER_FILE), 'utf8');
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') return {};
    // no record: either no lock, or one made a moment ago whose record is not written yet
    return fs.existsSync(lockDir) ? {} : null;
  }
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    return {
      pid: typeof o.pid === 'number' ? o.pid : undefined,
      host: typeof o.host === 'string' ? o.host : undefined,
      since: typeof o.since === 'string' ? o.since : undefined,
      token: typeof o.token === 'string' ? o.token : undefined,
    };
  } catch {
    // being written right now
    return {};
  }
}

function describeHolder(h: LockHolder): string {
  if (h.pid === undefined) return 'a writer that has not recorded itself';
  const self = h.pid === process.pid && h.host === hostname() ? ' (this process: another save or update of the same file is running)' : '';
  return `pid ${h.pid}${h.host ? ` on host ${h.host}` : ''}${h.since ? ` since ${h.since}` : ''}${self}`;
}

async function lockedError(path: string, lockDir: string, wait: number): Promise<ZGQError> {
  const holder = await readOwner(lockDir);
  return new ZGQError(
    'LOCKED',
    `${path} is locked by another writer, ${holder ? describeHolder(holder) : 'which has just released it'}; waited ${wait} ms ` +
      `(lock ${lockDir}; a lock not refreshed for ${LOCK_STALE_MS / 1000} s, e.g. of a killed process, is taken over)`,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

function errnoCode(e: unknown): string | undefined {
  return e instanceof Error ? (e as NodeJS.ErrnoException).code : undefined;
}

function describeCause(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
