/**
 * Exact (brute-force) k-nearest-neighbour ground truth and recall measurement, used to score the
 * approximate index. Plain TypeScript, but blocked so a 100K x 128 base with 1000 queries runs in
 * seconds: a block of queries is scanned against a cache-sized block of base vectors, and each
 * query keeps its top k in a small sorted array (no per-candidate allocation).
 */
import { ZGQError } from '../errors.js';

/** Distance used by {@link bruteForceKnn}. */
export type KnnMetric = 'l2' | 'ip' | 'cosine';

/** Result of {@link bruteForceKnn}: row-major `nQueries x k`, nearest first. */
export interface KnnResult {
  /** Neighbour ids (0-based base positions); `0xFFFFFFFF` pads a row if fewer than k candidates had a finite distance. */
  ids: Uint32Array;
  /** Matching distances (see {@link bruteForceKnn}); `Infinity` in padded slots. */
  distances: Float32Array;
}

/** Id written into result slots that no base vector filled (only possible with non-finite data). */
export const NO_NEIGHBOUR = 0xffffffff;

// Queries scanned together against one base block (a multiple of 4, see the kernels): each base
// block is loaded from memory once per query block instead of once per query.
const QUERY_BLOCK = 16;
// Base block sized to about 64 KB of float32, so it stays in L2 while the query block scans it.
const BASE_BLOCK_BYTES = 64 * 1024;

function checkCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ZGQError('INVALID_ARGUMENT', `bruteForceKnn: ${name} must be an integer >= ${min}, got ${value}`);
  }
}

/** 1 / ||x_i|| for each row (0 for a zero row, so its cosine similarity to anything is 0). */
function inverseNorms(x: Float32Array, n: number, dim: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0, o = 0; i < n; i++, o += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += x[o + j] * x[o + j];
    out[i] = s > 0 ? 1 / Math.sqrt(s) : 0;
  }
  return out;
}

/**
 * Squared L2 between `nq` (multiple of 4) padded queries and base rows [b0, b1), into
 * `tile[q * stride + (b - b0)]`. Register-blocked 4 queries x 2 base vectors: each loaded value
 * feeds several accumulators, which is what V8 needs to get past load-bound scalar code (~2x).
 */
function tileL2(
  qs: Float32Array,
  nq: number,
  base: Float32Array,
  b0: number,
  b1: number,
  dim: number,
  tile: Float64Array,
  stride: number,
): void {
  for (let q = 0; q < nq; q += 4) {
    const o0 = q * dim;
    const o1 = o0 + dim;
    const o2 = o1 + dim;
    const o3 = o2 + dim;
    const r0 = q * stride - b0;
    const r1 = r0 + stride;
    const r2 = r1 + stride;
    const r3 = r2 + stride;
    let b = b0;
    for (; b + 1 < b1; b += 2) {
      const bx = b * dim;
      const by = bx + dim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      for (let j = 0; j < dim; j++) {
        const x = base[bx + j];
        const y = base[by + j];
        const c0 = qs[o0 + j];
        const c1 = qs[o1 + j];
        const c2 = qs[o2 + j];
        const c3 = qs[o3 + j];
        let a = c0 - x;
        s0 += a * a;
        a = c1 - x;
        s1 += a * a;
        a = c2 - x;
        s2 += a * a;
        a = c3 - x;
        s3 += a * a;
        a = c0 - y;
        t0 += a * a;
        a = c1 - y;
        t1 += a * a;
        a = c2 - y;
        t2 += a * a;
        a = c3 - y;
        t3 += a * a;
      }
      tile[r0 + b] = s0;
      tile[r1 + b] = s1;
      tile[r2 + b] = s2;
      tile[r3 + b] = s3;
      tile[r0 + b + 1] = t0;
      tile[r1 + b + 1] = t1;
      tile[r2 + b + 1] = t2;
      tile[r3 + b + 1] = t3;
    }
    if (b < b1) {
      const bx = b * dim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let j = 0; j < dim; j++) {
        const x = base[bx + j];
        let a = qs[o0 + j] - x;
        s0 += a * a;
        a = qs[o1 + j] - x;
        s1 += a * a;
        a = qs[o2 + j] - x;
        s2 += a * a;
        a = qs[o3 + j] - x;
        s3 += a * a;
      }
      tile[r0 + b] = s0;
      tile[r1 + b] = s1;
      tile[r2 + b] = s2;
      tile[r3 + b] = s3;
    }
  }
}

/** Dot products, same layout and blocking as {@link tileL2}. */
function tileDot(
  qs: Float32Array,
  nq: number,
  base: Float32Array,
  b0: number,
  b1: number,
  dim: number,
  tile: Float64Array,
  stride: number,
): void {
  for (let q = 0; q < nq; q += 4) {
    const o0 = q * dim;
    const o1 = o0 + dim;
    const o2 = o1 + dim;
    const o3 = o2 + dim;
    const r0 = q * stride - b0;
    const r1 = r0 + stride;
    const r2 = r1 + stride;
    const r3 = r2 + stride;
    let b = b0;
    for (; b + 1 < b1; b += 2) {
      const bx = b * dim;
      const by = bx + dim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      for (let j = 0; j < dim; j++) {
        const x = base[bx + j];
        const y = base[by + j];
        const c0 = qs[o0 + j];
        const c1 = qs[o1 + j];
        const c2 = qs[o2 + j];
        const c3 = qs[o3 + j];
        s0 += c0 * x;
        s1 += c1 * x;
        s2 += c2 * x;
        s3 += c3 * x;
        t0 += c0 * y;
        t1 += c1 * y;
        t2 += c2 * y;
        t3 += c3 * y;
      }
      tile[r0 + b] = s0;
      tile[r1 + b] = s1;
      tile[r2 + b] = s2;
      tile[r3 + b] = s3;
      tile[r0 + b + 1] = t0;
      tile[r1 + b + 1] = t1;
      tile[r2 + b + 1] = t2;
      tile[r3 + b + 1] = t3;
    }
    if (b < b1) {
      const bx = b * dim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let j = 0; j < dim; j++) {
        const x = base[bx + j];
        s0 += qs[o0 + j] * x;
        s1 += qs[o1 + j] * x;
        s2 += qs[o2 + j] * x;
        s3 += qs[o3 + j] * x;
      }
      tile[r0 + b] = s0;
      tile[r1 + b] = s1;
      tile[r2 + b] = s2;
      tile[r3 + b] = s3;
    }
  }
}

/**
 * Exact k nearest neighbours of every query, nearest first, ties broken by the lower base id.
 *
 * Distances (accumulated in float64, returned as float32): squared L2 for `'l2'`; `1 - dot` for
 * `'ip'`; `1 - cosine similarity` for `'cosine'` (a zero vector has similarity 0 to everything).
 * Candidates whose distance is NaN are never returned. Ordering and ties are decided on the
 * float64 values, so two returned float32 distances can compare equal while their ids are not in
 * id order (only when the float64 values differ below float32 resolution).
 *
 * @param base - `nBase * dim` base vectors, row-major.
 * @param queries - `nQueries * dim` query vectors, row-major.
 * @param k - neighbours per query, 1..nBase.
 * @throws ZGQError('INVALID_ARGUMENT') on bad counts / metric, ZGQError('DIMENSION_MISMATCH')
 * when an array length is not `count * dim`.
 */
export function bruteForceKnn(
  base: Float32Array,
  nBase: number,
  queries: Float32Array,
  nQueries: number,
  dim: number,
  k: number,
  metric: KnnMetric = 'l2',
): KnnResult {
  checkCount('nBase', nBase, 1);
  checkCount('nQueries', nQueries, 0);
  checkCount('dim', dim, 1);
  checkCount('k', k, 1);
  if (k > nBase) throw new ZGQError('INVALID_ARGUMENT', `bruteForceKnn: k = ${k} exceeds nBase = ${nBase}`);
  if (metric !== 'l2' && metric !== 'ip' && metric !== 'cosine') {
    throw new ZGQError('INVALID_ARGUMENT', `bruteForceKnn: metric must be 'l2', 'ip' or 'cosine', got '${String(metric)}'`);
  }
  if (base.length !== nBase * dim) {
    throw new ZGQError('DIMENSION_MISMATCH', `bruteForceKnn: base length ${base.length} != nBase ${nBase} * dim ${dim}`);
  }
  if (queries.length !== nQueries * dim) {
    throw new ZGQError(
      'DIMENSION_MISMATCH',
      `bruteForceKnn: queries length ${queries.length} != nQueries ${nQueries} * dim ${dim}`,
    );
  }

  const ids = new Uint32Array(nQueries * k).fill(NO_NEIGHBOUR);
  const distances = new Float32Array(nQueries * k).fill(Infinity);
  const isL2 = metric === 'l2';
  const isCos = metric === 'cosine';
  const baseInv = isCos ? inverseNorms(base, nBase, dim) : new Float64Array(0);
  const queryInv = isCos ? inverseNorms(queries, nQueries, dim) : new Float64Array(0);

  const baseBlock = Math.max(8, Math.floor(BASE_BLOCK_BYTES / (4 * dim)));
  // Query block copied into a zero-padded buffer so the 4-query kernels need no tail case.
  const qBuf = new Float32Array(QUERY_BLOCK * dim);
  const tile = new Float64Array(QUERY_BLOCK * baseBlock);
  // Per query of the current block: top-k (ascending distance, float64 for exact comparisons),
  // fill count, and the admission threshold (Infinity until the row is full).
  const topD = new Float64Array(QUERY_BLOCK * k);
  const topI = new Uint32Array(QUERY_BLOCK * k);
  const count = new Int32Array(QUERY_BLOCK);
  const worst = new Float64Array(QUERY_BLOCK);

  for (let q0 = 0; q0 < nQueries; q0 += QUERY_BLOCK) {
    const nq = Math.min(QUERY_BLOCK, nQueries - q0);
    const nqPad = (nq + 3) & ~3;
    qBuf.set(queries.subarray(q0 * dim, (q0 + nq) * dim));
    qBuf.fill(0, nq * dim);
    count.fill(0);
    worst.fill(Infinity);
    for (let b0 = 0; b0 < nBase; b0 += baseBlock) {
      const b1 = Math.min(nBase, b0 + baseBlock);
      if (isL2) tileL2(qBuf, nqPad, base, b0, b1, dim, tile, baseBlock);
      else tileDot(qBuf, nqPad, base, b0, b1, dim, tile, baseBlock);
      for (let qi = 0; qi < nq; qi++) {
        const row = qi * baseBlock - b0;
        const slot = qi * k;
        const qInv = isCos ? queryInv[q0 + qi] : 0;
        let thr = worst[qi];
        // Base ids are visited in increasing order for each query, so rejecting d == thr and
        // inserting after equal distances keeps ties ordered by lower id.
        for (let b = b0; b < b1; b++) {
          let d = tile[row + b];
          if (!isL2) d = isCos ? 1 - d * qInv * baseInv[b] : 1 - d;
          if (!(d < thr)) continue;
          const c = count[qi];
          let pos = c < k ? c : k - 1;
          while (pos > 0 && topD[slot + pos - 1] > d) {
            topD[slot + pos] = topD[slot + pos - 1];
            topI[slot + pos] = topI[slot + pos - 1];
            pos--;
          }
          topD[slot + pos] = d;
          topI[slot + pos] = b;
          if (c < k) count[qi] = c + 1;
          if (c + 1 >= k) thr = worst[qi] = topD[slot + k - 1];
        }
      }
    }
    for (let qi = 0; qi < nq; qi++) {
      const c = count[qi];
      const o = (q0 + qi) * k;
      for (let r = 0; r < c; r++) {
        ids[o + r] = topI[qi * k + r];
        distances[o + r] = topD[qi * k + r];
      }
    }
  }
  return { ids, distances };
}

/**
 * Mean over queries of `|found_i ∩ truth_i[0..k)| / k`.
 *
 * @param found - ids returned by the index, `foundStride` per query (first k used).
 * @param truth - ground-truth ids, `truthStride` per query (e.g. 100 columns in texmex files).
 * @param truthStride - row length of `truth`, >= k; default k.
 * @param foundStride - row length of `found`, >= k; default k.
 * @throws ZGQError('INVALID_ARGUMENT') on bad counts, ZGQError('DIMENSION_MISMATCH') when an array
 * is too short for `nQueries` rows.
 */
export function recallAtK(
  found: Uint32Array | Int32Array,
  truth: Uint32Array | Int32Array,
  nQueries: number,
  k: number,
  truthStride: number = k,
  foundStride: number = k,
): number {
  if (!Number.isSafeInteger(nQueries) || nQueries < 1) {
    throw new ZGQError('INVALID_ARGUMENT', `recallAtK: nQueries must be an integer >= 1, got ${nQueries}`);
  }
  if (!Number.isSafeInteger(k) || k < 1) {
    throw new ZGQError('INVALID_ARGUMENT', `recallAtK: k must be an integer >= 1, got ${k}`);
  }
  if (!Number.isSafeInteger(truthStride) || truthStride < k) {
    throw new ZGQError('INVALID_ARGUMENT', `recallAtK: truthStride must be an integer >= k = ${k}, got ${truthStride}`);
  }
  if (!Number.isSafeInteger(foundStride) || foundStride < k) {
    throw new ZGQError('INVALID_ARGUMENT', `recallAtK: foundStride must be an integer >= k = ${k}, got ${foundStride}`);
  }
  if (found.length < (nQueries - 1) * foundStride + k) {
    throw new ZGQError(
      'DIMENSION_MISMATCH',
      `recallAtK: found has ${found.length} ids, too few for ${nQueries} queries with stride ${foundStride} and k ${k}`,
    );
  }
  if (truth.length < (nQueries - 1) * truthStride + k) {
    throw new ZGQError(
      'DIMENSION_MISMATCH',
      `recallAtK: truth has ${truth.length} ids, too few for ${nQueries} queries with stride ${truthStride} and k ${k}`,
    );
  }
  let hits = 0;
  for (let q = 0; q < nQueries; q++) {
    const fo = q * foundStride;
    const to = q * truthStride;
    // Count truth ids present in found (not the reverse), so duplicate found ids cannot inflate recall.
    for (let t = 0; t < k; t++) {
      const id = truth[to + t] >>> 0;
      for (let f = 0; f < k; f++) {
        if (found[fo + f] >>> 0 === id) {
          hits++;
          break;
        }
      }
    }
  }
  return hits / (nQueries * k);
}
