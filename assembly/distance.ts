// Exact distances between float32 rows. Pointers are byte offsets into the shared memory; rows are
// `dim` contiguous f32. Metric codes: 0 = squared L2, 1 = negative inner product (smaller is nearer).
// Each function has a plain-TypeScript twin in src/kernels/reference/distance.ts.

export const METRIC_L2: i32 = 0;
export const METRIC_IP: i32 = 1;

/** Largest |x_i| of the dim floats at x (the range a query is scaled or quantized to). */
// @ts-ignore: decorator
@inline
export function maxAbs(x: usize, dim: i32): f32 {
  let max: f32 = 0;
  for (let i = 0; i < dim; i++) max = Mathf.max(max, Mathf.abs(load<f32>(x + (<usize>i << 2))));
  return max;
}

/** Squared L2 distance: SIMD body with four accumulators (16 lanes per step), then a scalar tail. */
// @ts-ignore: decorator
@inline
export function l2(a: usize, b: usize, dim: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  let i: i32 = 0;
  for (; i + 16 <= dim; i += 16) {
    const o = <usize>i << 2;
    const d0 = f32x4.sub(v128.load(a + o), v128.load(b + o));
    const d1 = f32x4.sub(v128.load(a + o, 16), v128.load(b + o, 16));
    const d2 = f32x4.sub(v128.load(a + o, 32), v128.load(b + o, 32));
    const d3 = f32x4.sub(v128.load(a + o, 48), v128.load(b + o, 48));
    acc0 = f32x4.add(acc0, f32x4.mul(d0, d0));
    acc1 = f32x4.add(acc1, f32x4.mul(d1, d1));
    acc2 = f32x4.add(acc2, f32x4.mul(d2, d2));
    acc3 = f32x4.add(acc3, f32x4.mul(d3, d3));
  }
  for (; i + 4 <= dim; i += 4) {
    const o = <usize>i << 2;
    const d0 = f32x4.sub(v128.load(a + o), v128.load(b + o));
    acc0 = f32x4.add(acc0, f32x4.mul(d0, d0));
  }
  const acc = f32x4.add(f32x4.add(acc0, acc1), f32x4.add(acc2, acc3));
  let sum: f32 =
    f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
    f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; i < dim; i++) {
    const o = <usize>i << 2;
    const d = load<f32>(a + o) - load<f32>(b + o);
    sum += d * d;
  }
  return sum;
}

/** Inner product, same shape as l2. */
// @ts-ignore: decorator
@inline
export function dot(a: usize, b: usize, dim: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  let i: i32 = 0;
  for (; i + 16 <= dim; i += 16) {
    const o = <usize>i << 2;
    acc0 = f32x4.add(acc0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
    acc1 = f32x4.add(acc1, f32x4.mul(v128.load(a + o, 16), v128.load(b + o, 16)));
    acc2 = f32x4.add(acc2, f32x4.mul(v128.load(a + o, 32), v128.load(b + o, 32)));
    acc3 = f32x4.add(acc3, f32x4.mul(v128.load(a + o, 48), v128.load(b + o, 48)));
  }
  for (; i + 4 <= dim; i += 4) {
    const o = <usize>i << 2;
    acc0 = f32x4.add(acc0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
  }
  const acc = f32x4.add(f32x4.add(acc0, acc1), f32x4.add(acc2, acc3));
  let sum: f32 =
    f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
    f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; i < dim; i++) {
    const o = <usize>i << 2;
    sum += load<f32>(a + o) * load<f32>(b + o);
  }
  return sum;
}

/** Distance under a metric code: squared L2, or -dot for inner product. */
// @ts-ignore: decorator
@inline
export function distance(a: usize, b: usize, dim: i32, metric: i32): f32 {
  return metric == METRIC_L2 ? l2(a, b, dim) : -dot(a, b, dim);
}

/** out[i] = distance(q, row i) for n contiguous rows starting at `rows`. */
export function distanceBlock(q: usize, rows: usize, n: i32, dim: i32, metric: i32, out: usize): void {
  const stride = <usize>dim << 2;
  for (let i = 0; i < n; i++) {
    store<f32>(out + (<usize>i << 2), distance(q, rows + <usize>i * stride, dim, metric));
  }
}

/** out[i] = distance(q, row ids[i]) for a list of row ids. */
export function distanceByIds(q: usize, rows: usize, ids: usize, count: i32, dim: i32, metric: i32, out: usize): void {
  const stride = <usize>dim << 2;
  for (let i = 0; i < count; i++) {
    const id = load<u32>(ids + (<usize>i << 2));
    store<f32>(out + (<usize>i << 2), distance(q, rows + <usize>id * stride, dim, metric));
  }
}

/**
 * For each of n rows of x, the nearest of k centroids: outNearest[i] (u32) and outDist[i] (f32).
 * Ties go to the lower centroid index. One call per batch: this is the k-means assignment step
 * and the PQ encoder's inner loop.
 */
export function nearestRows(
  x: usize, n: i32, centroids: usize, k: i32, dim: i32, metric: i32, outNearest: usize, outDist: usize,
): void {
  const stride = <usize>dim << 2;
  for (let i = 0; i < n; i++) {
    const row = x + <usize>i * stride;
    let best: i32 = 0;
    let bestDist: f32 = Infinity;
    for (let c = 0; c < k; c++) {
      const d = distance(row, centroids + <usize>c * stride, dim, metric);
      if (d < bestDist) {
        bestDist = d;
        best = c;
      }
    }
    store<u32>(outNearest + (<usize>i << 2), best);
    store<f32>(outDist + (<usize>i << 2), bestDist);
  }
}

/**
 * nearestRows for short rows (k-means on PQ subspaces, PQ encoding): centroids transposed,
 * centroidsT[d * k + c], with norms[c] = |c|², k a multiple of 4 (pad with norm = +inf). For each
 * row, SIMD runs across 4 centroids at a time, |x - c|² = |x|² + |c|² - 2 <x, c>, and the running
 * minimum is kept per lane, so there is no scalar pass over the k centroids.
 * Rows are `dim` floats read with a stride of `xStride` floats (a subspace of longer vectors).
 * Writes the nearest centroid (lower index on ties) and its squared distance.
 */
export function nearestRowsT(
  x: usize, n: i32, xStride: i32, dim: i32, centroidsT: usize, norms: usize, k: i32,
  outNearest: usize, outDist: usize,
): void {
  const kb = <usize>k << 2;
  const laneStep = i32x4.splat(4);
  const rowBytes = <usize>xStride << 2;
  let i: i32 = 0;
  if (dim == 4) {
    // PQ with 4-dim subspaces, the default: two rows at a time share each centroid load, and
    // their two running minima are independent chains
    for (; i + 2 <= n; i += 2) {
      const rowA = x + <usize>i * rowBytes;
      const rowB = rowA + rowBytes;
      const a0 = f32x4.splat(<f32>-2 * load<f32>(rowA));
      const a1 = f32x4.splat(<f32>-2 * load<f32>(rowA, 4));
      const a2 = f32x4.splat(<f32>-2 * load<f32>(rowA, 8));
      const a3 = f32x4.splat(<f32>-2 * load<f32>(rowA, 12));
      const b0 = f32x4.splat(<f32>-2 * load<f32>(rowB));
      const b1 = f32x4.splat(<f32>-2 * load<f32>(rowB, 4));
      const b2 = f32x4.splat(<f32>-2 * load<f32>(rowB, 8));
      const b3 = f32x4.splat(<f32>-2 * load<f32>(rowB, 12));
      let bestVA = f32x4.splat(Infinity);
      let bestIA = i32x4.splat(0);
      let bestVB = f32x4.splat(Infinity);
      let bestIB = i32x4.splat(0);
      let idx = i32x4(0, 1, 2, 3);
      for (let c = 0; c < k; c += 4) {
        const o = <usize>c << 2;
        const nrm = v128.load(norms + o);
        const t0 = v128.load(centroidsT + o);
        const t1 = v128.load(centroidsT + kb + o);
        const t2 = v128.load(centroidsT + 2 * kb + o);
        const t3 = v128.load(centroidsT + 3 * kb + o);
        let accA = f32x4.add(nrm, f32x4.mul(a0, t0));
        let accB = f32x4.add(nrm, f32x4.mul(b0, t0));
        accA = f32x4.add(accA, f32x4.mul(a1, t1));
        accB = f32x4.add(accB, f32x4.mul(b1, t1));
        accA = f32x4.add(accA, f32x4.mul(a2, t2));
        accB = f32x4.add(accB, f32x4.mul(b2, t2));
        accA = f32x4.add(accA, f32x4.mul(a3, t3));
        accB = f32x4.add(accB, f32x4.mul(b3, t3));
        const betterA = f32x4.lt(accA, bestVA);
        const betterB = f32x4.lt(accB, bestVB);
        bestVA = v128.bitselect(accA, bestVA, betterA);
        bestIA = v128.bitselect(idx, bestIA, betterA);
        bestVB = v128.bitselect(accB, bestVB, betterB);
        bestIB = v128.bitselect(idx, bestIB, betterB);
        idx = i32x4.add(idx, laneStep);
      }
      storeNearest(bestVA, bestIA, squaredNorm(rowA, 4), outNearest, outDist, i);
      storeNearest(bestVB, bestIB, squaredNorm(rowB, 4), outNearest, outDist, i + 1);
    }
  }
  for (; i < n; i++) {
    const row = x + <usize>i * rowBytes;
    let bestV = f32x4.splat(Infinity);
    let bestI = i32x4.splat(0);
    let idx = i32x4(0, 1, 2, 3);
    for (let c = 0; c < k; c += 4) {
      const o = <usize>c << 2;
      let acc = v128.load(norms + o);
      for (let d = 0; d < dim; d++) {
        const s = f32x4.splat(<f32>-2 * load<f32>(row + (<usize>d << 2)));
        acc = f32x4.add(acc, f32x4.mul(s, v128.load(centroidsT + <usize>d * kb + o)));
      }
      const better = f32x4.lt(acc, bestV);
      bestV = v128.bitselect(acc, bestV, better);
      bestI = v128.bitselect(idx, bestI, better);
      idx = i32x4.add(idx, laneStep);
    }
    storeNearest(bestV, bestI, squaredNorm(row, dim), outNearest, outDist, i);
  }
}

// @ts-ignore: decorator
@inline
function squaredNorm(row: usize, dim: i32): f32 {
  let xx: f32 = 0;
  for (let d = 0; d < dim; d++) {
    const xd = load<f32>(row + (<usize>d << 2));
    xx += xd * xd;
  }
  return xx;
}

/**
 * nearestRowsT's result for row i: lanes hold the first minimum of their residue class; take the
 * smallest, lower index on ties, and add |x|² to the distance (clamped at 0).
 */
// @ts-ignore: decorator
@inline
function storeNearest(bestV: v128, bestI: v128, xx: f32, outNearest: usize, outDist: usize, i: i32): void {
  let best: i32 = i32x4.extract_lane(bestI, 0);
  let bestDist: f32 = f32x4.extract_lane(bestV, 0);
  for (let lane: u8 = 1; lane < 4; lane++) {
    const v = lane == 1 ? f32x4.extract_lane(bestV, 1) : lane == 2 ? f32x4.extract_lane(bestV, 2) : f32x4.extract_lane(bestV, 3);
    const id = lane == 1 ? i32x4.extract_lane(bestI, 1) : lane == 2 ? i32x4.extract_lane(bestI, 2) : i32x4.extract_lane(bestI, 3);
    if (v < bestDist || (v == bestDist && id < best)) {
      bestDist = v;
      best = id;
    }
  }
  store<u32>(outNearest + (<usize>i << 2), best);
  const dist = bestDist + xx;
  store<f32>(outDist + (<usize>i << 2), dist > 0 ? dist : 0);
}

/**
 * One k-means++ step after centre q is chosen: minDist[i] = min(minDist[i], |q - row i|²) over n
 * contiguous rows (minDist is f64[n]); returns the sum of minDist in row order (f64).
 */
export function seedUpdate(q: usize, rows: usize, n: i32, dim: i32, minDist: usize): f64 {
  const stride = <usize>dim << 2;
  let total: f64 = 0;
  if (dim == 4) {
    // PQ subspaces: scalar, summed in the order l2 sums its lanes (the same f32 result)
    const q0 = load<f32>(q);
    const q1 = load<f32>(q, 4);
    const q2 = load<f32>(q, 8);
    const q3 = load<f32>(q, 12);
    for (let i = 0; i < n; i++) {
      const r = rows + (<usize>i << 4);
      const d0 = q0 - load<f32>(r);
      const d1 = q1 - load<f32>(r, 4);
      const d2 = q2 - load<f32>(r, 8);
      const d3 = q3 - load<f32>(r, 12);
      const d = <f64>(((d0 * d0 + d1 * d1) + d2 * d2) + d3 * d3);
      const p = minDist + (<usize>i << 3);
      let m = load<f64>(p);
      if (d < m) {
        m = d;
        store<f64>(p, m);
      }
      total += m;
    }
    return total;
  }
  for (let i = 0; i < n; i++) {
    const d = <f64>l2(q, rows + <usize>i * stride, dim);
    const p = minDist + (<usize>i << 3);
    let m = load<f64>(p);
    if (d < m) {
      m = d;
      store<f64>(p, m);
    }
    total += m;
  }
  return total;
}

/**
 * The k-means++ draw: the first i at which target - (minDist[0] + ... + minDist[i]), subtracted in
 * order in f64, falls below 0; n - 1 when it never does.
 */
export function seedPick(minDist: usize, n: i32, target: f64): i32 {
  for (let i = 0; i < n; i++) {
    target -= load<f64>(minDist + (<usize>i << 3));
    if (target < 0) return i;
  }
  return n - 1;
}

/**
 * The Lloyd update's sums: for each of n rows (dim floats, stride xStride floats) with centroid
 * c = nearest[i], counts[c] += 1 and sums[c * dim + j] += x[j], in f64 (sums f64[k * dim], counts
 * f64[k]), rows in order.
 */
export function accumulateRows(x: usize, n: i32, xStride: i32, dim: i32, nearest: usize, sums: usize, counts: usize): void {
  const stride = <usize>xStride << 2;
  for (let i = 0; i < n; i++) {
    const row = x + <usize>i * stride;
    const c = <usize>load<u32>(nearest + (<usize>i << 2));
    const cp = counts + (c << 3);
    store<f64>(cp, load<f64>(cp) + 1);
    const s = sums + ((c * <usize>dim) << 3);
    for (let j = 0; j < dim; j++) {
      const p = s + (<usize>j << 3);
      store<f64>(p, load<f64>(p) + <f64>load<f32>(row + (<usize>j << 2)));
    }
  }
}
