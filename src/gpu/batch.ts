/**
 * searchBatch on the GPU (`device: 'gpu' | 'auto'`): the zones of each query selected here as a
 * search selects them (the same selection tree), then the stored rows of those zones, and of the
 * nodes appended since the layout, scanned with exact distances on the GPU (src/gpu/scan.ts); only
 * k ids and distances per query come back. It is an inverted-file search with exact distances:
 * nProbe sets its recall, and the scan traversals ('scan', 'fastscan') scan every row, the exact
 * brute force. What the GPU cannot take runs on the CPU, and says why.
 */
import type { Built } from '../built.js';
import { ZGQError } from '../errors.js';
import { describeValue } from '../validate.js';
import type { ResolvedSearchOptions } from '../options.js';
import type { Pacer } from '../pace.js';
import { scansEveryVector } from '../options.js';
import { Router, zoneTableOf } from '../shards.js';
import { GPU_MAX_DIM, GPU_MAX_K, GpuRowScan } from './scan.js';
import { deviceFor, whyRefused } from './webgpu.js';

export type Device = 'cpu' | 'gpu' | 'auto';

/** A `device` option as given (undefined: 'cpu'), checked. */
export function checkDevice(value: unknown): Device {
  if (value === undefined) return 'cpu';
  if (value !== 'cpu' && value !== 'gpu' && value !== 'auto') throw new ZGQError('INVALID_ARGUMENT', `device must be 'cpu', 'gpu' or 'auto'; got ${describeValue(value)}`);
  return value;
}

/** Under 'auto', batches smaller than this stay on the CPU (the transfer and dispatch cost more than they save). */
export const GPU_MIN_BATCH = 256;

/**
 * Where the last work that can run on the GPU ran (a batch, or a build's zone assignment and graph
 * candidates), on what, and why not the GPU when it did not. A build whose zones were assigned on
 * the GPU and whose graph was linked without it says 'cpu' with the reason, or 'gpu' with a reason
 * when the graph was never asked of it (per-zone graphs).
 */
export interface DeviceUse {
  op: 'searchBatch' | 'build';
  ran: 'gpu' | 'cpu';
  /** The GPU adapter, when one was opened. */
  adapter: string | null;
  /** Why the work (or, for a build, part of it) ran on the CPU although the GPU was asked for; null when it all ran there or the GPU was not asked. */
  reason: string | null;
}

/**
 * An index's rows on the GPU and its zone selection, kept between batches: written again only for
 * a new layout (its old buffer freed at once: the garbage collector does not see GPU memory), and
 * only the appended rows after an add in place. One per ZGQIndex; release() frees it.
 */
export class GpuResident {
  private held: { built: Built; device: GPUDevice; scan: GpuRowScan; router: Router; n: number } | null = null;

  /** The rows of `built` on `device`, up to date. */
  async rowsOf(built: Built, device: GPUDevice): Promise<{ scan: GpuRowScan; router: Router }> {
    const lay = built.layout;
    const { arena } = built.kernels;
    let held = this.held;
    if (!held || held.built !== built || held.device !== device) {
      this.release();
      const scan = await GpuRowScan.create(device, { n: lay.n, dim: lay.dim, half: lay.halfStorage, metric: lay.metric }, lay.capacity);
      held = this.held = { built, device, scan, router: new Router([zoneTableOf(built)], lay.dim, lay.metric), n: 0 };
    }
    if (held.n !== lay.n) {
      // rows are only ever appended within one layout (every other change makes a new one)
      const rows = lay.halfStorage ? arena.u16(lay.vectorsPtr, lay.n * lay.dim) : arena.f32(lay.vectorsPtr, lay.n * lay.dim);
      held.scan.write(rows, held.n, lay.n);
      held.n = lay.n;
    }
    return held;
  }

  release(): void {
    this.held?.scan.destroy();
    this.held = null;
  }
}

/**
 * The batch on the GPU (node ids and kernel distances, as runBatch returns them), or the reason it
 * must run on the CPU; `pacer` gives the event loop its turns and stops an aborted batch.
 */
export async function gpuBatch(
  built: Built, resident: GpuResident, queries: Float32Array, nq: number, k: number, opts: ResolvedSearchOptions, filtered: boolean,
  device: Exclude<Device, 'cpu'>, pacer: Pacer,
): Promise<{ ids: Uint32Array; distances: Float32Array; adapter: string } | { reason: string; adapter: string | null }> {
  const lay = built.layout;
  if (nq === 0) return { reason: 'an empty batch', adapter: null };
  if (device === 'auto' && nq < GPU_MIN_BATCH) return { reason: `a batch of ${nq} queries (the GPU takes ${GPU_MIN_BATCH} or more under 'auto')`, adapter: null };
  if (filtered) return { reason: 'filters run on the CPU', adapter: null };
  if (k > GPU_MAX_K) return { reason: `k = ${k} (the GPU path returns at most ${GPU_MAX_K})`, adapter: null };
  if (lay.dim > GPU_MAX_DIM) return { reason: `${lay.dim} dimensions (the GPU path takes at most ${GPU_MAX_DIM})`, adapter: null };
  if (built.rows || !lay.vectorsPtr) return { reason: "the rows live outside the index's memory", adapter: null };
  const gpu = await deviceFor(device);
  if ('reason' in gpu) return gpu;
  try {
    const { scan, router } = await resident.rowsOf(built, gpu.device);
    const { ranges, per } = await rangesOf(built, router, queries, nq, opts, pacer);
    const removed = built.removed.count > 0 ? built.removed.bits : null;
    const out = await scan.scan(queries, nq, ranges, per, k, removed, () => pacer.step());
    await pacer.step(); // a batch aborted while the GPU ran stops here
    return { ids: out.rows, distances: out.distances, adapter: gpu.adapter };
  } catch (err) {
    if (err instanceof ZGQError) throw err; // ABORTED
    return { reason: await whyRefused(gpu.device, err, 'the batch'), adapter: gpu.adapter };
  }
}

/**
 * The row ranges each query scans: its nProbe zones (rows [zoneStart[z], zoneStart[z + 1])) and
 * the nodes appended since the layout ([zoned, n)); every row for the scan traversals.
 */
async function rangesOf(
  built: Built, router: Router, queries: Float32Array, nq: number, opts: ResolvedSearchOptions, pacer: Pacer,
): Promise<{ ranges: Uint32Array; per: number }> {
  const lay = built.layout;
  if (scansEveryVector(opts.traversal)) {
    const ranges = new Uint32Array(nq * 2);
    for (let q = 0; q < nq; q++) ranges[q * 2 + 1] = lay.n;
    return { ranges, per: 1 };
  }
  const zoneStart = built.kernels.arena.u32(lay.zoneStartPtr, lay.nZones + 1).slice();
  const probe = Math.min(opts.nProbe, lay.nZones);
  const tail = built.zoned < lay.n;
  const per = probe + (tail ? 1 : 0);
  const ranges = new Uint32Array(nq * per * 2);
  const dim = lay.dim;
  for (let q = 0; q < nq; q++) {
    if (pacer.due) await pacer.step();
    router.query().set(queries.subarray(q * dim, (q + 1) * dim));
    const zones = router.nearestZones(probe);
    for (let r = 0; r < zones.length; r++) {
      ranges[(q * per + r) * 2] = zoneStart[zones[r]];
      ranges[(q * per + r) * 2 + 1] = zoneStart[zones[r] + 1];
    }
    if (tail) {
      ranges[(q * per + probe) * 2] = built.zoned;
      ranges[(q * per + probe) * 2 + 1] = lay.n;
    }
  }
  return { ranges, per };
}
