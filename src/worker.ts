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

/** Search queries [from, to) of a batch (assembly/query.ts searchRange). */
export interface RangeTask extends TaskBase {
  kind: 'searchRange';
  queries: number;
  /** k, L, nProbe, groupProbe, scan, scanRatio, rerankCount (see Searcher.plan). */
  call: number[];
  outIds: number;
  outDist: number;
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

export type WorkerTask = RangeTask | ClaimTask | BuildTask;

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
const instances = new Map<string, KernelExports>();

function kernelsFor(task: TaskBase): KernelExports {
  let kernels = instances.get(task.token);
  if (!kernels) {
    kernels = new WebAssembly.Instance(task.module, { env: { memory: task.memory } }).exports as unknown as KernelExports;
    instances.set(task.token, kernels);
    // drop the oldest memory so a long-lived pool does not pin every index it has seen
    if (instances.size > MAX_CACHED) instances.delete(instances.keys().next().value as string);
  }
  return kernels;
}

export default function runTask(task: WorkerTask): void {
  const k = kernelsFor(task);
  if (task.kind === 'searchClaim') {
    searchClaimed(k, task.memory, task);
  } else if (task.kind === 'searchRange') {
    const [kk, L, nProbe, groupProbe, scan, scanRatio, rerankCount] = task.call;
    k.searchRange(task.ctx, task.queries, task.from, task.to, kk, L, nProbe, groupProbe, scan, scanRatio, rerankCount, task.outIds, task.outDist);
  } else if (task.kind === 'buildOut') {
    k.buildOut(task.ctx, task.from, task.to);
  } else {
    k.buildBack(task.ctx, task.from, task.to, task.lane, task.lanes);
  }
}
