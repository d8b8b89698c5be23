/**
 * k-means clustering on the WebAssembly kernels: k-means++ seeding, then Lloyd iterations (full
 * batch) or, for large inputs, mini-batch updates (Sculley 2010). Deterministic for a seed.
 * Used for zones (k ≈ √N over all vectors), for the group level above zones, and for each PQ
 * subspace codebook (k = 256).
 */
import type { Kernels } from './kernels/wasm.js';
import { METRIC_L2 } from './kernels/wasm.js';
import { Rng } from './random.js';
import { assert } from './errors.js';
import { runSteps, type Steps } from './pace.js';
import { InputRows } from './input.js';

export interface KMeansOptions {
  /** Seed of the k-means++ draws and of the mini-batch samples. */
  seed: number;
  /** Lloyd iterations at most (stops early when no point changes cluster). Default 20. */
  iterations?: number;
  /** k-means++ runs on at most this many points per centroid (a random sample). Default 32. */
  seedPointsPerCentroid?: number;
  /**
   * Inputs larger than miniBatchThreshold * k points use mini-batches of miniBatchSize * k points
   * instead of full Lloyd passes. Defaults 64 and 16.
   */
  miniBatchThreshold?: number;
  miniBatchSize?: number;
}

export interface KMeansResult {
  /** Float32Array[k * dim], row-major (a copy, owned by the caller). */
  centroids: Float32Array;
  /** Mean squared distance of the points to their nearest centroid at the last pass. */
  inertia: number;
}

/**
 * Cluster n rows of `x` (Float32Array[n * dim], row-major, or rows listed over a larger array) into
 * k centroids under squared L2.
 * Empty clusters are repaired by splitting the largest cluster (its centroid is copied and the two
 * copies pushed apart by a small symmetric perturbation, as FAISS does).
 */
export function kmeans(kernels: Kernels, x: Float32Array | InputRows, n: number, dim: number, k: number, options: KMeansOptions): KMeansResult {
  return runSteps(kmeansSteps(kernels, x, n, dim, k, options));
}

/** kmeans, yielding after the seeding and after each iteration (see src/pace.ts). */
export function* kmeansSteps(kernels: Kernels, input: Float32Array | InputRows, n: number, dim: number, k: number, options: KMeansOptions): Steps<KMeansResult> {
  const x = input instanceof InputRows ? input : new InputRows(input, dim, null, n);
  assert(x.n >= n && x.dim === dim, 'kmeans input shorter than n rows of dim');
  assert(k >= 1 && k <= n, `kmeans needs 1 <= k <= n (k=${k}, n=${n})`);
  const rng = new Rng(options.seed);
  const iterations = options.iterations ?? 20;
  const miniBatch = n > (options.miniBatchThreshold ?? 64) * k;
  const { arena, k: kern } = kernels;
  const mark = arena.mark();
  try {
    const seedCount = Math.min(n, Math.max(k, (options.seedPointsPerCentroid ?? 32) * k));
    const seedRows = seedCount === n ? null : rng.sample(n, seedCount);
    const centroids = yield* seedPlusPlus(kernels, x, seedRows, seedCount, dim, k, rng);

    // points the iterations work on: all of them (Lloyd) or one batch at a time (mini-batch)
    const batch = miniBatch ? Math.min(n, (options.miniBatchSize ?? 16) * k) : n;
    const xPtr = arena.alloc(batch * dim * 4);
    const nearestPtr = arena.alloc(batch * 4);
    const distPtr = arena.alloc(batch * 4);
    if (!miniBatch) x.copy(0, n, arena.f32(xPtr, n * dim));

    // Lloyd sums and counts live in the arena, where accumulateRows adds to them
    const sumsPtr = miniBatch ? 0 : arena.alloc(k * dim * 8);
    const countsPtr = miniBatch ? 0 : arena.alloc(k * 8);
    const sums = miniBatch ? new Float64Array(0) : new Float64Array(arena.bytes.buffer, sumsPtr, k * dim);
    const counts = miniBatch ? new Float64Array(0) : new Float64Array(arena.bytes.buffer, countsPtr, k);
    const seen = new Float64Array(k); // mini-batch: points absorbed per centroid (its learning rate)
    const previous = new Uint32Array(batch).fill(0xffffffff);
    let inertia = 0;
    for (let it = 0; it < iterations; it++) {
      yield;
      if (miniBatch) {
        const rows = rng.sample(n, batch);
        const xs = arena.f32(xPtr, batch * dim);
        x.copyListed(rows, batch, xs);
      }
      assignInArena(kernels, xPtr, batch, dim, dim, centroids, k, nearestPtr, distPtr);
      const nearest = arena.u32(nearestPtr, batch);
      const dists = arena.f32(distPtr, batch);
      const xs = arena.f32(xPtr, batch * dim);
      inertia = 0;
      for (let i = 0; i < batch; i++) inertia += dists[i];
      inertia /= batch;

      if (miniBatch) {
        for (let i = 0; i < batch; i++) {
          const c = nearest[i];
          seen[c] += 1;
          const eta = 1 / seen[c];
          const co = c * dim;
          const xo = i * dim;
          for (let j = 0; j < dim; j++) centroids[co + j] += eta * (xs[xo + j] - centroids[co + j]);
        }
        repairEmpty(centroids, seen, dim, k, rng);
        continue;
      }

      let changed = 0;
      for (let i = 0; i < n; i++) if (nearest[i] !== previous[i]) changed++;
      previous.set(nearest);
      if (changed === 0) break;
      sums.fill(0);
      counts.fill(0);
      kern.accumulateRows(xPtr, n, dim, dim, nearestPtr, sumsPtr, countsPtr);
      for (let c = 0; c < k; c++) {
        if (counts[c] === 0) continue;
        const inv = 1 / counts[c];
        for (let j = 0; j < dim; j++) centroids[c * dim + j] = sums[c * dim + j] * inv;
      }
      repairEmpty(centroids, counts, dim, k, rng);
    }
    return { centroids, inertia };
  } finally {
    arena.release(mark);
  }
}

/** k-means++: each next centre drawn with probability proportional to D(x)², the squared distance to the nearest centre so far. */
function* seedPlusPlus(
  kernels: Kernels, x: InputRows, rows: Uint32Array | null, count: number, dim: number, k: number, rng: Rng,
): Steps<Float32Array> {
  const { arena, k: kern } = kernels;
  const xPtr = arena.alloc(count * dim * 4);
  const minPtr = arena.alloc(count * 8);
  const xs = arena.f32(xPtr, count * dim);
  if (rows) x.copyListed(rows, count, xs);
  else x.copy(0, count, xs);
  new Float64Array(arena.bytes.buffer, minPtr, count).fill(Infinity);

  const centroids = new Float32Array(k * dim);
  let pick = rng.int(count);
  for (let c = 0; c < k; c++) {
    centroids.set(arena.f32(xPtr + pick * dim * 4, dim), c * dim);
    if (c === k - 1) break;
    // each centre is a pass over the sample: a step every SEED_STEP of them
    if (c % SEED_STEP === SEED_STEP - 1) yield;
    // the chosen row is still in place: the kernel reads the centre from there
    const total = kern.seedUpdate(xPtr + pick * dim * 4, xPtr, count, dim, minPtr);
    if (total <= 0) {
      // every point coincides with a centre already: any point will do
      pick = rng.int(count);
      continue;
    }
    pick = kern.seedPick(minPtr, count, rng.next() * total);
  }
  return centroids;
}

/** k-means++ centres drawn between two steps. */
const SEED_STEP = 16;

/** Give every empty cluster half of the largest one: copy its centroid and push the pair apart. */
function repairEmpty(centroids: Float32Array, counts: Float64Array, dim: number, k: number, rng: Rng): void {
  const EPS = 1 / 1024;
  for (let c = 0; c < k; c++) {
    if (counts[c] > 0) continue;
    let largest = 0;
    for (let j = 1; j < k; j++) if (counts[j] > counts[largest]) largest = j;
    if (counts[largest] <= 1) return; // nothing left to split
    for (let j = 0; j < dim; j++) {
      const v = centroids[largest * dim + j];
      const sign = rng.next() < 0.5 ? 1 : -1;
      centroids[c * dim + j] = v * (1 + sign * EPS) + sign * EPS * 1e-3;
      centroids[largest * dim + j] = v * (1 - sign * EPS) - sign * EPS * 1e-3;
    }
    counts[c] = counts[largest] / 2;
    counts[largest] /= 2;
  }
}

/** Rows at most this long use the transposed kernel (SIMD across centroids). */
const SHORT_ROWS = 32;

/**
 * Nearest of k centroids (squared L2) for n rows already in the arena at xPtr, each `dim` floats
 * read with a stride of `xStride` floats (>= dim). Picks the kernel by row length: SIMD along the
 * row for long rows, SIMD across centroids for short ones (PQ subspaces). Arena scratch is released.
 */
export function assignInArena(
  kernels: Kernels, xPtr: number, n: number, dim: number, xStride: number,
  centroids: Float32Array, k: number, nearestPtr: number, distPtr: number,
): void {
  assert(xStride >= dim, 'assignInArena needs xStride >= dim');
  if (n === 0) return;
  const { arena, k: kern } = kernels;
  const mark = arena.mark();
  try {
    if (dim > SHORT_ROWS) {
      // nearestRows reads contiguous rows: a long PQ subspace (dim / m > 32, issue 15) is gathered
      // first, n * dim floats, small next to the n * k * dim of the search itself
      let rowsPtr = xPtr;
      if (xStride !== dim) {
        rowsPtr = arena.alloc(n * dim * 4);
        const src = arena.f32(xPtr, (n - 1) * xStride + dim);
        const dst = arena.f32(rowsPtr, n * dim);
        for (let i = 0; i < n; i++) dst.set(src.subarray(i * xStride, i * xStride + dim), i * dim);
      }
      const cPtr = arena.allocFrom(centroids.subarray(0, k * dim));
      kern.nearestRows(rowsPtr, n, cPtr, k, dim, METRIC_L2, nearestPtr, distPtr);
      return;
    }
    const kPad = (k + 3) & ~3;
    const tPtr = arena.alloc(kPad * dim * 4);
    const normsPtr = arena.alloc(kPad * 4);
    const t = arena.f32(tPtr, kPad * dim).fill(0);
    const norms = arena.f32(normsPtr, kPad).fill(Infinity);
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let d = 0; d < dim; d++) {
        const v = centroids[c * dim + d];
        t[d * kPad + c] = v;
        s += v * v;
      }
      norms[c] = s;
    }
    kern.nearestRowsT(xPtr, n, xStride, dim, tPtr, normsPtr, kPad, nearestPtr, distPtr);
  } finally {
    arena.release(mark);
  }
}
