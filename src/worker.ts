/**
 * Worker-thread side of parallel batch search and parallel graph construction. Each task names a
 * kernel call on data that already sits in the index's shared memory (context blocks, queries,
 * result slots, the graph); the worker makes that one call. Instances are cached per memory (a few
 * at most), so a worker instantiates the kernels once per index, on the main thread's memory.
 */
import type { KernelExports } from './kernels/wasm.js';

interface TaskBase {
  /** Identifies the memory across tasks. */
  token: string;
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  ctx: number;
  from: number;
  to: number;
}

/**
 * Search the queries of a batch in slices of `step`, claimed from a shared counter (Int32 at
 * `counter`) until none are left: every lane, the calling thread's too, claims the next slice when
 * it finishes one, so slow and fast slices even out. from / to are unused.
 */
export interface ClaimTask extends TaskBase {
  kind: 'searchClaim';
  queries: number;
  nq: number;
  step: number;
  counter: number;
  call: number[];
  outIds: number;
  outDist: number;
  /** Int32 that counts the worker lanes done with the batch. */
  done: number;
  /** The lane's slot (LANE_WORDS Int32): after the batch the worker stays there for the next ones. */
  slot: number;
}

/**
 * A lane slot: Int32 words in the index's shared memory through which a worker that has finished
 * a batch takes the next ones without a message (see src/lanes.ts). `state` says who acts next;
 * the worker sleeps on `gen`, which the calling thread bumps when it hands over a batch.
 */
export const LANE = {
  state: 0, gen: 1, pages: 2, error: 3, ctx: 4, k: 5, L: 6, nProbe: 7, groupProbe: 8, scan: 9, scanRatio: 10,
  rerankCount: 11, queries: 12, nq: 13, step: 14, counter: 15, outIds: 16, outDist: 17, done: 18,
} as const;
export const LANE_WORDS = 20;
/** No worker in the slot. */
export const LANE_IDLE = 0;
/** A worker waits in the slot for a batch. */
export const LANE_WAITING = 1;
/** The calling thread has written a batch into the slot for the waiting worker. */
export const LANE_TAKEN = 2;
/** The calling thread asks the waiting worker to leave (its thread is wanted elsewhere). */
export const LANE_STOP = 3;
/** How long a worker waits in its slot for another batch before it returns to the pool. */
export const LINGER_MS = 25;
/** How long of that it watches the slot before it sleeps. */
export const LANE_SPIN_MS = 1;

/** One phase of inserting order[from..to) (assembly/graph.ts buildOut / buildBack). */
export interface BuildTask extends TaskBase {
  kind: 'buildOut' | 'buildBack';
  lane: number;
  lanes: number;
}

export type WorkerTask = ClaimTask | BuildTask;

/** Claim and search slices of the batch until it is done (see ClaimTask). */
export function searchClaimed(k: KernelExports, memory: WebAssembly.Memory, task: Omit<ClaimTask, 'kind' | 'token' | 'memory' | 'module' | 'from' | 'to' | 'done' | 'slot'>): void {
  const counter = new Int32Array(memory.buffer, task.counter, 1);
  const [kk, L, nProbe, groupProbe, scan, scanRatio, rerankCount] = task.call;
  for (;;) {
    const from = Atomics.add(counter, 0, task.step);
    if (from >= task.nq) return;
    const to = Math.min(task.nq, from + task.step);
    k.searchRange(task.ctx, task.queries, from, to, kk, L, nProbe, groupProbe, scan, scanRatio, rerankCount, task.outIds, task.outDist);
  }
}

const MAX_CACHED = 4;
/** Kernels per memory, with the memory's size when they were instantiated. */
const instances = new Map<string, { kernels: KernelExports; bytes: number }>();

function kernelsFor(task: TaskBase): { kernels: KernelExports; bytes: number } {
  const bytes = task.memory.buffer.byteLength;
  let cached = instances.get(task.token);
  // A shared memory grown by the main thread reaches this thread's older instances asynchronously:
  // until then they trap on the new pages. An instance on the memory as posted now sees them.
  if (!cached || cached.bytes < bytes) {
    const kernels = new WebAssembly.Instance(task.module, { env: { memory: task.memory } }).exports as unknown as KernelExports;
    cached = { kernels, bytes };
    instances.delete(task.token);
    instances.set(task.token, cached);
    // drop the oldest memory so a long-lived pool does not pin every index it has seen
    if (instances.size > MAX_CACHED) instances.delete(instances.keys().next().value as string);
  }
  return cached;
}

export default function runTask(task: WorkerTask): void {
  const { kernels: k, bytes } = kernelsFor(task);
  if (task.kind === 'searchClaim') {
    const words = new Int32Array(task.memory.buffer, task.slot, LANE_WORDS);
    try {
      searchClaimed(k, task.memory, task);
    } catch (error) {
      // the calling thread counts done lanes, not messages: say done, then fail the task
      Atomics.store(words, LANE.error, 1);
      laneDone(task.memory, task.done);
      throw error;
    }
    Atomics.store(words, LANE.pages, bytes >>> 16);
    Atomics.store(words, LANE.state, LANE_WAITING);
    laneDone(task.memory, task.done);
    linger(k, task.memory, words);
  } else if (task.kind === 'buildOut') {
    k.buildOut(task.ctx, task.from, task.to);
  } else {
    k.buildBack(task.ctx, task.from, task.to, task.lane, task.lanes);
  }
}

/** Count this lane done with its batch (its last touch of the batch's memory) and wake the caller. */
function laneDone(memory: WebAssembly.Memory, done: number): void {
  const word = new Int32Array(memory.buffer, done, 1);
  Atomics.add(word, 0, 1);
  Atomics.notify(word, 0);
}

/**
 * Wait in the lane slot for batches handed over by the calling thread and search them, until none
 * comes for LINGER_MS or the caller asks the lane to stop. The slot is WAITING on entry; every
 * batch ends WAITING again before it is counted done, so the caller may hand over the next one as
 * soon as it has seen every lane done.
 */
function linger(k: KernelExports, memory: WebAssembly.Memory, words: Int32Array): void {
  const f32 = new Float32Array(words.buffer, words.byteOffset, LANE_WORDS);
  for (;;) {
    const state = Atomics.load(words, LANE.state);
    if (state === LANE_TAKEN) {
      const done = words[LANE.done];
      try {
        searchClaimed(k, memory, {
          ctx: words[LANE.ctx], queries: words[LANE.queries], nq: words[LANE.nq], step: words[LANE.step],
          counter: words[LANE.counter], outIds: words[LANE.outIds], outDist: words[LANE.outDist],
          call: [words[LANE.k], words[LANE.L], words[LANE.nProbe], words[LANE.groupProbe], words[LANE.scan], f32[LANE.scanRatio], words[LANE.rerankCount]],
        });
      } catch {
        // reported through the slot: the caller throws; this worker leaves the slot
        Atomics.store(words, LANE.error, 1);
        Atomics.store(words, LANE.state, LANE_IDLE);
        laneDone(memory, done);
        return;
      }
      Atomics.store(words, LANE.state, LANE_WAITING);
      laneDone(memory, done);
      continue;
    }
    if (state === LANE_STOP) {
      Atomics.store(words, LANE.state, LANE_IDLE);
      return;
    }
    // WAITING: watch the state for a moment first (waking a sleeping thread can take a tenth of a
    // millisecond on a virtual machine, the length of a few queries), then sleep until the
    // generation moves (a batch, or a stop) or the time is up; the state is read again after the
    // generation, so a hand-over between the two cannot be slept through
    const spinUntil = performance.now() + LANE_SPIN_MS;
    while (Atomics.load(words, LANE.state) === LANE_WAITING && performance.now() < spinUntil);
    if (Atomics.load(words, LANE.state) !== LANE_WAITING) continue;
    const gen = Atomics.load(words, LANE.gen);
    if (Atomics.load(words, LANE.state) !== LANE_WAITING) continue;
    if (Atomics.wait(words, LANE.gen, gen, LINGER_MS) === 'timed-out' &&
        Atomics.compareExchange(words, LANE.state, LANE_WAITING, LANE_IDLE) === LANE_WAITING) return;
  }
}
