/**
 * Product quantization: each vector (or its residual from its zone centroid) becomes m bytes, one
 * centroid index per subspace, so traversal reads m bytes per node instead of 4 * dim.
 *
 * Subspace j covers dims [o_j, o_{j+1}) with o_j = floor(j * dim / m): any m <= dim works and the
 * lengths differ by at most one.
 * Codebooks: Float32Array[256 * dim]; subspace j's block starts at 256 * o_j and holds 256 rows of
 * (o_{j+1} - o_j) floats (centroid c of subspace j at 256 * o_j + c * len_j).
 * Codes: Uint8Array[n * m], row i = the m centroid indices of vector i.
 */
import { type Kernels, METRIC_L2 } from './kernels/wasm.js';
import { assignInArena, kmeansSteps } from './kmeans.js';
import { runSteps, type Steps } from './pace.js';
import { Rng } from './random.js';

/** Centroids per subspace: 8-bit codes. */
export const PQ_CENTROIDS = 256;

/** Start of subspace j (the last entry, j = m, is dim). */
export function subspaceOffset(j: number, dim: number, m: number): number {
  return Math.floor((j * dim) / m);
}

/**
 * Rows PQ training and encoding read: a flat Float32Array[n * dim], or a function writing row i into
 * `into` (Float32Array[dim]), for rows made on the fly (residuals from the arena's rows) so that no
 * copy of all of them is needed.
 */
export type RowSource = Float32Array | RowFunction;
/** Writes row i into `into` (Float32Array[dim]). */
export type RowFunction = (i: number, into: Float32Array) => void;

/** Rows `ids` of `x`, one after another (Float32Array[ids.length * dim]). */
function gatherRows(x: RowSource, ids: ArrayLike<number>, dim: number): Float32Array {
  const out = new Float32Array(ids.length * dim);
  for (let i = 0; i < ids.length; i++) {
    const into = out.subarray(i * dim, (i + 1) * dim);
    if (typeof x === 'function') x(ids[i], into);
    else into.set(x.subarray(ids[i] * dim, (ids[i] + 1) * dim));
  }
  return out;
}

export interface PQTrainOptions {
  seed: number;
  /** Training rows at most (a random sample of the input). Default 10000. */
  maxTrainingRows?: number;
  /** Lloyd iterations per subspace. Default 10. */
  iterations?: number;
  /** k-means++ seeding sample per centroid (see KMeansOptions). Default 32. */
  seedPointsPerCentroid?: number;
  /** Centroids per subspace: PQ_CENTROIDS (8-bit codes, default) or 16 (4-bit, src/fastscan.ts). */
  centroids?: number;
}

/**
 * Train m codebooks of 256 centroids each on rows of `x` (n rows of dim). With fewer than
 * 256 training rows, the unused centroid slots repeat centroid 0 (ties resolve to the lower index,
 * so they are never chosen).
 */
export function trainPQ(kernels: Kernels, x: RowSource, n: number, dim: number, m: number, options: PQTrainOptions): Float32Array {
  return runSteps(trainPQSteps(kernels, x, n, dim, m, options));
}

/** trainPQ, yielding within each subspace's k-means (see src/pace.ts). */
export function* trainPQSteps(kernels: Kernels, x: RowSource, n: number, dim: number, m: number, options: PQTrainOptions): Steps<Float32Array> {
  const rng = new Rng(options.seed);
  const sample = gatherRows(x, rng.sample(n, Math.min(n, options.maxTrainingRows ?? 10000)), dim);
  const t = sample.length / dim;
  const C = options.centroids ?? PQ_CENTROIDS;
  const codebooks = new Float32Array(C * dim);
  for (let j = 0; j < m; j++) {
    const o = subspaceOffset(j, dim, m);
    const len = subspaceOffset(j + 1, dim, m) - o;
    const sub = new Float32Array(t * len);
    for (let i = 0; i < t; i++) {
      const src = i * dim + o;
      for (let d = 0; d < len; d++) sub[i * len + d] = sample[src + d];
    }
    const k = Math.min(C, t);
    const { centroids } = yield* kmeansSteps(kernels, sub, t, len, k, {
      seed: options.seed + 7919 * (j + 1),
      iterations: options.iterations ?? 10,
      seedPointsPerCentroid: options.seedPointsPerCentroid,
    });
    const block = codebooks.subarray(C * o, C * o + C * len);
    block.set(centroids);
    for (let c = k; c < C; c++) block.copyWithin(c * len, 0, len);
  }
  return codebooks;
}

/** Reconstruct row i of `codes` into out (Float32Array[dim]): the concatenated chosen centroids. */
export function decodePQ(codebooks: Float32Array, codes: Uint8Array, i: number, dim: number, m: number, out: Float32Array): void {
  for (let j = 0; j < m; j++) {
    const o = subspaceOffset(j, dim, m);
    const len = subspaceOffset(j + 1, dim, m) - o;
    const c = codes[i * m + j];
    const src = PQ_CENTROIDS * o + c * len;
    for (let d = 0; d < len; d++) out[o + d] = codebooks[src + d];
  }
}

/**
 * PQ-encode n rows of x into codes (Uint8Array[n * m]): per subspace, the nearest of its 256
 * centroids (C of them for encodePQSteps). Rows pass through the arena in chunks.
 */
export function encodePQ(kernels: Kernels, x: RowSource, n: number, dim: number, m: number, codebooks: Float32Array, codes: Uint8Array): void {
  runSteps(encodePQSteps(kernels, x, n, dim, m, codebooks, codes));
}

/** encodePQ, yielding after each subspace of each chunk of rows (see src/pace.ts). */
export function* encodePQSteps(
  kernels: Kernels, x: RowSource, n: number, dim: number, m: number, codebooks: Float32Array, codes: Uint8Array, C = PQ_CENTROIDS,
): Steps<void> {
  const { arena } = kernels;
  const mark = arena.mark();
  try {
    const chunk = Math.max(1, Math.min(n, Math.floor((4 << 20) / (dim * 4))));
    const xPtr = arena.alloc(chunk * dim * 4);
    const nearestPtr = arena.alloc(chunk * 4);
    const distPtr = arena.alloc(chunk * 4);
    for (let start = 0; start < n; start += chunk) {
      const count = Math.min(chunk, n - start);
      const chunkRows = arena.f32(xPtr, count * dim);
      if (typeof x === 'function') for (let i = 0; i < count; i++) x(start + i, chunkRows.subarray(i * dim, (i + 1) * dim));
      else chunkRows.set(x.subarray(start * dim, (start + count) * dim));
      for (let j = 0; j < m; j++) {
        const o = subspaceOffset(j, dim, m);
        const len = subspaceOffset(j + 1, dim, m) - o;
        const block = codebooks.subarray(C * o, C * (o + len));
        assignInArena(kernels, xPtr + o * 4, count, len, dim, block, C, nearestPtr, distPtr);
        const nearest = arena.u32(nearestPtr, count);
        for (let i = 0; i < count; i++) codes[(start + i) * m + j] = nearest[i];
        // a chunk's subspace is a few milliseconds; the whole chunk can be a hundred
        yield;
      }
    }
  } finally {
    arena.release(mark);
  }
}

/** Rows of 256 dimension pairs in pairCodebooks' layout: the sum of ceil(len_j / 2). */
export function pairedRows(dim: number, m: number): number {
  let rows = 0;
  for (let j = 0; j < m; j++) rows += (subspaceOffset(j + 1, dim, m) - subspaceOffset(j, dim, m) + 1) >> 1;
  return rows;
}

/** Largest magnitude of the 16-bit codebook copy (12 bits: sums of products stay far inside i32). */
export const PAIR_RANGE = 2047;

/**
 * Longest subspace whose table pqLut builds from the 16-bit pairs: ceil(len / 2) * 2 * PAIR_RANGE²
 * must stay below 2^31. Longer subspaces take the float32 codebooks (MAX_PAIRED_LENGTH in assembly/pq.ts).
 */
export const MAX_PAIRED_LENGTH = 510;

/**
 * The codebooks as 16-bit integers in dimension pairs, for lookup tables of subspaces of other than
 * 4 dimensions (assembly/pq.ts pqLut): for subspace j, ceil(len_j / 2) rows of 256 centroids x
 * [dim 2p, dim 2p + 1] (the second 0 past an odd length), subspaces one after another; values are
 * round(v * scale) with scale = PAIR_RANGE / max |v|. Null when no subspace would read them: every
 * one has 4 dimensions or more than MAX_PAIRED_LENGTH (a 65,536-d index with m = 64 would carry
 * 32 MB of pairs it never reads).
 */
/** Whether some subspace's lookup table is built from the 16-bit pairs (length other than 4, at most MAX_PAIRED_LENGTH). */
export function usesPairs(dim: number, m: number): boolean {
  for (let j = 0; j < m; j++) {
    const len = subspaceOffset(j + 1, dim, m) - subspaceOffset(j, dim, m);
    if (len !== 4 && len <= MAX_PAIRED_LENGTH) return true;
  }
  return false;
}

export function pairCodebooks(codebooks: Float32Array, dim: number, m: number): { pairs: Int16Array; scale: number } | null {
  if (!usesPairs(dim, m)) return null;
  const rows = pairedRows(dim, m);
  let max = 0;
  for (let i = 0; i < codebooks.length; i++) max = Math.max(max, Math.abs(codebooks[i]));
  const scale = max > 0 ? PAIR_RANGE / max : 1;
  const pairs = new Int16Array(rows * PQ_CENTROIDS * 2);
  let row = 0;
  for (let j = 0; j < m; j++) {
    const o = subspaceOffset(j, dim, m);
    const len = subspaceOffset(j + 1, dim, m) - o;
    const base = PQ_CENTROIDS * o;
    for (let d = 0; d < len; d++) {
      const at = (row + (d >> 1)) * PQ_CENTROIDS * 2 + (d & 1);
      for (let c = 0; c < PQ_CENTROIDS; c++) pairs[at + c * 2] = Math.round(codebooks[base + c * len + d] * scale);
    }
    row += (len + 1) >> 1;
  }
  return { pairs, scale };
}

/**
 * The codebooks transposed per subspace, for the SIMD lookup-table kernel: subspace j's block at
 * 256 * o_j holds len_j rows of 256 floats (centroidsT[d][c]); plus norms[j * 256 + c] = |c|².
 */
export function transposeCodebooks(codebooks: Float32Array, dim: number, m: number): { codebooksT: Float32Array; norms: Float32Array } {
  const codebooksT = new Float32Array(codebooks.length);
  const norms = new Float32Array(m * PQ_CENTROIDS);
  for (let j = 0; j < m; j++) {
    const o = subspaceOffset(j, dim, m);
    const len = subspaceOffset(j + 1, dim, m) - o;
    const base = PQ_CENTROIDS * o;
    for (let c = 0; c < PQ_CENTROIDS; c++) {
      let s = 0;
      for (let d = 0; d < len; d++) {
        const v = codebooks[base + c * len + d];
        codebooksT[base + d * PQ_CENTROIDS + c] = v;
        s += v * v;
      }
      norms[j * PQ_CENTROIDS + c] = s;
    }
  }
  return { codebooksT, norms };
}

/**
 * Residual PQ's input one row at a time: row i (`row(i)`, Float32Array[dim]) less the centroid of
 * its zone zoneOf[i], with no copy of all the residuals.
 */
export function residualRows(row: (i: number) => Float32Array, zoneOf: Uint32Array, centroids: Float32Array, dim: number): RowFunction {
  return (i, into) => {
    const v = row(i);
    const c = zoneOf[i] * dim;
    for (let j = 0; j < dim; j++) into[j] = v[j] - centroids[c + j];
  };
}

/** The residuals of the rows of v (one per entry of zoneOf) from their zones' centroids, as one array. */
export function residuals(v: Float32Array, zoneOf: Uint32Array, centroids: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(v.length);
  const source = residualRows((i) => v.subarray(i * dim, (i + 1) * dim), zoneOf, centroids, dim);
  for (let i = 0; i < zoneOf.length; i++) source(i, out.subarray(i * dim, (i + 1) * dim));
  return out;
}

/**
 * Per-node constant of residual PQ: with r̂ the decoded residual and c its zone centroid,
 * |q - c - r̂|² = |q - c|² + (|r̂|² + 2<c, r̂>) - 2<q, r̂>, so the node term is |r̂|² + 2<c, r̂> for L2;
 * for inner product, -<q, c + r̂> needs no node term.
 */
export function residualTerms(
  codebooks: Float32Array, codes: Uint8Array, zoneOf: Uint32Array, centroids: Float32Array,
  n: number, dim: number, m: number, metric: number,
): Float32Array {
  const terms = new Float32Array(n);
  if (metric !== METRIC_L2) return terms;
  const r = new Float32Array(dim);
  for (let i = 0; i < n; i++) {
    decodePQ(codebooks, codes, i, dim, m, r);
    const c = zoneOf[i] * dim;
    let t = 0;
    for (let j = 0; j < dim; j++) t += r[j] * r[j] + 2 * centroids[c + j] * r[j];
    terms[i] = t;
  }
  return terms;
}
