/**
 * What is measured per configuration: tie-aware recall@k against exact ground truth, and latency
 * statistics of the timed passes.
 */
import { ZGQError } from '../errors.js';
import { l2 as sqL2 } from '../kernels/reference/distance.js';

/** Relative slack when comparing a returned neighbour's distance with the k-th true distance. */
const TIE_EPSILON = 1e-6;

/** Recall of one configuration: the mean, and hits per query (for per-kind breakdowns). */
export interface RecallResult {
  recall: number;
  /** Correct neighbours found for each query, 0..k. */
  hits: Uint16Array;
}

/**
 * Tie-aware recall@k: a returned id counts as correct when its exact squared L2 distance to the
 * query is at most the distance of the k-th ground-truth neighbour (with a relative slack of
 * 1e-6). Equal-distance neighbours (siftsmall has them: integer data) therefore count whichever
 * of them an index returns; duplicates and out-of-range ids never count. On data without ties
 * this equals the usual `|found ∩ truth| / k`.
 *
 * @param found - `nQueries * foundStride` returned ids (first k per row used).
 * @param truth - `nQueries * truthStride` exact neighbour ids, nearest first.
 */
export function tieAwareRecall(
  found: Uint32Array,
  foundStride: number,
  truth: Uint32Array | Int32Array,
  truthStride: number,
  base: Float32Array,
  nBase: number,
  queries: Float32Array,
  nQueries: number,
  dim: number,
  k: number,
): RecallResult {
  if (!Number.isInteger(k) || k < 1 || k > truthStride || k > foundStride) {
    throw new ZGQError('INVALID_ARGUMENT', `recall: k = ${k} must be in [1, min(truth depth ${truthStride}, found stride ${foundStride})]`);
  }
  if (found.length < nQueries * foundStride || truth.length < nQueries * truthStride) {
    throw new ZGQError('DIMENSION_MISMATCH', `recall: ${nQueries} queries need ${nQueries * foundStride} found and ${nQueries * truthStride} truth ids`);
  }
  const hits = new Uint16Array(nQueries);
  let total = 0;
  for (let q = 0; q < nQueries; q++) {
    const qo = q * dim;
    const kth = truth[q * truthStride + k - 1] >>> 0;
    if (kth >= nBase) throw new ZGQError('CORRUPT_FILE', `recall: ground-truth id ${kth} of query ${q} is outside the base (${nBase} vectors)`);
    const limit = sqL2(queries, qo, base, kth * dim, dim) * (1 + TIE_EPSILON);
    let h = 0;
    const fo = q * foundStride;
    for (let i = 0; i < k; i++) {
      const id = found[fo + i];
      if (id >= nBase) continue;
      let duplicate = false;
      for (let j = 0; j < i; j++) {
        if (found[fo + j] === id) {
          duplicate = true;
          break;
        }
      }
      if (!duplicate && sqL2(queries, qo, base, id * dim, dim) <= limit) h++;
    }
    hits[q] = h;
    total += h;
  }
  return { recall: total / (nQueries * k), hits };
}

/** Mean recall over the queries of each kind (0 = mixture, 1 = outlier), null for a kind with no query. */
export function recallByKind(hits: Uint16Array, kinds: Uint8Array, k: number): { mixture: number | null; outlier: number | null } {
  const sum = [0, 0];
  const count = [0, 0];
  for (let q = 0; q < hits.length; q++) {
    const c = kinds[q] === 1 ? 1 : 0;
    sum[c] += hits[q];
    count[c]++;
  }
  return {
    mixture: count[0] ? sum[0] / (count[0] * k) : null,
    outlier: count[1] ? sum[1] / (count[1] * k) : null,
  };
}

/** Median of a non-empty list (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new ZGQError('INVALID_ARGUMENT', 'median of an empty list');
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Latency summary of one pass, in the unit of the input. */
export interface LatencyStats {
  mean: number;
  p50: number;
  p99: number;
}

/** Mean and nearest-rank 50th / 99th percentiles (sorts a copy). */
export function latencyStats(latencies: Float64Array): LatencyStats {
  const n = latencies.length;
  if (n === 0) throw new ZGQError('INVALID_ARGUMENT', 'latency statistics of an empty pass');
  const s = latencies.slice().sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i];
  const rank = (p: number) => s[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))];
  return { mean: sum / n, p50: rank(0.5), p99: rank(0.99) };
}
