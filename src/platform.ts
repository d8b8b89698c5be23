/**
 * The platform seam: the few things ZGQIndex needs that differ between Node and a browser
 * (threads, files and their writers' lock, the fastest CRC-32). This module is the Node side. The browser bundle
 * (scripts/build-browser.mjs) replaces it with web/platform.ts, which exports `platform` with the
 * same type, so the browser entry reaches no Node module and ZGQIndex has one code path.
 */
import { availableParallelism } from 'node:os';
import { mkdir } from 'node:fs/promises';
import { ZGQError } from './errors.js';
import { resolve } from 'node:path';
import type { Checksum, DecodedContainer, PartlyRead, Section } from './format.js';
import { checkPath, fastCrc32, fileStamp, openContainerFile, readContainerFile, removeStaleTemporaries, writeContainerFile } from './io.js';
import { closeFile, FileRows, type OpenFile } from './rowfile.js';
import type { RowStore } from './rows.js';
import { ROW_TAGS } from './persist.js';
import type { WorkerTask } from './worker.js';
import type { ZGQOptions } from './options.js';

/** Options of `ZGQIndex.save`. */
export interface SaveOptions {
  /**
   * How long to wait for another writer of the same path to finish, in ms; 0 fails at once with
   * LOCKED. Default 30000: longer than a lock left by a killed writer lives (20 s in Node).
   */
  wait?: number;
}

/** Options of `ZGQIndex.update`. */
export interface UpdateOptions extends SaveOptions {
  /** Options of a new, empty index to hand to the update when no file exists yet (default: none; a missing file is an IO error). */
  create?: ZGQOptions;
}

/** The writers' lock of one path, held by the function it was given to (lock.ts in Node). */
export interface WriteLease {
  /** Throws ZGQError `LOCKED` when the lock was lost; a write calls it just before it becomes visible. */
  verify(): Promise<void>;
}

/** Where parallel work (graph build, batch search) runs; reported by `ZGQIndex.stats().parallel`. */
export interface ParallelInfo {
  /** Threads used when a call does not set `threads` (1: everything runs on the calling thread). */
  threads: number;
  /** 'worker_threads' (Node, piscina), 'web-workers' (browser), or 'none' (one thread only). */
  via: 'worker_threads' | 'web-workers' | 'none';
  /** Why work runs on one thread only, when `via` is 'none'. */
  reason?: string;
}

/** What a runtime provides to ZGQIndex. */
export interface Platform {
  readonly name: 'node' | 'browser';
  /** Thread pool status, read when a call decides its thread count. */
  parallel(): ParallelInfo;
  /**
   * Threads a call runs on: the count asked for, or the default; 1 wherever workers cannot share
   * the index's memory.
   */
  threads(asked: number | undefined): number;
  /** Run one task on a worker that shares the task's memory, in a pool of at least `threads`. */
  runTask(task: WorkerTask, threads: number): Promise<void>;
  /**
   * Run `fn` while holding the writers' lock of `path`, waiting up to `wait` ms (default 30000) for
   * another writer to finish; ZGQError `LOCKED` (naming the path and holder) when the wait ends.
   */
  withLock<T>(path: string, wait: number | undefined, fn: (lease: WriteLease) => Promise<T>): Promise<T>;
  /**
   * Store an encoded index under `path` (the caller holds `lease`), replacing any previous one only
   * once complete. Returns the stored container's stamp (format.ts `containerStamp`).
   */
  writeIndex(path: string, meta: Record<string, unknown>, sections: Section[], lease: WriteLease): Promise<string>;
  /** Read and check an index stored under `path`. */
  readIndex(path: string): Promise<DecodedContainer>;
  /**
   * Read and check an index stored under `path` except its rows, which stay in the file and are read
   * through the row stores `rows` makes (Node; browsers keep indexes whole: undefined there).
   */
  openIndex?(path: string): Promise<OpenedIndex>;
  /** Stamp of the index stored under `path` now, read from its header only; null when there is none. */
  fileStamp(path: string): Promise<string | null>;
  /** One key per stored file, however `path` spells it (absolute in Node). */
  fileKey(path: string): string;
  /** Make the directory `path` (and its parents) where files are to be stored; browsers make them as files are written. */
  makeDirectory(path: string): Promise<void>;
  /** CRC-32 for containers (zlib's native one in Node). */
  readonly crc32: Checksum;
  /**
   * WebGPU's entry point (navigator.gpu; in Node, the optional package `webgpu`), or null where
   * there is none; throws when the package is missing or fails to load.
   */
  webgpu(): Promise<GPU | null>;
}

/** An index file held open with its rows left in it (Platform.openIndex). */
export interface OpenedIndex {
  container: PartlyRead;
  /** A store over `n` rows of `rowBytes` from byte `offset` of the file. */
  rows(offset: number, n: number, rowBytes: number): RowStore;
  /** Close the file (every store made by `rows` fails with IO after). */
  close(): void;
}

let parallelModule: typeof import('./parallel.js') | undefined;
// proper-lockfile (with its exit handlers) loads on the first write only: readers never need it
let lockModule: Promise<typeof import('./lock.js')> | undefined;

/** The Node platform: piscina worker threads, atomic files under a lock directory (lock.ts), zlib's CRC-32. */
export const platform: Platform = {
  name: 'node',
  parallel: () => ({ threads: availableParallelism(), via: 'worker_threads' }),
  threads: (asked) => asked ?? availableParallelism(),
  // piscina loads on first parallel use only; after that a task is posted before runTask returns,
  // so a worker starts on it while the calling thread does its own share
  runTask: (task, threads) =>
    parallelModule ? parallelModule.runTask(task, threads) : import('./parallel.js').then((m) => (parallelModule = m).runTask(task, threads)),
  withLock: async (path, wait, fn) => (await (lockModule ??= import('./lock.js'))).withFileLock(path, fn, { wait }),
  writeIndex: async (path, meta, sections, lease) => {
    // temporaries of saves that were killed: no other writer of this path runs while we hold its lock
    await removeStaleTemporaries(path);
    return writeContainerFile(path, meta, sections, { beforeCommit: () => lease.verify() });
  },
  readIndex: readContainerFile,
  makeDirectory: async (path) => {
    try {
      await mkdir(path, { recursive: true });
    } catch (err) {
      throw new ZGQError('IO', `cannot make the directory '${path}': ${(err as Error).message}`, { cause: err });
    }
  },
  openIndex: async (path) => {
    const { fd, container } = await openContainerFile(path, (tag) => ROW_TAGS.has(tag));
    const file: OpenFile = { fd, path };
    return {
      container,
      rows: (offset, n, rowBytes) => new FileRows(file, offset, n, rowBytes),
      close: () => closeFile(file),
    };
  },
  fileStamp,
  fileKey: (path) => {
    checkPath(path, 'path');
    return resolve(path);
  },
  crc32: fastCrc32,
  webgpu: async () => {
    // optional: its absence changes nothing but this answer. Its create() is the Dawn instance;
    // the options are Dawn's (none needed)
    const name = 'webgpu';
    const dawn = (await import(/* @vite-ignore */ name).catch((err: unknown) => {
      throw new Error(`the optional package webgpu is not installed (npm install webgpu): ${err instanceof Error ? err.message : String(err)}`);
    })) as { create(options: string[]): GPU };
    return dawn.create([]);
  },
};
