/**
 * Node worker-thread pool for batch search and graph linking (piscina). One pool per process, grown
 * to the largest thread count asked for; idle workers exit after a few seconds and never keep the
 * process alive. Thread defaults live in src/platform.ts.
 */
import { Piscina } from 'piscina';
import type { WorkerTask } from './worker.js';

let pool: Piscina | null = null;

function workerFile(): URL {
  // under tsx (tests, scripts) the sources are .ts; built, they are .js beside this file
  return new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
}

/** Run one task on a worker thread of a pool with at least `threads` threads. */
export async function runTask(task: WorkerTask, threads: number): Promise<void> {
  if (!pool || pool.options.maxThreads < threads) {
    const old = pool;
    pool = new Piscina({ filename: workerFile().href, minThreads: 0, maxThreads: threads, idleTimeout: 5000 });
    void old?.destroy();
  }
  await pool.run(task);
}
