/**
 * Plain-TypeScript twins of assembly/distance.ts: the obvious loops, same names and argument
 * order, over typed arrays instead of memory offsets. Tests check the kernels against these.
 */
export const METRIC_L2 = 0;
export const METRIC_IP = 1;

export function l2(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s = 0;
  for (let i = 0; i < dim; i++) {
    const d = a[ao + i] - b[bo + i];
    s += d * d;
  }
  return s;
}

export function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s = 0;
  for (let i = 0; i < dim; i++) s += a[ao + i] * b[bo + i];
  return s;
}

export function distance(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number, metric: number): number {
  return metric === METRIC_L2 ? l2(a, ao, b, bo, dim) : -dot(a, ao, b, bo, dim);
}

export function distanceBlock(q: Float32Array, rows: Float32Array, n: number, dim: number, metric: number, out: Float32Array): void {
  for (let i = 0; i < n; i++) out[i] = distance(q, 0, rows, i * dim, dim, metric);
}

export function distanceByIds(
  q: Float32Array, rows: Float32Array, ids: Uint32Array, count: number, dim: number, metric: number, out: Float32Array,
): void {
  for (let i = 0; i < count; i++) out[i] = distance(q, 0, rows, ids[i] * dim, dim, metric);
}

/** Nearest centroid per row (lower index on ties) and its distance. */
export function nearestRows(
  x: Float32Array, n: number, centroids: Float32Array, k: number, dim: number, metric: number,
  outNearest: Uint32Array, outDist: Float32Array,
): void {
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestDist = Infinity;
    for (let c = 0; c < k; c++) {
      const d = distance(x, i * dim, centroids, c * dim, dim, metric);
      if (d < bestDist) {
        bestDist = d;
        best = c;
      }
    }
    outNearest[i] = best;
    outDist[i] = bestDist;
  }
}

/** One k-means++ step: minDist[i] = min(minDist[i], |q - row i|²); returns the sum of minDist in row order. */
export function seedUpdate(q: Float32Array, rows: Float32Array, n: number, dim: number, minDist: Float64Array): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const d = Math.fround(l2f(q, 0, rows, i * dim, dim));
    if (d < minDist[i]) minDist[i] = d;
    total += minDist[i];
  }
  return total;
}

/** The k-means++ draw: first i at which target minus the running sum of minDist falls below 0 (n - 1 if never). */
export function seedPick(minDist: Float64Array, n: number, target: number): number {
  for (let i = 0; i < n; i++) {
    target -= minDist[i];
    if (target < 0) return i;
  }
  return n - 1;
}

/** Lloyd sums: counts[c] += 1 and sums[c * dim + j] += x[j] for each row with c = nearest[i]. */
export function accumulateRows(
  x: Float32Array, n: number, xStride: number, dim: number, nearest: Uint32Array, sums: Float64Array, counts: Float64Array,
): void {
  for (let i = 0; i < n; i++) {
    const c = nearest[i];
    counts[c] += 1;
    for (let j = 0; j < dim; j++) sums[c * dim + j] += x[i * xStride + j];
  }
}

/** Squared L2 rounded to float32 at every step (exact for small integers, as in the kernel). */
function l2f(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s = 0;
  for (let i = 0; i < dim; i++) {
    const d = Math.fround(a[ao + i] - b[bo + i]);
    s = Math.fround(s + Math.fround(d * d));
  }
  return s;
}
