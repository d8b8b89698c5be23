/**
 * Node worker-thread pool for batch search and graph linking (piscina). One pool per process, grown
 * to the largest thread count asked for; idle workers exit after IDLE_MS and never keep the process
 * alive (a new thread takes tens of milliseconds to start, longer than a small batch). Thread
 * defaults live in src/platform.ts.
 */
import { Piscina } from 'piscina';
import type { WorkerTask } from './worker.js';

let pool: Piscina | null = null;
const IDLE_MS = 30_000;

function workerFile(): URL {
  // under tsx (tests, scripts) the sources are .ts; built, they are .js beside this file
  return new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
}

/** Run one task on a worker thread of a pool with at least `threads` threads. */
export async function runTask(task: WorkerTask, threads: number): Promise<void> {
  if (!pool || pool.options.maxThreads < threads) {
    const old = pool;
    pool = new Piscina({ filename: workerFile().href, minThreads: 0, maxThreads: threads, idleTimeout: IDLE_MS });
    void old?.destroy();
  }
  await pool.run(task);
}
