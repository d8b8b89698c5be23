/**
 * Worker lanes of batch search. A batch is cut into slices that every lane (the calling thread is
 * lane 0) claims from a shared counter. Each worker lane has a slot (Int32 words in the index's
 * memory, see LANE in worker.ts) that holds its batch. The first batch of a lane goes out as a pool
 * task; when it is done, the worker stays in its slot for LINGER_MS, and the next batch is handed to
 * it with one atomic notify instead of a task message. The calling thread learns that slices are
 * done from their state words, not from reply messages (each message costs an event-loop round
 * trip, a tenth of a batch of 100 small queries). It never waits on a worker: when it has claimed
 * every slice itself before a worker even woke (a busy or descheduled core), it takes that lane's
 * batch back, and a slice a worker still holds a slice's time later it searches itself.
 */
import type { Arena } from './memory.js';
import { platform } from './platform.js';
import {
  type ClaimTask, claimWord, claimedSlice, sliceBounds, LANE, LANE_IDLE, LINGER_MS, LANE_POSTED, LANE_RUNNING, LANE_STOP, LANE_TAKEN, LANE_WAITING, LANE_WORDS,
  SLICE_DONE, SLICE_OPEN, SLICE_STOLEN, sliceWord,
} from './worker.js';
import type { KernelExports } from './kernels/wasm.js';

/** One batch: where its queries and results are, its slices, and each lane's kernel call. */
export interface LaneBatch {
  queries: number;
  nq: number;
  /** Queries per slice, or 0 for slices that shrink as the batch goes, of at most maxSlice (see sliceBounds). */
  step: number;
  maxSlice: number;
  /** Bytes per query row. */
  rowBytes: number;
  outIds: number;
  outDist: number;
  /** Per lane: the searcher context and the searchRange arguments after it ([k, L, ... rerankCount]). */
  ctx: number[];
  calls: number[][];
  /** Per lane: scratch of searchGrouped (offset and bytes) for slices of the batch's largest, or ptr 0 for searchRange. */
  grouped: { ptr: number; bytes: number }[];
  /** The rounded rows and their units searchGrouped scans (0 without grouped lanes). */
  rounded: number;
  units: number;
}

/**
 * The calling thread searches a worker's open slice itself this long (plus one slice's time) after
 * its own share. Tests set it below zero to take every open slice at once.
 */
export const laneTuning = { stealAfterMs: 0.02 };
/** A worker still in the previous batch (it finishes the claim loop just after its last slice) gets this long to leave it. */
const BUSY_LANE_MS = 0.05;
/** Batch sequence numbers wrap within the slice word (see sliceWord). */
const SEQ_MASK = 0x1fffffff;

/** One turn of the event loop (Node: its check phase, right after the messages it has read). */
const nextTurn = (): Promise<void> =>
  new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));

/** Wake the worker sleeping on the slot's generation (a batch or a stop is in the slot). */
function wake(words: Int32Array): void {
  Atomics.add(words, LANE.gen, 1);
  Atomics.notify(words, LANE.gen);
}

/** Ask a worker waiting in the slot, if one is, to leave it. */
function stopWaiting(words: Int32Array): void {
  if (Atomics.compareExchange(words, LANE.state, LANE_WAITING, LANE_STOP) === LANE_WAITING) wake(words);
}

/** Lanes whose workers may be waiting in their slots, to be sent back when other work needs threads. */
const waitingLanes = new Set<WeakRef<BatchLanes>>();

/**
 * Ask every worker waiting in a lane slot (of any index but `except`) to return to the pool, so that
 * a task posted now finds a thread instead of queueing behind a wait. Resolves once the pool has
 * them back (their tasks settled), or after LINGER_MS at most (a worker still searching returns later).
 */
export function releaseWaitingLanes(except?: BatchLanes): Promise<void> {
  const back: Promise<void>[] = [];
  for (const ref of waitingLanes) {
    const lanes = ref.deref();
    if (lanes === except) continue;
    waitingLanes.delete(ref);
    if (lanes) back.push(lanes.release());
  }
  if (back.length === 0) return Promise.resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const most = new Promise<void>((resolve) => (timer = setTimeout(resolve, LINGER_MS)));
  return Promise.race([Promise.all(back).then(() => clearTimeout(timer)), most]);
}

/** The lane slots and batch counters of one index (one arena). */
export class BatchLanes {
  private readonly arena: Arena;
  private readonly token: string;
  /** Slot offset per worker lane (lane t + 1 uses slots[t]). */
  private readonly slots: number[] = [];
  /** Int32 pair: [0] the next slice to claim (see claimWord), [1] the sequence number of the batch in progress. */
  private sync = 0;
  private seq = 0;
  /** Int32 per slice of the batch (see sliceWord), room for sliceRoom. */
  private slices = 0;
  private sliceRoom = 0;
  /** Per worker lane: where its worker searches a slice before publishing it, and the bytes there. */
  private readonly scratch: number[] = [];
  private readonly scratchBytes: number[] = [];
  private readonly self = new WeakRef(this);
  /** How often the rarer paths ran: slices searched here after a worker held them, lanes that sat a batch out. */
  readonly stats = { stolen: 0, satOut: 0, grouped: 0 };
  /** A pool task of these lanes has run: the pool can start workers. */
  private workersStarted = false;
  /** Pool tasks posted whose promises have not settled yet (each as a promise that never rejects). */
  private readonly tasks = new Set<Promise<void>>();

  constructor(arena: Arena, token: string) {
    this.arena = arena;
    this.token = token;
  }

  /**
   * Before a batch is set up: a worker that left its slot is free again only once the pool has read
   * its reply, on this thread's event loop, which a long batch may have kept busy since. Without a
   * turn of the loop a task posted for it would queue behind that reply until the batch is over.
   * (The turn is taken here, before the caller prepares the contexts, because run() must go from
   * their set-up to its own share without yielding: search() calls share lane 0's context.)
   */
  async settle(workers: number): Promise<void> {
    // workers lingering in another index's slots (another shard of this index, say) hold pool
    // threads: this batch's tasks would queue behind their wait and its thread search alone
    await releaseWaitingLanes(this);
    if (this.tasks.size === 0) return;
    const buffer = this.arena.memory.buffer;
    for (let t = 0; t < workers; t++) {
      const state = t < this.slots.length ? Atomics.load(new Int32Array(buffer, this.slots[t], LANE_WORDS), LANE.state) : LANE_IDLE;
      if (state !== LANE_WAITING && state !== LANE_RUNNING) {
        await nextTurn();
        return;
      }
    }
  }

  /** Search a batch on lane 0 (this thread) and batch.ctx.length - 1 worker lanes; resolves when every query is searched. */
  async run(kernels: KernelExports, module: WebAssembly.Module, batch: LaneBatch, poolThreads: number): Promise<void> {
    const workers = batch.ctx.length - 1;
    const bounds = sliceBounds(batch.nq, batch.step, batch.ctx.length, batch.maxSlice);
    const nSlices = bounds.length - 1;
    let maxSlice = 0;
    for (let i = 0; i < nSlices; i++) maxSlice = Math.max(maxSlice, bounds[i + 1] - bounds[i]);
    const [k, L, nProbe, groupProbe, scan, scanRatio, rerankCount] = batch.calls[0];
    this.reserve(workers, nSlices, maxSlice * k * 8);
    const slots = this.assignSlots(workers);
    // the memory grows only in the two calls above: views of it from here on stay whole
    const memory = this.arena.memory;
    const buffer = memory.buffer;
    const seq = (this.seq = (this.seq + 1) & SEQ_MASK);
    const open = sliceWord(seq, SLICE_OPEN);
    const done = sliceWord(seq, SLICE_DONE);
    const slices = new Int32Array(buffer, this.slices, nSlices).fill(open);
    const sync = new Int32Array(buffer, this.sync, 2);
    Atomics.store(sync, 0, claimWord(seq, 0));
    Atomics.store(sync, 1, seq);
    void releaseWaitingLanes(this);
    waitingLanes.add(this.self);
    let failure: unknown;
    const lanes: (Int32Array | undefined)[] = [];
    const posted: (Promise<void> | undefined)[] = [];
    for (let t = 0; t < workers; t++) {
      const slot = slots[t];
      const words = slot === undefined ? undefined : new Int32Array(buffer, slot, LANE_WORDS);
      lanes.push(words);
      posted.push(undefined);
      if (!words) continue;
      this.write(words, batch, t + 1, seq, maxSlice);
      // a worker waiting in the slot takes the batch from here; the state decides against its time-out
      if (Atomics.compareExchange(words, LANE.state, LANE_WAITING, LANE_TAKEN) === LANE_WAITING) {
        wake(words);
        continue;
      }
      Atomics.store(words, LANE.state, LANE_POSTED);
      const task: ClaimTask = { kind: 'searchClaim', token: this.token, memory, module, ctx: 0, from: 0, to: 0, slot: slot! };
      // the task resolves when its worker leaves the slot, long after the batch: only a failure matters here
      const run = platform.runTask(task, poolThreads);
      const settled: Promise<void> = run
        .then(() => void (this.workersStarted = true), (error: unknown) => void (failure ??= error))
        .finally(() => this.tasks.delete(settled));
      this.tasks.add(settled);
      posted[t] = run;
    }
    // this thread's share: slices claimed from the counter until none is left, searched straight into the results
    const grouped = batch.grouped[0].ptr;
    const groupedBytes = batch.grouped[0].bytes;
    const search = (slice: number): void => {
      const from = bounds[slice];
      const to = bounds[slice + 1];
      if (grouped) {
        kernels.searchGrouped(batch.ctx[0], grouped, groupedBytes, maxSlice, batch.rounded, batch.units, batch.queries, from, to, k, L, nProbe, groupProbe, scan, scanRatio, batch.outIds, batch.outDist);
      } else {
        kernels.searchRange(batch.ctx[0], batch.queries, from, to, k, L, nProbe, groupProbe, scan, scanRatio, rerankCount, batch.outIds, batch.outDist);
      }
    };
    if (grouped) this.stats.grouped += nSlices;
    const start = performance.now();
    let mineQueries = 0;
    for (let slice = claimedSlice(Atomics.add(sync, 0, 1)); slice < nSlices; slice = claimedSlice(Atomics.add(sync, 0, 1))) {
      search(slice);
      slices[slice] = done;
      mineQueries += bounds[slice + 1] - bounds[slice];
    }
    // every slice is claimed: a lane whose worker has not started takes no part
    const neverRan: Promise<void>[] = [];
    for (let t = 0; t < workers; t++) {
      const words = lanes[t];
      if (!words) continue;
      if (Atomics.compareExchange(words, LANE.state, LANE_TAKEN, LANE_WAITING) === LANE_TAKEN) continue;
      if (Atomics.compareExchange(words, LANE.state, LANE_POSTED, LANE_IDLE) === LANE_POSTED) {
        if (!this.workersStarted) neverRan.push(posted[t]!);
        continue;
      }
      this.workersStarted = true;
    }
    // the slices workers hold: give each about its own time (at this thread's pace per query), then
    // search what is still open here (a worker whose core was taken away mid-slice would otherwise
    // hold the batch for milliseconds); a worker that finishes a slice searched here drops its copy.
    // Slices differ in size (shrinking ones start at 1 / (2 lanes) of the batch): a deadline of one
    // average slice would take a worker's first slice from it while it is still on pace.
    const now = performance.now();
    const perQuery = mineQueries > 0 ? (now - start) / mineQueries : 0;
    for (let s = 0; s < nSlices; s++) {
      const deadline = now + perQuery * (bounds[s + 1] - bounds[s]) + laneTuning.stealAfterMs;
      for (;;) {
        const state = Atomics.load(slices, s);
        if (state === done) break;
        // COPYING: the worker is writing the slice's results, a copy of a few kilobytes
        if (state === open && performance.now() >= deadline &&
            Atomics.compareExchange(slices, s, open, sliceWord(seq, SLICE_STOLEN)) === open) {
          search(s);
          this.stats.stolen++;
          break;
        }
      }
    }
    // Only now may this call wait: search() calls in the meantime share lane 0's context (its allow
    // field among others). Until one worker has started, a task that never ran may be a pool that
    // cannot start any (a worker file missing beside a browser bundle): its failure is this call's.
    for (const run of neverRan) await run.catch((error: unknown) => (failure ??= error));
    if (failure !== undefined) throw failure;
    for (const words of lanes) {
      if (words && Atomics.load(words, LANE.error) !== 0) {
        // a kernel trap in a worker: a bug, never bad input (which is checked before any lane runs)
        throw new Error('zgq internal error: a worker thread failed while searching its share of a batch');
      }
    }
  }

  /** Send the workers waiting in this index's slots back to the pool; resolves once every task of these lanes has settled. */
  release(): Promise<void> {
    const buffer = this.arena.memory.buffer;
    for (const slot of this.slots) stopWaiting(new Int32Array(buffer, slot, LANE_WORDS));
    return Promise.all(this.tasks).then(() => undefined);
  }

  /**
   * The slot of worker lane t: the one in use while its worker waits on kernels made for this
   * memory size or no worker is in it; otherwise (a worker with kernels from before the memory
   * grew, or one still leaving) that worker is sent away and the lane gets a fresh slot, so no two
   * workers ever share one. Undefined while the lane's worker is still in an earlier batch (its
   * core was taken away mid-slice, and that slice was searched without it): the lane's context is
   * in use, so the lane sits this batch out.
   */
  private slotFor(t: number, pages: number): number | undefined {
    if (t < this.slots.length) {
      const words = new Int32Array(this.arena.memory.buffer, this.slots[t], LANE_WORDS);
      const until = performance.now() + BUSY_LANE_MS;
      while (Atomics.load(words, LANE.state) === LANE_RUNNING) {
        if (performance.now() < until) continue;
        this.stats.satOut++;
        return undefined;
      }
      const state = Atomics.load(words, LANE.state);
      if (state === LANE_IDLE || (state === LANE_WAITING && Atomics.load(words, LANE.pages) === pages)) return this.slots[t];
      stopWaiting(words);
    }
    const slot = this.arena.alloc(LANE_WORDS * 4);
    new Int32Array(this.arena.memory.buffer, slot, LANE_WORDS).fill(0);
    this.slots[t] = slot;
    return slot;
  }

  /**
   * The slots of this batch's worker lanes (see slotFor), chosen again if a fresh slot grew the
   * memory meanwhile: a worker waiting in an earlier lane's slot has kernels for the smaller memory.
   */
  private assignSlots(workers: number): (number | undefined)[] {
    for (;;) {
      const pages = this.arena.memory.buffer.byteLength >>> 16;
      const slots = Array.from({ length: workers }, (_, t) => this.slotFor(t, pages));
      if (this.arena.memory.buffer.byteLength >>> 16 === pages) return slots;
    }
  }

  /** Room for a batch's counters and slice words, and per worker lane a slice's results. */
  private reserve(workers: number, nSlices: number, sliceBytes: number): void {
    if (!this.sync) this.sync = this.arena.alloc(8);
    if (this.sliceRoom < nSlices) {
      this.sliceRoom = Math.max(nSlices, this.sliceRoom * 2);
      this.slices = this.arena.alloc(this.sliceRoom * 4);
    }
    for (let t = 0; t < workers; t++) {
      if ((this.scratchBytes[t] ?? 0) >= sliceBytes) continue;
      // a worker still searching into the old scratch keeps it: the arena never hands it out again
      this.scratchBytes[t] = Math.max(sliceBytes, (this.scratchBytes[t] ?? 0) * 2);
      this.scratch[t] = this.arena.alloc(this.scratchBytes[t]);
    }
  }

  /** Write lane's batch into its slot (read by a waiting worker once the state says TAKEN). */
  private write(words: Int32Array, batch: LaneBatch, lane: number, seq: number, maxSlice: number): void {
    const call = batch.calls[lane];
    words[LANE.error] = 0;
    words[LANE.ctx] = batch.ctx[lane];
    words[LANE.k] = call[0];
    words[LANE.L] = call[1];
    words[LANE.nProbe] = call[2];
    words[LANE.groupProbe] = call[3];
    words[LANE.scan] = call[4];
    new Float32Array(words.buffer, words.byteOffset, LANE_WORDS)[LANE.scanRatio] = call[5];
    words[LANE.rerankCount] = call[6];
    words[LANE.queries] = batch.queries;
    words[LANE.nq] = batch.nq;
    words[LANE.step] = batch.step;
    words[LANE.lanes] = batch.ctx.length;
    words[LANE.maxSlice] = maxSlice;
    words[LANE.grouped] = batch.grouped[lane].ptr;
    words[LANE.groupedBytes] = batch.grouped[lane].bytes;
    words[LANE.rounded] = batch.rounded;
    words[LANE.units] = batch.units;
    words[LANE.sync] = this.sync;
    words[LANE.outIds] = batch.outIds;
    words[LANE.outDist] = batch.outDist;
    words[LANE.seq] = seq;
    words[LANE.slices] = this.slices;
    words[LANE.rowBytes] = batch.rowBytes;
    words[LANE.scratch] = this.scratch[lane - 1];
  }
}
