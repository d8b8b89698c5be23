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
