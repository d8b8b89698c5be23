/**
 * Exact top-k over row ranges on the GPU: for each query, the k nearest stored rows (float32, or
 * binary16 as the index stores them) among the rows of its ranges (its zones; one range of every
 * row for an exact brute-force search), removed rows skipped. Only k ids and distances per query
 * come back. The twin is src/kernels/reference/range-top-k.ts.
 *
 * One workgroup per query: its WG threads take the rows of the ranges in turn, each keeping its own
 * sorted k nearest; the WG lists are then merged pairwise in log2(WG) rounds through a scratch
 * buffer, and thread 0 writes the result. Order: distance, then row (ties are broken the same way
 * on every device). Distances are the kernels': squared L2, or -q·x under inner product.
 */
import { checked, outputBuffer, readBuffers, uploadBuffer, USAGE } from './webgpu.js';
import { METRIC_IP } from '../kernels/wasm.js';

/** Threads per workgroup (a multiple of every GPU's SIMD width). */
const WG = 64;
/** Largest k on the GPU: each thread holds its k nearest in registers (k rounded up to a bucket). */
export const GPU_MAX_K = 128;
const K_BUCKETS = [16, 32, 64, 128];
/** Scratch per dispatch (each query's WG lists of up to KMAX entries), bounding the queries per dispatch. */
const SCRATCH_BYTES = 64 << 20;
/** Largest dimension: the query sits in workgroup memory (16 KiB in every WebGPU implementation). */
export const GPU_MAX_DIM = 4096;
/** Workgroups in one dimension of a dispatch (WebGPU's default limit); more go in a second dimension. */
const MAX_GROUPS_X = 65535;

export interface RowShape {
  n: number;
  dim: number;
  /** Rows are binary16 bits (Uint16Array[n * dim]) rather than float32. */
  half: boolean;
  /** Kernel metric code (METRIC_L2 or METRIC_IP). */
  metric: number;
}

/** The WGSL of the scan for one row shape and k bucket. */
export function scanShader(shape: RowShape, kmax: number): string {
  const { dim, half, metric } = shape;
  const ip = metric === METRIC_IP;
  const term = ip ? 'acc -= qv * v;' : 'let e = qv - v;\n      acc += e * e;';
  let load: string;
  if (!half) {
    load = `for (var j = 0u; j < DIM; j++) {
      let qv = q[j];
      let v = bitcast<f32>(rows[row * DIM + j]);
      ${term}
    }`;
  } else if (dim % 2 === 0) {
    load = `for (var j = 0u; j < DIM; j += 2u) {
      let pair = unpack2x16float(rows[(row * DIM + j) >> 1u]);
      {
        let qv = q[j];
        let v = pair.x;
        ${term}
      }
      {
        let qv = q[j + 1u];
        let v = pair.y;
        ${term}
      }
    }`;
  } else {
    load = `for (var j = 0u; j < DIM; j++) {
      let at = row * DIM + j;
      let qv = q[j];
      let v = unpack2x16float(rows[at >> 1u])[at & 1u];
      ${term}
    }`;
  }
  return /* wgsl */ `
struct Params {
  nq: u32,
  k: u32,
  ranges: u32,
  hasRemoved: u32,
}

@group(0) @binding(0) var<storage, read> rows: array<u32>;
@group(0) @binding(1) var<storage, read> queries: array<f32>;
@group(0) @binding(2) var<storage, read> ranges: array<u32>;
@group(0) @binding(3) var<storage, read> removed: array<u32>;
@group(0) @binding(4) var<storage, read_write> scratchD: array<f32>;
@group(0) @binding(5) var<storage, read_write> scratchI: array<u32>;
@group(0) @binding(6) var<storage, read_write> outIds: array<u32>;
@group(0) @binding(7) var<storage, read_write> outDist: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

const DIM: u32 = ${dim}u;
const KMAX: u32 = ${kmax}u;
const WG: u32 = ${WG}u;
const NONE: u32 = 0xffffffffu;
// the distance of an empty slot (WGSL has no infinity): the host reads it back as Infinity
const FAR: f32 = 3.4028234e38;

var<workgroup> q: array<f32, ${dim}>;

fn before(d: f32, i: u32, e: f32, j: u32) -> bool {
  return d < e || (d == e && i < j);
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let query = group.x + group.y * ${MAX_GROUPS_X}u;
  if (query >= params.nq) {
    return;
  }
  for (var j = t; j < DIM; j += WG) {
    q[j] = queries[query * DIM + j];
  }
  workgroupBarrier();
  let k = params.k;
  var bestD: array<f32, KMAX>;
  var bestI: array<u32, KMAX>;
  for (var i = 0u; i < KMAX; i++) {
    bestD[i] = FAR;
    bestI[i] = NONE;
  }
  for (var r = 0u; r < params.ranges; r++) {
    let start = ranges[(query * params.ranges + r) * 2u];
    let end = ranges[(query * params.ranges + r) * 2u + 1u];
    for (var row = start + t; row < end; row += WG) {
      if (params.hasRemoved != 0u && ((removed[row >> 5u] >> (row & 31u)) & 1u) != 0u) {
        continue;
      }
      var acc = 0.0;
      ${load}
      if (!before(acc, row, bestD[k - 1u], bestI[k - 1u])) {
        continue;
      }
      var i = k - 1u;
      loop {
        if (i == 0u || before(bestD[i - 1u], bestI[i - 1u], acc, row)) {
          break;
        }
        bestD[i] = bestD[i - 1u];
        bestI[i] = bestI[i - 1u];
        i--;
      }
      bestD[i] = acc;
      bestI[i] = row;
    }
  }
  // this query's WG lists, merged pairwise: after the round of step s, list t (t a multiple of 2s)
  // holds the nearest of lists t .. t + 2s - 1
  let slot = (query * WG + t) * KMAX;
  for (var i = 0u; i < k; i++) {
    scratchD[slot + i] = bestD[i];
    scratchI[slot + i] = bestI[i];
  }
  for (var step = 1u; step < WG; step <<= 1u) {
    storageBarrier();
    workgroupBarrier();
    if ((t & (2u * step - 1u)) == 0u) {
      let other = slot + step * KMAX;
      var mergedD: array<f32, KMAX>;
      var mergedI: array<u32, KMAX>;
      var a = 0u;
      var b = 0u;
      for (var i = 0u; i < k; i++) {
        let od = scratchD[other + b];
        let oi = scratchI[other + b];
        if (a < k && before(bestD[a], bestI[a], od, oi)) {
          mergedD[i] = bestD[a];
          mergedI[i] = bestI[a];
          a++;
        } else {
          mergedD[i] = od;
          mergedI[i] = oi;
          b++;
        }
      }
      for (var i = 0u; i < k; i++) {
        bestD[i] = mergedD[i];
        bestI[i] = mergedI[i];
        scratchD[slot + i] = mergedD[i];
        scratchI[slot + i] = mergedI[i];
      }
    }
  }
  if (t == 0u) {
    for (var i = 0u; i < k; i++) {
      outIds[query * k + i] = bestI[i];
      outDist[query * k + i] = bestD[i];
    }
  }
}
`;
}

/** The k bucket of k (the smallest KMAX >= k). */
function bucketOf(k: number): number {
  return K_BUCKETS.find((b) => b >= k)!;
}

/**
 * An index's rows on the GPU, scanned over ranges for batches of queries. Holds its buffers until
 * destroy().
 */
export class GpuRowScan {
  private readonly pipelines = new Map<number, GPUComputePipeline>();

  private constructor(
    private readonly device: GPUDevice,
    readonly shape: RowShape,
    private readonly rows: GPUBuffer,
  ) {}

  /**
   * The rows (Float32Array[n * dim], or Uint16Array[n * dim] of binary16 bits) uploaded to `device`.
   * Throws when the device refuses them (too large for one storage binding, out of memory).
   */
  static async upload(device: GPUDevice, rows: Float32Array | Uint16Array, shape: RowShape): Promise<GpuRowScan> {
    const bytes = rows.byteLength;
    if (bytes > device.limits.maxStorageBufferBindingSize) {
      throw new Error(`the rows (${bytes} bytes) exceed the GPU's largest storage binding (${device.limits.maxStorageBufferBindingSize} bytes)`);
    }
    const buffer = await checked(device, () => uploadBuffer(device, rows));
    return new GpuRowScan(device, shape, buffer);
  }

  /** The pipeline of a k bucket, made once it compiles (a failure is thrown, not kept). */
  private async pipeline(kmax: number): Promise<GPUComputePipeline> {
    let p = this.pipelines.get(kmax);
    if (!p) {
      const { device } = this;
      p = await checked(device, () => {
        const module = device.createShaderModule({ code: scanShader(this.shape, kmax) });
        return device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      });
      this.pipelines.set(kmax, p);
    }
    return p;
  }

  /**
   * The k nearest rows (row numbers, NO_ID past the last) and their distances for each of nq
   * queries (Float32Array[nq * dim]), among the rows of its `per` ranges (ranges[(q * per + r) * 2],
   * end exclusive), skipping the rows whose bit is set in `removed`.
   */
  async scan(queries: Float32Array, nq: number, ranges: Uint32Array, per: number, k: number, removed: Uint8Array | null): Promise<{ rows: Uint32Array; distances: Float32Array }> {
    if (k < 1 || k > GPU_MAX_K) throw new Error(`k = ${k} is outside 1-${GPU_MAX_K} on the GPU`);
    const { device } = this;
    const { dim } = this.shape;
    const kmax = bucketOf(k);
    const pipeline = await this.pipeline(kmax);
    const out = { rows: new Uint32Array(nq * k), distances: new Float32Array(nq * k) };
    const chunk = Math.max(1, Math.min(nq, Math.floor(SCRATCH_BYTES / (WG * kmax * 8))));
    const removedBuffer = removed ? uploadBuffer(device, removed) : uploadBuffer(device, new Uint32Array(1));
    const scratchD = outputBuffer(device, chunk * WG * kmax * 4);
    const scratchI = outputBuffer(device, chunk * WG * kmax * 4);
    try {
      for (let from = 0; from < nq; from += chunk) {
        const count = Math.min(chunk, nq - from);
        const params = uploadBuffer(device, Uint32Array.from([count, k, per, removed ? 1 : 0]), USAGE.UNIFORM);
        const q = uploadBuffer(device, queries.subarray(from * dim, (from + count) * dim));
        const r = uploadBuffer(device, ranges.subarray(from * per * 2, (from + count) * per * 2));
        const outIds = outputBuffer(device, count * k * 4);
        const outDist = outputBuffer(device, count * k * 4);
        try {
          await checked(device, () => {
            const bind = device.createBindGroup({
              layout: pipeline.getBindGroupLayout(0),
              entries: [this.rows, q, r, removedBuffer, scratchD, scratchI, outIds, outDist, params].map((buffer, binding) => ({ binding, resource: { buffer } })),
            });
            const encoder = device.createCommandEncoder();
            const pass = encoder.beginComputePass();
            pass.setPipeline(pipeline);
            pass.setBindGroup(0, bind);
            pass.dispatchWorkgroups(Math.min(count, MAX_GROUPS_X), Math.ceil(count / MAX_GROUPS_X));
            pass.end();
            device.queue.submit([encoder.finish()]);
          });
          const [ids, dist] = await readBuffers(device, [outIds, outDist], [count * k * 4, count * k * 4]);
          out.rows.set(new Uint32Array(ids), from * k);
          const d = new Float32Array(dist);
          for (let i = 0; i < d.length; i++) if (out.rows[from * k + i] === 0xffffffff) d[i] = Infinity;
          out.distances.set(d, from * k);
        } finally {
          for (const b of [params, q, r, outIds, outDist]) b.destroy();
        }
      }
    } finally {
      for (const b of [removedBuffer, scratchD, scratchI]) b.destroy();
    }
    return out;
  }

  destroy(): void {
    this.rows.destroy();
  }
}

