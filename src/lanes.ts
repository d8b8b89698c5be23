/**
 * Worker lanes of batch search. A batch is cut into slices that every lane (the calling thread is
 * lane 0) claims from a shared counter. Each worker lane has a slot (Int32 words in the index's
 * memory, see LANE in worker.ts) that holds its batch. The first batch of a lane goes out as a pool
 * task; when it is done, the worker stays in its slot for LINGER_MS, and the next batch is handed to
 * it with one atomic notify instead of a task message. The calling thread learns that lanes are done
 * from a shared count, not from reply messages (each message costs an event-loop round trip, a
 * tenth of a batch of 100 small queries), and when it has claimed every slice itself before a worker
 * even woke (a busy or descheduled core), it takes that lane's batch back instead of waiting.
 */
import type { Arena } from './memory.js';
import { platform } from './platform.js';
import {
  type ClaimTask, LANE, LANE_IDLE, LANE_POSTED, LANE_RUNNING, LANE_STOP, LANE_TAKEN, LANE_WAITING, LANE_WORDS, searchClaimed,
} from './worker.js';
import type { KernelExports } from './kernels/wasm.js';

/** One batch: where its queries and results are, the claim step, and each lane's kernel call. */
export interface LaneBatch {
  queries: number;
  nq: number;
  step: number;
  outIds: number;
  outDist: number;
  /** Per lane: the searcher context and the searchRange arguments after it ([k, L, ... rerankCount]). */
  ctx: number[];
  calls: number[][];
}

/** The calling thread watches the done count this long before it sleeps on it. */
const DONE_SPIN_MS = 2;
/** Sleeps on the done count are cut at this length, to notice a failed pool task. */
const DONE_WAIT_MS = 50;

type WaitAsync = (view: Int32Array, index: number, value: number, timeout: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

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
 * a task posted now finds a thread instead of queueing behind a wait.
 */
export function releaseWaitingLanes(except?: BatchLanes): void {
  for (const ref of waitingLanes) {
    const lanes = ref.deref();
    if (lanes === except) continue;
    waitingLanes.delete(ref);
    lanes?.release();
  }
}

/** The lane slots and batch counters of one index (one arena). */
export class BatchLanes {
  private readonly arena: Arena;
  private readonly token: string;
  /** Slot offset per worker lane (lane t + 1 uses slots[t]). */
  private readonly slots: number[] = [];
  /** Int32 pair: [0] the next query to claim, [1] worker lanes done. */
  private sync = 0;
  private readonly self = new WeakRef(this);
  /** A pool task of these lanes has run: the pool can start workers. */
  private workersStarted = false;
  /** Pool tasks posted whose promises have not settled yet. */
  private unsettled = 0;

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
    if (this.unsettled === 0) return;
    const buffer = this.arena.memory.buffer;
    for (let t = 0; t < workers; t++) {
      if (t >= this.slots.length || Atomics.load(new Int32Array(buffer, this.slots[t], LANE_WORDS), LANE.state) !== LANE_WAITING) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        return;
      }
    }
  }

  /** Search a batch on lane 0 (this thread) and batch.ctx.length - 1 worker lanes; resolves when every query is searched. */
  async run(kernels: KernelExports, module: WebAssembly.Module, batch: LaneBatch, poolThreads: number): Promise<void> {
    const workers = batch.ctx.length - 1;
    const memory = this.arena.memory;
    if (!this.sync) this.sync = this.arena.alloc(8);
    const sync = new Int32Array(memory.buffer, this.sync, 2);
    Atomics.store(sync, 0, 0);
    Atomics.store(sync, 1, 0);
    releaseWaitingLanes(this);
    waitingLanes.add(this.self);
    const pages = memory.buffer.byteLength >>> 16;
    let failure: unknown;
    const lanes: Int32Array[] = [];
    const posted: (Promise<void> | undefined)[] = [];
    for (let t = 0; t < workers; t++) {
      const slot = this.slotFor(t, pages);
      const words = new Int32Array(memory.buffer, slot, LANE_WORDS);
      lanes.push(words);
      this.write(words, batch, t + 1);
      // a worker waiting in the slot takes the batch from here; the state decides against its time-out
      if (Atomics.compareExchange(words, LANE.state, LANE_WAITING, LANE_TAKEN) === LANE_WAITING) {
        wake(words);
        posted.push(undefined);
        continue;
      }
      Atomics.store(words, LANE.state, LANE_POSTED);
      const task: ClaimTask = { kind: 'searchClaim', token: this.token, memory, module, ctx: 0, from: 0, to: 0, slot };
      // the task resolves when its worker leaves the slot, long after the batch: only a failure matters here
      const run = platform.runTask(task, poolThreads);
      this.unsettled++;
      run.then(() => (this.workersStarted = true), (error: unknown) => (failure ??= error)).finally(() => this.unsettled--);
      posted.push(run);
    }
    searchClaimed(kernels, memory, {
      ctx: batch.ctx[0], call: batch.calls[0], queries: batch.queries, nq: batch.nq, step: batch.step,
      counter: this.sync, outIds: batch.outIds, outDist: batch.outDist,
    });
    // every slice is claimed: a lane whose worker has not started takes no part; the others finish
    // the slices they hold
    let expected = workers;
    for (let t = 0; t < workers; t++) {
      const words = lanes[t];
      if (Atomics.compareExchange(words, LANE.state, LANE_TAKEN, LANE_WAITING) === LANE_TAKEN) {
        expected--;
      } else if (Atomics.compareExchange(words, LANE.state, LANE_POSTED, LANE_IDLE) === LANE_POSTED) {
        expected--;
        // until one worker has started, a task that never ran may be a pool that cannot start any
        // (a worker file missing beside a browser bundle): its failure is this call's
        if (!this.workersStarted) await posted[t]!.catch((error: unknown) => (failure ??= error));
      }
    }
    const spinUntil = performance.now() + DONE_SPIN_MS;
    for (;;) {
      const done = Atomics.load(sync, 1);
      if (done >= expected) break;
      // a failed task never counts itself done: stop waiting once no other lane is still searching
      if (failure !== undefined && !lanes.some((words) => Atomics.load(words, LANE.state) === LANE_RUNNING)) break;
      if (performance.now() < spinUntil) continue;
      if (waitAsync) {
        const wait = waitAsync(sync, 1, done, DONE_WAIT_MS);
        if (wait.async) await wait.value;
      } else {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    if (failure !== undefined) throw failure;
    if (expected > 0) this.workersStarted = true;
    for (const words of lanes) {
      if (Atomics.load(words, LANE.error) !== 0) {
        // a kernel trap in a worker: a bug, never bad input (which is checked before any lane runs)
        throw new Error('zgq internal error: a worker thread failed while searching its share of a batch');
      }
    }
  }

  /** Send the workers waiting in this index's slots back to the pool. */
  release(): void {
    const buffer = this.arena.memory.buffer;
    for (const slot of this.slots) stopWaiting(new Int32Array(buffer, slot, LANE_WORDS));
  }

  /**
   * The slot of worker lane t: the one in use while its worker waits on kernels made for this
   * memory size or no worker is in it; otherwise (a worker with kernels from before the memory
   * grew, or one still leaving) that worker is sent away and the lane gets a fresh slot, so no two
   * workers ever share one.
   */
  private slotFor(t: number, pages: number): number {
    if (t < this.slots.length) {
      const words = new Int32Array(this.arena.memory.buffer, this.slots[t], LANE_WORDS);
      const state = Atomics.load(words, LANE.state);
      if (state === LANE_IDLE || (state === LANE_WAITING && Atomics.load(words, LANE.pages) === pages)) return this.slots[t];
      stopWaiting(words);
    }
    const slot = this.arena.alloc(LANE_WORDS * 4);
    new Int32Array(this.arena.memory.buffer, slot, LANE_WORDS).fill(0);
    this.slots[t] = slot;
    return slot;
  }

  /** Write lane's batch into its slot (read by a waiting worker once the state says TAKEN). */
  private write(words: Int32Array, batch: LaneBatch, lane: number): void {
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
    words[LANE.counter] = this.sync;
    words[LANE.outIds] = batch.outIds;
    words[LANE.outDist] = batch.outDist;
    words[LANE.done] = this.sync + 4;
  }
}
