/**
 * Worker-thread side of parallel batch search and parallel graph construction. Each task names a
 * kernel call on data that already sits in the index's shared memory (context blocks, queries,
 * result slots, the graph); the worker makes that one call. Instances are cached per memory (a few
 * at most), so a worker instantiates the kernels once per index, on the main thread's memory.
 */
import type { KernelExports } from './kernels/wasm.js';
import type { BuildKernel } from './graph.js';

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
 * A worker lane of a batch search. The batch itself is described in the lane's slot (see LANE), not
 * in the task: a task posted for a slot runs whatever batch the slot holds when the task starts, if
 * the slot still waits for one (the calling thread may have searched every query before the task
 * started, and even posted a later batch to the same slot). from / to / ctx are unused.
 */
export interface ClaimTask extends TaskBase {
  kind: 'searchClaim';
  /** The lane's slot (LANE_WORDS Int32 in the shared memory). */
  slot: number;
}

/**
 * A lane slot: Int32 words in the index's shared memory that describe the lane's batch and through
 * which a worker that has finished a batch takes the next one without a message (see
 * src/lanes.ts). `state` says who acts next; a waiting worker sleeps on `gen`, which the calling
 * thread bumps when it hands over a batch or asks the worker to leave.
 */
export const LANE = {
  state: 0, gen: 1, pages: 2, error: 3, ctx: 4, k: 5, L: 6, nProbe: 7, groupProbe: 8, scan: 9, scanRatio: 10,
  rerankCount: 11, queries: 12, nq: 13, step: 14, sync: 15, outIds: 16, outDist: 17, seq: 18, slices: 19,
  rowBytes: 20, scratch: 21, grouped: 22, maxSlice: 23, lanes: 24, rounded: 25, units: 26, groupedBytes: 27,
} as const;
export const LANE_WORDS = 28;
/** No worker in the slot and no batch for one. */
export const LANE_IDLE = 0;
/** A worker waits in the slot for a batch. */
export const LANE_WAITING = 1;
/** A batch is in the slot and a task was posted to run it. */
export const LANE_POSTED = 2;
/** A batch is in the slot for the worker waiting there. */
export const LANE_TAKEN = 3;
/** A worker is searching the slot's batch. */
export const LANE_RUNNING = 4;
/** The calling thread asks the waiting worker to leave (its thread is wanted elsewhere). */
export const LANE_STOP = 5;
/** How long a worker waits in its slot for another batch before it returns to the pool. */
export const LINGER_MS = 25;
/** How long of that it watches the slot before it sleeps. */
export const LANE_SPIN_MS = 1;

/**
 * The state word of one slice of a batch (Int32 per slice): the batch's sequence number and a phase.
 * A worker searches a slice into its lane's scratch and publishes it (OPEN -> COPYING, copy, DONE)
 * only if the calling thread has not searched it itself in the meantime (OPEN -> STOLEN), so a worker
 * that stalls mid-slice never holds the batch up, and one that wakes later never writes into
 * results of a later batch (whose slice words carry another sequence number).
 */
export const SLICE_OPEN = 0;
export const SLICE_COPYING = 1;
export const SLICE_DONE = 2;
export const SLICE_STOLEN = 3;
export const sliceWord = (seq: number, phase: number): number => (seq << 2) | phase;

/**
 * The claim counter of a batch (Int32 word 0 of its sync pair): the low bits of its sequence number
 * above the next slice to claim. A worker claims by compare-and-swap only while the word carries
 * its own batch, so one still leaving a batch does not take a slice of the next (whose bounds,
 * sizes and scratch differ) nor move its counter (unless stalled inside claim for a multiple of 2048
 * batches; it would then search a slice it can no longer publish, see SLICE_OPEN).
 */
const CLAIM_SLICE_BITS = 20;
const CLAIM_SLICE_MASK = (1 << CLAIM_SLICE_BITS) - 1;
const CLAIM_SEQ_MASK = 0x7ff;
export const claimWord = (seq: number, slice: number): number => ((seq & CLAIM_SEQ_MASK) << CLAIM_SLICE_BITS) | slice;
/** The slice a claim word (as Atomics.add returned it) stands for. */
export const claimedSlice = (word: number): number => word & CLAIM_SLICE_MASK;

/** The next slice of batch `seq` for a worker, or -1 when the counter is another batch's. */
function claim(sync: Int32Array, seq: number): number {
  for (;;) {
    const word = Atomics.load(sync, 0);
    if (word >>> CLAIM_SLICE_BITS !== (seq & CLAIM_SEQ_MASK)) return -1;
    if (Atomics.compareExchange(sync, 0, word, word + 1) === word) return claimedSlice(word);
  }
}

/** Smallest slice of a batch cut into shrinking slices. */
const SHRINKING_MIN = 16;

/**
 * The slices of a batch of nq queries (slice i is queries [bounds[i], bounds[i + 1])): `step` queries
 * each, or with step 0, each a share of what is left among `lanes` lanes (at most maxSlice, at least
 * SHRINKING_MIN), so the first are large and the last small. Every lane computes them from its own
 * slot, so no lane ever reads another batch's.
 */
export function sliceBounds(nq: number, step: number, lanes: number, maxSlice: number): number[] {
  const bounds = [0];
  for (let from = 0; from < nq; ) {
    const size = step > 0 ? step : Math.min(maxSlice, Math.max(SHRINKING_MIN, Math.ceil((nq - from) / (2 * lanes))));
    from = Math.min(nq, from + size);
    bounds.push(from);
  }
  return bounds;
}

/**
 * A worker lane's share of the batch in its slot: claim slices (see sliceBounds) until none is left
 * or a later batch began.
 */
function searchShare(k: KernelExports, memory: WebAssembly.Memory, words: Int32Array): void {
  const buffer = memory.buffer;
  // byte offsets reach 4 GiB: read them unsigned (an Int32 view makes those past 2 GiB negative)
  const offsets = new Uint32Array(buffer, words.byteOffset, LANE_WORDS);
  const seq = words[LANE.seq];
  const sync = new Int32Array(buffer, offsets[LANE.sync], 2);
  // maxSlice, the batch's largest slice, caps none of them: the bounds come out as the calling thread's
  const bounds = sliceBounds(words[LANE.nq], words[LANE.step], words[LANE.lanes], words[LANE.maxSlice]);
  const nSlices = bounds.length - 1;
  const slices = new Int32Array(buffer, offsets[LANE.slices], nSlices);
  const kk = words[LANE.k];
  const scanRatio = new Float32Array(buffer, words.byteOffset, LANE_WORDS)[LANE.scanRatio];
  const scratchIds = offsets[LANE.scratch];
  const scratchDist = scratchIds + words[LANE.maxSlice] * kk * 4;
  const grouped = offsets[LANE.grouped];
  const all = new Int32Array(buffer);
  const open = sliceWord(seq, SLICE_OPEN);
  for (;;) {
    if (Atomics.load(sync, 1) !== seq) return;
    const slice = claim(sync, seq);
    if (slice < 0 || slice >= nSlices) return;
    const from = bounds[slice];
    const count = bounds[slice + 1] - from;
    const queries = offsets[LANE.queries] + from * words[LANE.rowBytes];
    if (grouped) {
      k.searchGrouped(
        offsets[LANE.ctx], grouped, offsets[LANE.groupedBytes], words[LANE.maxSlice], offsets[LANE.rounded], offsets[LANE.units], queries, 0, count, kk, words[LANE.L], words[LANE.nProbe],
        words[LANE.groupProbe], words[LANE.scan], scanRatio, scratchIds, scratchDist,
      );
    } else {
      k.searchRange(
        offsets[LANE.ctx], queries, 0, count, kk, words[LANE.L], words[LANE.nProbe],
        words[LANE.groupProbe], words[LANE.scan], scanRatio, words[LANE.rerankCount], scratchIds, scratchDist,
      );
    }
    if (Atomics.compareExchange(slices, slice, open, sliceWord(seq, SLICE_COPYING)) !== open) continue;
    const rows = count * kk;
    all.copyWithin(offsets[LANE.outIds] / 4 + from * kk, scratchIds / 4, scratchIds / 4 + rows);
    all.copyWithin(offsets[LANE.outDist] / 4 + from * kk, scratchDist / 4, scratchDist / 4 + rows);
    Atomics.store(slices, slice, sliceWord(seq, SLICE_DONE));
  }
}

/**
 * One phase of inserting order[from..to) (assembly/graph.ts buildOut / buildBack), or of the nodes
 * [from, to): trimming their lists (trimLists), pruning their candidates (pruneCandidates), adding
 * their links' reverses (reverseLinks).
 */
export interface BuildTask extends TaskBase {
  kind: BuildKernel;
  lane: number;
  lanes: number;
}

export type WorkerTask = ClaimTask | BuildTask;

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
    // the calling thread may have done the whole batch already (then the slot is no longer POSTED)
    if (Atomics.compareExchange(words, LANE.state, LANE_POSTED, LANE_RUNNING) !== LANE_POSTED) return;
    Atomics.store(words, LANE.pages, bytes >>> 16);
    if (runSlotBatch(k, task.memory, words)) linger(k, task.memory, words);
  } else if (task.kind === 'buildOut') {
    k.buildOut(task.ctx, task.from, task.to);
  } else if (task.kind === 'trimLists') {
    k.trimLists(task.ctx, task.from, task.to);
  } else if (task.kind === 'pruneCandidates') {
    k.pruneCandidates(task.ctx, task.from, task.to);
  } else if (task.kind === 'reverseLinks') {
    k.reverseLinks(task.ctx, task.from, task.to, task.lane, task.lanes);
  } else {
    k.buildBack(task.ctx, task.from, task.to, task.lane, task.lanes);
  }
}

/**
 * Search the batch of a RUNNING slot; the slot is WAITING again (IDLE after a failure, reported in
 * its error word) when the worker is done with it.
 */
function runSlotBatch(k: KernelExports, memory: WebAssembly.Memory, words: Int32Array): boolean {
  let ok = true;
  try {
    searchShare(k, memory, words);
  } catch {
    // a kernel trap: the calling thread searches this lane's open slice and throws when it sees the error word
    ok = false;
    Atomics.store(words, LANE.error, 1);
  }
  Atomics.store(words, LANE.state, ok ? LANE_WAITING : LANE_IDLE);
  return ok;
}

/**
 * Wait in the lane slot (WAITING on entry) for batches handed over by the calling thread and
 * search them, until none comes for LINGER_MS or the caller asks the lane to stop.
 */
function linger(k: KernelExports, memory: WebAssembly.Memory, words: Int32Array): void {
  for (;;) {
    const state = Atomics.load(words, LANE.state);
    if (state === LANE_TAKEN) {
      // the caller takes a batch back (TAKEN -> WAITING) when it searched every query before this worker woke
      if (Atomics.compareExchange(words, LANE.state, LANE_TAKEN, LANE_RUNNING) !== LANE_TAKEN) continue;
      if (!runSlotBatch(k, memory, words)) return;
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
    const gen = Atomics.load(words, LANE.gen);
    if (Atomics.load(words, LANE.state) !== LANE_WAITING) continue;
    if (Atomics.wait(words, LANE.gen, gen, LINGER_MS) === 'timed-out' &&
        Atomics.compareExchange(words, LANE.state, LANE_WAITING, LANE_IDLE) === LANE_WAITING) return;
  }
}
