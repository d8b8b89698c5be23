/**
 * Browser side of the platform seam (see ../platform.ts; the browser bundle puts this module in
 * its place). Parallel work runs on module Web Workers that instantiate the kernels on the index's
 * shared WebAssembly.Memory. Browsers let a page post shared memory to a worker only when it is
 * cross-origin isolated (COOP same-origin + COEP require-corp); elsewhere, and where no worker can
 * start (a CSP that forbids workers, a missing worker file), everything runs on the calling thread
 * and `parallel()` says why.
 */
import { ZGQError } from '../errors.js';
import { containerStamp, crc32, decodeContainer, encodeContainerChunks, headerLength, MAX_SECTIONS } from '../format.js';
import type { ParallelInfo, Platform, WriteLease } from '../platform.js';
import runWorkerTask, { type WorkerTask } from '../worker.js';
import type { TaskMessage } from './worker.js';
import { readStored, storageKey, storageKind, storedBlob, writeStored } from './storage.js';

/**
 * The worker script, inlined by scripts/build-browser.mjs (zgq-worker.js's text), so a bundle of
 * zgq.js starts its workers from a Blob URL with no file to copy; undefined where nothing inlined it.
 */
declare const __ZGQ_WORKER_SOURCE__: string | undefined;

/** Wait (ms) for a new worker's ready message before treating it as one that cannot start. */
const START_TIMEOUT_MS = 10_000;

/**
 * Where workers are started from, tried in order: the inlined script as a Blob URL (works under
 * COEP require-corp: a blob: worker inherits the page's policy), then zgq-worker.js beside this
 * module (for pages whose CSP forbids blob: workers). A source whose worker cannot start is dropped;
 * when none is left, `startFailure` says why and every call runs on one thread.
 */
const sources: { name: string; url(): string | URL }[] = [];
if (typeof __ZGQ_WORKER_SOURCE__ === 'string') {
  const text = __ZGQ_WORKER_SOURCE__;
  let blobUrl: string | undefined;
  sources.push({
    name: 'inline Blob URL worker',
    url: () => (blobUrl ??= URL.createObjectURL(new Blob([text], { type: 'text/javascript' }))),
  });
}
sources.push({
  name: 'zgq-worker.js beside zgq.js',
  // bundlers recognise this exact pattern (and esbuild leaves it as is, copying nothing)
  url: () => new URL('./zgq-worker.js', import.meta.url),
});
const startErrors: string[] = [];
let startFailure: string | undefined;

function parallel(): ParallelInfo {
  if (typeof Worker === 'undefined') return { threads: 1, via: 'none', reason: 'this runtime has no Web Workers' };
  if (!globalThis.crossOriginIsolated) {
    return {
      threads: 1, via: 'none',
      reason: 'the page is not cross-origin isolated, so workers cannot share the index memory (serve it with '
        + 'Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)',
    };
  }
  if (startFailure !== undefined) return { threads: 1, via: 'none', reason: startFailure };
  return { threads: Math.max(1, navigator.hardwareConcurrency || 1), via: 'web-workers' };
}

interface Job {
  message: TaskMessage;
  resolve(): void;
  reject(error: Error): void;
}

/** Idle workers exit after this long (as the Node pool's do), releasing the memories they hold. */
const IDLE_MS = 5000;

let nextJob = 0;
const workers = new Set<Worker>();
const idle: Worker[] = [];
// FIFO of jobs waiting for a worker
const waiting: Job[] = [];
const running = new Map<Worker, Job>();
// workers not yet ready, each with the first job it will run and its start time-out
const starting = new Map<Worker, { job: Job; source: number; timer: ReturnType<typeof setTimeout> }>();
let idleTimer: ReturnType<typeof setTimeout> | undefined;
let current = 0;

/**
 * Run a task on the calling thread, for a worker that could not start. Build tasks make the same
 * kernel call a worker would (lanes touch disjoint data, so the index is the same); a batch-search
 * lane is left alone, as a lane whose worker never started: the calling thread searches its share.
 */
function runHere(job: Job): void {
  const { task } = job.message;
  if (task.kind === 'searchClaim') return job.resolve();
  try {
    runWorkerTask(task);
    job.resolve();
  } catch (e) {
    job.reject(e instanceof Error ? e : new Error(String(e)));
  }
}

/**
 * A worker of source `source` did not start: drop that source, and start the job's worker from
 * the next one; with none left, this call and later ones run on one thread and stats say why.
 */
function startFailed(source: number, why: string, job: Job): void {
  if (source === current && current < sources.length) {
    startErrors.push(`${sources[source].name}: ${why}`);
    current++;
    if (current === sources.length) {
      startFailure = `a Web Worker could not start (${startErrors.join('; ')}), so work runs on one thread`;
      console.warn(`zgq: ${startFailure}`);
    }
  }
  if (current < sources.length) return spawn(job);
  runHere(job);
  for (const queued of waiting.splice(0)) runHere(queued);
}

/** Start a worker for `job` from the current source; the job is posted once the worker is ready. */
function spawn(job: Job): void {
  const source = current;
  let worker: Worker;
  try {
    worker = new Worker(sources[source].url(), { type: 'module', name: 'zgq' });
  } catch (e) {
    return startFailed(source, `new Worker threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, job);
  }
  const notStarted = (why: string): boolean => {
    const start = starting.get(worker);
    if (!start) return false;
    clearTimeout(start.timer);
    starting.delete(worker);
    workers.delete(worker);
    worker.terminate();
    startFailed(source, why, start.job);
    return true;
  };
  worker.onmessage = (event: MessageEvent<{ ready?: true; id?: number; error?: string }>) => {
    const start = starting.get(worker);
    if (event.data.ready) {
      if (!start) return;
      clearTimeout(start.timer);
      starting.delete(worker);
      return dispatch(worker, start.job);
    }
    const done = running.get(worker);
    running.delete(worker);
    if (event.data.error === undefined) done?.resolve();
    else done?.reject(new Error(`zgq worker task failed: ${event.data.error}`));
    release(worker);
  };
  // after it started, a worker that dies fails its job and the queued ones (the next worker would
  // most likely fail the same way); later calls spawn fresh workers
  const fail = (what: string) => {
    if (notStarted(what)) return;
    const error = new ZGQError('UNSUPPORTED_PLATFORM', `a ZGQ Web Worker ${what}`);
    const job = running.get(worker);
    running.delete(worker);
    workers.delete(worker);
    const at = idle.indexOf(worker);
    if (at >= 0) idle.splice(at, 1);
    worker.terminate();
    job?.reject(error);
    for (const queued of waiting.splice(0)) queued.reject(error);
  };
  worker.onerror = (event) => {
    event.preventDefault();
    fail(`failed (${event.message || 'the worker script did not load'})`);
  };
  worker.onmessageerror = () => fail('could not receive its task');
  workers.add(worker);
  const timer = setTimeout(() => notStarted(`no ready message within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
  starting.set(worker, { job, source, timer });
}

function dispatch(worker: Worker, job: Job): void {
  clearTimeout(idleTimer);
  running.set(worker, job);
  worker.postMessage(job.message);
}

function release(worker: Worker): void {
  if (!workers.has(worker)) return;
  const next = waiting.shift();
  if (next) return dispatch(worker, next);
  idle.push(worker);
  if (running.size === 0 && starting.size === 0) {
    idleTimer = setTimeout(() => {
      for (const w of idle) {
        w.terminate();
        workers.delete(w);
      }
      idle.length = 0;
    }, IDLE_MS);
  }
}

function runTask(task: WorkerTask, threads: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const job: Job = { message: { id: nextJob++, task }, resolve, reject };
    if (current === sources.length) return runHere(job);
    const worker = idle.pop();
    if (worker) dispatch(worker, job);
    else if (workers.size < threads) spawn(job);
    else waiting.push(job);
  });
}

/** Default wait (ms) for the writers' lock, as in Node (lock.ts DEFAULT_LOCK_WAIT_MS). */
const DEFAULT_LOCK_WAIT_MS = 30_000;

/** Tails of the writers waiting in this page, by lock name (used only where Web Locks are missing). */
const pageLocks = new Map<string, Promise<void>>();

/**
 * The writers' lock of a stored index: a Web Lock named after its storage key, so tabs, windows and
 * workers of one origin (all that can reach its OPFS / IndexedDB) write one file in turn. Web Locks
 * are never taken over while held (nothing here asks to steal), so `verify` has nothing to check.
 * Where the API is missing, writers in this page still take turns; other tabs cannot be excluded.
 */
async function withLock<T>(path: string, wait: number | undefined, fn: (lease: WriteLease) => Promise<T>): Promise<T> {
  const name = `zgq:${storageKey(path)}`;
  const waitMs = wait ?? DEFAULT_LOCK_WAIT_MS;
  if (typeof waitMs !== 'number' || !(waitMs >= 0) || waitMs === Infinity) {
    throw new ZGQError('INVALID_ARGUMENT', `lock wait must be a finite number of milliseconds >= 0; got ${String(waitMs)}`);
  }
  const lease: WriteLease = { verify: async () => {} };
  const locked = () => new ZGQError(
    'LOCKED',
    `${path} is locked by another writer of this origin (another tab, window or worker, or this page); waited ${waitMs} ms`,
  );
  const locks = typeof navigator === 'undefined' ? undefined : navigator.locks;
  if (locks) {
    if (waitMs === 0) {
      return locks.request(name, { ifAvailable: true }, async (lock) => {
        if (!lock) throw locked();
        return fn(lease);
      });
    }
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), waitMs);
    try {
      return await locks.request(name, { signal: timeout.signal }, async () => {
        clearTimeout(timer);
        return fn(lease);
      });
    } catch (e) {
      if (timeout.signal.aborted && e instanceof DOMException && e.name === 'AbortError') throw locked();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
  const before = pageLocks.get(name) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => (done = resolve));
  const tail = before.then(() => mine);
  pageLocks.set(name, tail);
  try {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), waitMs)));
    const turn = await Promise.race([before.then(() => 'turn' as const), expired]);
    clearTimeout(timer);
    if (turn === 'expired') throw locked();
    return await fn(lease);
  } finally {
    done();
    if (pageLocks.get(name) === tail) pageLocks.delete(name);
  }
}

/** Stamp of the index stored under `path`, from the first bytes of its blob. */
async function fileStamp(path: string): Promise<string | null> {
  const blob = await storedBlob(path);
  if (!blob) return null;
  const fixed = new Uint8Array(await blob.slice(0, headerLength(0)).arrayBuffer());
  let stamp = containerStamp(fixed, blob.size);
  const count = fixed.length >= headerLength(0) ? new DataView(fixed.buffer).getUint32(24, true) : 0;
  if (stamp === null && count <= MAX_SECTIONS) {
    stamp = containerStamp(new Uint8Array(await blob.slice(0, headerLength(count)).arrayBuffer()), blob.size);
  }
  return stamp ?? `other/${blob.size}`;
}

/** The browser platform: Web Workers when cross-origin isolated, OPFS / IndexedDB for files, portable CRC-32. */
export const platform: Platform = {
  name: 'browser',
  parallel,
  threads: (asked) => {
    const p = parallel();
    return p.via === 'none' ? 1 : asked ?? p.threads;
  },
  runTask,
  withLock,
  writeIndex: async (path, meta, sections) => {
    const chunks = encodeContainerChunks(meta, sections, crc32);
    await writeStored(path, chunks);
    return containerStamp(chunks[0], chunks.reduce((size, c) => size + c.length, 0))!;
  },
  readIndex: async (path) => decodeContainer(await readStored(path), `${storageKind()}:${path}`, crc32),
  fileStamp,
  fileKey: storageKey,
  makeDirectory: async () => {},
  crc32,
  webgpu: async () => (typeof navigator !== 'undefined' && 'gpu' in navigator ? navigator.gpu : null),
};
