/**
 * The platform seam: the few things ZGQIndex needs that differ between Node and a browser
 * (threads, files, the fastest CRC-32). This module is the Node side. The browser bundle
 * (scripts/build-browser.mjs) replaces it with web/platform.ts, which exports `platform` with the
 * same type, so the browser entry reaches no Node module and ZGQIndex has one code path.
 */
import { availableParallelism } from 'node:os';
import type { Checksum, DecodedContainer, Section } from './format.js';
import { fastCrc32, readContainerFile, writeContainerFile } from './io.js';
import type { WorkerTask } from './worker.js';

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
  /** Store an encoded index under `path`, replacing any previous one only once complete. */
  writeIndex(path: string, meta: Record<string, unknown>, sections: Section[]): Promise<void>;
  /** Read and check an index stored under `path`. */
  readIndex(path: string): Promise<DecodedContainer>;
  /** CRC-32 for containers (zlib's native one in Node). */
  readonly crc32: Checksum;
}

let parallelModule: typeof import('./parallel.js') | undefined;

/** The Node platform: piscina worker threads, atomic files, zlib's CRC-32. */
export const platform: Platform = {
  name: 'node',
  parallel: () => ({ threads: availableParallelism(), via: 'worker_threads' }),
  threads: (asked) => asked ?? availableParallelism(),
  // piscina loads on first parallel use only; after that a task is posted before runTask returns,
  // so a worker starts on it while the calling thread does its own share
  runTask: (task, threads) =>
    parallelModule ? parallelModule.runTask(task, threads) : import('./parallel.js').then((m) => (parallelModule = m).runTask(task, threads)),
  writeIndex: writeContainerFile,
  readIndex: readContainerFile,
  crc32: fastCrc32,
};
