/**
 * The rows' nearest zone centroids on the GPU, for a build's zones (`device: 'gpu' | 'auto'`): the
 * centroids go up as the rows of the range scan (src/gpu/scan.ts) and the build's rows come as its
 * queries, a chunk at a time, each scanning every centroid for its `choices` nearest (ties to the
 * lower centroid, as the CPU's assignment breaks them): the first is the row's zone, the others the
 * zones its graph candidates come from (src/gpu/neighbours.ts). What the GPU cannot take runs on the
 * CPU, and says why.
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

/**
 * Each row's `choices` nearest of the k centroids (nearest[row * choices + c], nearest first) and
 * their squared distances, with the device they were found on; or why not on the GPU.
 */
export async function gpuAssign(
  x: InputRows, n: number, dim: number, centroids: Float32Array, k: number, choices: number, device: Exclude<Device, 'cpu'>, pacer: Pacer,
): Promise<{ nearest: Uint32Array; dist: Float32Array; device: GPUDevice; adapter: string } | { reason: string; adapter: string | null }> {
  if (device === 'auto' && n < GPU_MIN_ASSIGN_ROWS) return { reason: `${n} rows (the GPU assigns ${GPU_MIN_ASSIGN_ROWS} or more under 'auto')`, adapter: null };
  if (dim > GPU_MAX_DIM) return { reason: `${dim} dimensions (the GPU path takes at most ${GPU_MAX_DIM})`, adapter: null };
  const gpu = await deviceFor(device);
  if ('reason' in gpu) return gpu;
  try {
    const scan = await GpuRowScan.create(gpu.device, { n: k, dim, half: false, metric: METRIC_L2 }, k);
    try {
      scan.write(centroids, 0, k);
      const nearest = new Uint32Array(n * choices);
      const dist = new Float32Array(n * choices);
      const chunk = Math.max(1, Math.min(CHUNK_ROWS, Math.floor(gpu.device.limits.maxStorageBufferBindingSize / (dim * 4))));
      const rows = new Float32Array(Math.min(n, chunk) * dim);
      for (let start = 0; start < n; start += chunk) {
        const count = Math.min(chunk, n - start);
        x.copy(start, count, rows);
        const ranges = new Uint32Array(count * 2);
        for (let i = 0; i < count; i++) ranges[i * 2 + 1] = k;
        const got = await scan.scan(rows.subarray(0, count * dim), count, ranges, 1, choices, null, () => pacer.step());
        nearest.set(got.rows, start * choices);
        dist.set(got.distances, start * choices);
        await pacer.step();
      }
      return { nearest, dist, device: gpu.device, adapter: gpu.adapter };
    } finally {
      scan.destroy();
    }
  } catch (err) {
    if (err instanceof ZGQError) throw err; // ABORTED
    return { reason: await whyRefused(gpu.device, err, 'the zone assignment'), adapter: gpu.adapter };
  }
}
