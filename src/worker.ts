/**
 * Worker-thread side of parallel batch search. Each task names a slice of a batch whose queries,
 * context blocks and result slots already sit in the index's shared memory; the worker runs one
 * `searchRange` kernel call on it. Instances are cached per index (a few at most), so a worker
 * instantiates the kernels once per index, on the same memory as the main thread.
 */
import type { KernelExports } from './kernels/wasm.js';

export interface RangeTask {
  /** Identifies the index (its memory) across tasks. */
  token: string;
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  ctx: number;
  queries: number;
  from: number;
  to: number;
  /** k, L, nProbe, groupProbe, scan, scanRatio, rerankCount (see Searcher.plan). */
  call: number[];
  outIds: number;
  outDist: number;
}

const MAX_CACHED = 4;
const instances = new Map<string, KernelExports>();

export default function searchSlice(task: RangeTask): void {
  let kernels = instances.get(task.token);
  if (!kernels) {
    kernels = new WebAssembly.Instance(task.module, { env: { memory: task.memory } }).exports as unknown as KernelExports;
    instances.set(task.token, kernels);
    // drop the oldest index so a long-lived pool does not pin every memory it has seen
    if (instances.size > MAX_CACHED) instances.delete(instances.keys().next().value as string);
  }
  const [k, L, nProbe, groupProbe, scan, scanRatio, rerankCount] = task.call;
  kernels.searchRange(task.ctx, task.queries, task.from, task.to, k, L, nProbe, groupProbe, scan, scanRatio, rerankCount, task.outIds, task.outDist);
}
