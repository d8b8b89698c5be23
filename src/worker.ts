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

/** One phase of inserting order[from..to) (assembly/graph.ts buildOut / buildBack). */
export interface BuildTask extends TaskBase {
  kind: 'buildOut' | 'buildBack';
  lane: number;
  lanes: number;
}

export type WorkerTask = RangeTask | BuildTask;

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
  if (task.kind === 'searchRange') {
    const [kk, L, nProbe, groupProbe, scan, scanRatio, rerankCount] = task.call;
    k.searchRange(task.ctx, task.queries, task.from, task.to, kk, L, nProbe, groupProbe, scan, scanRatio, rerankCount, task.outIds, task.outDist);
  } else if (task.kind === 'buildOut') {
    k.buildOut(task.ctx, task.from, task.to);
  } else {
    k.buildBack(task.ctx, task.from, task.to, task.lane, task.lanes);
  }
}
