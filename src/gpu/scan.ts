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
import { checked, outputBuffer, readBuffers, uploadBuffer, USAGE, writeBytes } from './webgpu.js';
import { METRIC_IP } from '../kernels/wasm.js';

/** Threads per workgroup (a multiple of every GPU's SIMD width). */
const WG = 64;
/** Largest k on the GPU: each thread holds its k nearest in registers (k rounded up to a bucket). */
export const GPU_MAX_K = 128;
const K_BUCKETS = [16, 32, 64, 128];
/** Scratch per dispatch (each query's WG lists of up to KMAX entries), bounding the queries per dispatch. */
const SCRATCH_BYTES = 64 << 20;
/**
 * Row distances per dispatch at most: a dispatch that runs for seconds trips the watchdogs of
 * Windows and of browsers (a lost device); 2^27 is a few milliseconds on a datacenter GPU.
 */
const ROWS_PER_DISPATCH = 1 << 27;
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

/** Compiled scans per device, by row shape and k bucket (the rows' count is not in the shader). */
const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** The pipeline of a shape and k bucket, made once it compiles (a failure is thrown, not kept). */
async function pipelineFor(device: GPUDevice, shape: RowShape, kmax: number): Promise<GPUComputePipeline> {
  let made = pipelines.get(device);
  if (!made) pipelines.set(device, (made = new Map()));
  const key = `${shape.dim}/${shape.half}/${shape.metric}/${kmax}`;
  let p = made.get(key);
  if (!p) {
    p = await checked(device, () => {
      const module = device.createShaderModule({ code: scanShader(shape, kmax) });
      return device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    });
    made.set(key, p);
  }
  return p;
}

/**
 * An index's rows on the GPU, in a buffer with room for `capacity` rows (rows appended in place are
 * written as they come), scanned over ranges for batches of queries. Holds its buffer until destroy().
 */
export class GpuRowScan {
  private constructor(
    private readonly device: GPUDevice,
    readonly shape: RowShape,
    private readonly rows: GPUBuffer,
    /** Rows the buffer has room for. */
    readonly capacity: number,
  ) {}

  /** Bytes of `count` rows of this shape. */
  private static rowBytes(count: number, shape: RowShape): number {
    return count * shape.dim * (shape.half ? 2 : 4);
  }

  /**
   * An empty buffer for `capacity` rows of `shape` on `device`. Throws when the device refuses it
   * (larger than one storage binding, out of memory).
   */
  static async create(device: GPUDevice, shape: RowShape, capacity: number): Promise<GpuRowScan> {
    const bytes = Math.max(4, Math.ceil(GpuRowScan.rowBytes(capacity, shape) / 4) * 4);
    if (bytes > device.limits.maxStorageBufferBindingSize) {
      throw new Error(`the rows (${bytes} bytes) exceed the GPU's largest storage binding (${device.limits.maxStorageBufferBindingSize} bytes)`);
    }
    const buffer = await checked(device, () => device.createBuffer({ size: bytes, usage: USAGE.STORAGE | USAGE.COPY_DST }));
    return new GpuRowScan(device, shape, buffer, capacity);
  }

  /** The rows (Float32Array[n * dim], or Uint16Array of binary16 bits) from `from` to `to` written to the buffer. */
  write(rows: Float32Array | Uint16Array, from: number, to: number): void {
    const { dim } = this.shape;
    const width = rows.BYTES_PER_ELEMENT;
    // whole words: binary16 rows of odd dimension start mid-word
    const first = Math.floor((from * dim * width) / 4) * 4;
    const last = to * dim * width;
    writeBytes(this.device, this.rows, first, new Uint8Array(rows.buffer, rows.byteOffset + first, last - first));
  }

  /**
   * The k nearest rows (row numbers, NO_ID past the last) and their distances for each of nq
   * queries (Float32Array[nq * dim]), among the rows of its `per` ranges (ranges[(q * per + r) * 2],
   * end exclusive), skipping the rows whose bit is set in `removed`; `between` runs between two
   * dispatches (the caller's pacing and abort checks).
   */
  async scan(
    queries: Float32Array, nq: number, ranges: Uint32Array, per: number, k: number, removed: Uint8Array | null, between: () => Promise<void> = async () => {},
  ): Promise<{ rows: Uint32Array; distances: Float32Array }> {
    if (k < 1 || k > GPU_MAX_K) throw new Error(`k = ${k} is outside 1-${GPU_MAX_K} on the GPU`);
    const { device } = this;
    const { dim } = this.shape;
    const kmax = bucketOf(k);
    const pipeline = await pipelineFor(device, this.shape, kmax);
    const out = { rows: new Uint32Array(nq * k), distances: new Float32Array(nq * k) };
    const binding = device.limits.maxStorageBufferBindingSize;
    const perQuery = Math.max(WG * kmax * 4, per * 8, dim * 4);
    let scanned = 0;
    for (let i = 0; i < nq * per; i++) scanned += ranges[i * 2 + 1] - ranges[i * 2];
    const rowsPerQuery = Math.max(1, scanned / Math.max(1, nq));
    const chunk = Math.max(1, Math.min(nq, Math.floor(SCRATCH_BYTES / (WG * kmax * 4)), Math.floor(binding / perQuery), Math.floor(ROWS_PER_DISPATCH / rowsPerQuery)));
    const owned: GPUBuffer[] = [];
    const own = (buffer: GPUBuffer) => (owned.push(buffer), buffer);
    try {
      const [removedBuffer, scratchD, scratchI] = await checked(device, () => [
        own(uploadBuffer(device, removed ?? new Uint32Array(1))),
        own(outputBuffer(device, chunk * WG * kmax * 4)),
        own(outputBuffer(device, chunk * WG * kmax * 4)),
      ]);
      for (let from = 0; from < nq; from += chunk) {
        if (from > 0) await between();
        const count = Math.min(chunk, nq - from);
        const mark = owned.length;
        const [, , , outIds, outDist] = await checked(device, () => {
          const made = [
            own(uploadBuffer(device, Uint32Array.from([count, k, per, removed ? 1 : 0]), USAGE.UNIFORM)),
            own(uploadBuffer(device, queries.subarray(from * dim, (from + count) * dim))),
            own(uploadBuffer(device, ranges.subarray(from * per * 2, (from + count) * per * 2))),
            own(outputBuffer(device, count * k * 4)),
            own(outputBuffer(device, count * k * 4)),
          ];
          const bind = device.createBindGroup({
            layout: pipeline.getBindGroupLayout(0),
            entries: [this.rows, made[1], made[2], removedBuffer, scratchD, scratchI, made[3], made[4], made[0]].map((buffer, binding) => ({ binding, resource: { buffer } })),
          });
          const encoder = device.createCommandEncoder();
          const pass = encoder.beginComputePass();
          pass.setPipeline(pipeline);
          pass.setBindGroup(0, bind);
          pass.dispatchWorkgroups(Math.min(count, MAX_GROUPS_X), Math.ceil(count / MAX_GROUPS_X));
          pass.end();
          device.queue.submit([encoder.finish()]);
          return made;
        });
        const [ids, dist] = await readBuffers(device, [outIds, outDist], [count * k * 4, count * k * 4]);
        out.rows.set(new Uint32Array(ids), from * k);
        const d = new Float32Array(dist);
        for (let i = 0; i < d.length; i++) if (out.rows[from * k + i] === 0xffffffff) d[i] = Infinity;
        out.distances.set(d, from * k);
        for (const b of owned.splice(mark)) b.destroy();
      }
    } finally {
      for (const b of owned) b.destroy();
    }
    return out;
  }

  destroy(): void {
    this.rows.destroy();
  }
}
