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
}

/** One phase of inserting order[from..to) (assembly/graph.ts buildOut / buildBack). */
export interface BuildTask extends TaskBase {
  kind: 'buildOut' | 'buildBack';
  lane: number;
  lanes: number;
}

export type WorkerTask = ClaimTask | BuildTask;

/** Claim and search slices of the batch until it is done (see ClaimTask). */
export function searchClaimed(k: KernelExports, memory: WebAssembly.Memory, task: Omit<ClaimTask, 'kind' | 'token' | 'memory' | 'module' | 'from' | 'to'>): void {
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

function kernelsFor(task: TaskBase): KernelExports {
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
  return cached.kernels;
}

export default function runTask(task: WorkerTask): void {
  const k = kernelsFor(task);
  if (task.kind === 'searchClaim') {
    searchClaimed(k, task.memory, task);
  } else if (task.kind === 'buildOut') {
    k.buildOut(task.ctx, task.from, task.to);
  } else {
    k.buildBack(task.ctx, task.from, task.to, task.lane, task.lanes);
  }
}
