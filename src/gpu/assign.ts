/**
 * The rows' nearest zone centroids on the GPU, for a build's zones (`device: 'gpu' | 'auto'`): the
 * centroids go up as the rows of the range scan (src/gpu/scan.ts) and the build's rows come as its
 * queries, a chunk at a time, each scanning every centroid for its nearest (k = 1; ties to the lower
 * centroid, as the CPU's assignment breaks them). What the GPU cannot take runs on the CPU, and
 * says why.
 */
import { ZGQError } from '../errors.js';
import type { InputRows } from '../input.js';
import { METRIC_L2 } from '../kernels/wasm.js';
import type { Pacer } from '../pace.js';
import type { Device } from './batch.js';
import { GPU_MAX_DIM, GpuRowScan } from './scan.js';
import { deviceFor, whyRefused } from './webgpu.js';

/** Under 'auto', builds of fewer rows assign on the CPU (the GPU's set-up costs more than it saves). */
export const GPU_MIN_ASSIGN_ROWS = 50_000;
/** Rows sent to the GPU at a time. */
const CHUNK_ROWS = 65_536;

export async function gpuAssign(
  x: InputRows, n: number, dim: number, centroids: Float32Array, k: number, device: Exclude<Device, 'cpu'>, pacer: Pacer,
): Promise<{ nearest: Uint32Array; dist: Float32Array; adapter: string } | { reason: string; adapter: string | null }> {
  if (device === 'auto' && n < GPU_MIN_ASSIGN_ROWS) return { reason: `${n} rows (the GPU assigns ${GPU_MIN_ASSIGN_ROWS} or more under 'auto')`, adapter: null };
  if (dim > GPU_MAX_DIM) return { reason: `${dim} dimensions (the GPU path takes at most ${GPU_MAX_DIM})`, adapter: null };
  const gpu = await deviceFor(device);
  if ('reason' in gpu) return gpu;
  try {
    const scan = await GpuRowScan.create(gpu.device, { n: k, dim, half: false, metric: METRIC_L2 }, k);
    try {
      scan.write(centroids, 0, k);
      const nearest = new Uint32Array(n);
      const dist = new Float32Array(n);
      const chunk = Math.max(1, Math.min(CHUNK_ROWS, Math.floor(gpu.device.limits.maxStorageBufferBindingSize / (dim * 4))));
      const rows = new Float32Array(Math.min(n, chunk) * dim);
      for (let start = 0; start < n; start += chunk) {
        const count = Math.min(chunk, n - start);
        x.copy(start, count, rows);
        const ranges = new Uint32Array(count * 2);
        for (let i = 0; i < count; i++) ranges[i * 2 + 1] = k;
        const got = await scan.scan(rows.subarray(0, count * dim), count, ranges, 1, 1, null, () => pacer.step());
        nearest.set(got.rows, start);
        dist.set(got.distances, start);
        await pacer.step();
      }
      return { nearest, dist, adapter: gpu.adapter };
    } finally {
      scan.destroy();
    }
  } catch (err) {
    if (err instanceof ZGQError) throw err; // ABORTED
    return { reason: await whyRefused(gpu.device, err, 'the zone assignment'), adapter: gpu.adapter };
  }
}
