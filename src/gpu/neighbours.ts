/**
 * A build's graph candidates on the GPU (`device: 'gpu' | 'auto'`): each node's `width` nearest
 * rows (exact distances) among the rows of its graphCandidates.zones nearest zones, found by the range scan
 * (src/gpu/scan.ts) with the build's rows, in zone order, as both the rows and the queries. The
 * zones nearest each row come from the zone assignment, which asks the GPU for that many
 * (src/gpu/assign.ts). src/graph.ts linkCandidates prunes them into the graph on the CPU.
 */
import type { CandidateSource } from '../graph.js';
import type { InputRows } from '../input.js';
import type { ZoneLayout } from '../zones.js';
import { ZGQError } from '../errors.js';
import { GPU_MAX_K, GpuRowScan } from './scan.js';

/**
 * Where a GPU build's graph candidates come from: the rows of each node's `zones` nearest zones
 * (its own among them), `perDegree` x degree of them per node (the node itself included). Benchmarks
 * set it to compare builds in one process.
 * @internal
 */
export const graphCandidates = { zones: 8, perDegree: 2 };
/**
 * Nodes whose candidates one call finds (one range scan of up to GPU_MAX_K results each) at most;
 * an eighth of the nodes when that is less (at least MIN_CHUNK), so that the GPU finds the next
 * chunk's while the CPU prunes this one's in builds of every size.
 */
export const CANDIDATE_CHUNK = 32_768;
const MIN_CHUNK = 1024;

/** Candidates per node for a graph of out-degree R (the node itself among them): 2R by default, at most the GPU's k. */
export function candidateWidth(degree: number): number {
  return Math.min(GPU_MAX_K, graphCandidates.perDegree * degree);
}

/**
 * The zones nearest each node, in the layout's numbering: `choices` per node (from the zone
 * assignment's per-row nearest centroids, in k-means numbering, `nearest[row * choices + c]`),
 * zones the layout dropped (empty) left out, NO_ZONE past the last.
 */
export function nodeZones(zones: ZoneLayout, nearest: Uint32Array, choices: number, centroids: number): Uint32Array {
  const { order, zoneStart, nZones } = zones;
  const n = order.length;
  // a kept k-means centroid's zone: that of any row assigned to it
  const zoneOfCentroid = new Uint32Array(centroids).fill(NO_ZONE);
  for (let z = 0; z < nZones; z++) zoneOfCentroid[nearest[order[zoneStart[z]] * choices]] = z;
  const out = new Uint32Array(n * choices).fill(NO_ZONE);
  for (let node = 0; node < n; node++) {
    const row = order[node];
    let at = node * choices;
    for (let c = 0; c < choices; c++) {
      const z = zoneOfCentroid[nearest[row * choices + c]];
      if (z !== NO_ZONE) out[at++] = z;
    }
  }
  return out;
}

export const NO_ZONE = 0xffffffff;

/** The GPU failed to give candidates (a buffer refused, the device lost): the build links its graph on the CPU instead. */
export class GpuCandidatesFailed extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/**
 * The candidate source of src/graph.ts linkCandidates: the build's stored rows (`rows`, in zone
 * order, float32 or binary16) on the GPU, queried with the caller's float32 rows (`x`, read through
 * `zones.order`). destroy() frees the GPU's buffer.
 */
export class GpuNeighbours implements CandidateSource {
  readonly chunk: number;

  private constructor(
    private readonly scan: GpuRowScan,
    private readonly x: InputRows,
    private readonly zones: ZoneLayout,
    private readonly near: Uint32Array,
    private readonly choices: number,
    readonly width: number,
    private readonly between: () => Promise<void>,
  ) {
    this.chunk = Math.min(CANDIDATE_CHUNK, Math.max(MIN_CHUNK, Math.ceil(zones.order.length / 8)));
  }

  static async open(
    device: GPUDevice, rows: Float32Array | Uint16Array, x: InputRows, zones: ZoneLayout, near: Uint32Array, choices: number,
    metric: number, width: number, between: () => Promise<void>,
  ): Promise<GpuNeighbours> {
    const n = zones.order.length;
    const { dim } = x;
    let scan: GpuRowScan | null = null;
    try {
      scan = await GpuRowScan.create(device, { n, dim, half: rows instanceof Uint16Array, metric }, n);
      scan.write(rows, 0, n);
    } catch (err) {
      scan?.destroy();
      throw new GpuCandidatesFailed(err);
    }
    return new GpuNeighbours(scan, x, zones, near, choices, width, between);
  }

  async candidates(from: number, to: number): Promise<{ ids: Uint32Array; distances: Float32Array }> {
    const { x, zones, near, choices } = this;
    const { dim } = x;
    const count = to - from;
    const queries = new Float32Array(count * dim);
    const ranges = new Uint32Array(count * choices * 2);
    for (let i = 0; i < count; i++) {
      queries.set(x.row(zones.order[from + i]), i * dim);
      for (let c = 0; c < choices; c++) {
        const z = near[(from + i) * choices + c];
        if (z === NO_ZONE) continue; // an empty range
        ranges[(i * choices + c) * 2] = zones.zoneStart[z];
        ranges[(i * choices + c) * 2 + 1] = zones.zoneStart[z + 1];
      }
    }
    try {
      const got = await this.scan.scan(queries, count, ranges, choices, this.width, null, this.between);
      return { ids: got.rows, distances: got.distances };
    } catch (err) {
      if (err instanceof ZGQError) throw err; // ABORTED between dispatches
      throw new GpuCandidatesFailed(err);
    }
  }

  destroy(): void {
    this.scan.destroy();
  }
}
