/**
 * Plain-TypeScript twins of assembly/search.ts and assembly/graph.ts: zone selection, beam search,
 * re-ranking and robust prune, written as directly as possible.
 */
import { distance, METRIC_L2 } from './distance.js';

/** Indices of the `count` smallest values, ascending; ties keep the lower index first. */
function smallest(values: number[], count: number): number[] {
  return values.map((v, i) => i).sort((a, b) => values[a] - values[b] || a - b).slice(0, count);
}

export function selectZones(
  q: Float32Array, centroids: Float32Array, nZones: number, dim: number, metric: number,
  groupCentroids: Float32Array, groupStart: Uint32Array, nGroups: number, groupProbe: number, nProbe: number,
): number[] {
  const zoneDist = (z: number) => distance(q, 0, centroids, z * dim, dim, metric);
  if (nGroups === 0) return smallest(Array.from({ length: nZones }, (_, z) => zoneDist(z)), nProbe);
  const groups = smallest(Array.from({ length: nGroups }, (_, g) => distance(q, 0, groupCentroids, g * dim, dim, metric)), groupProbe);
  const zones: number[] = [];
  for (const g of groups) for (let z = groupStart[g]; z < groupStart[g + 1]; z++) zones.push(z);
  const d = zones.map(zoneDist);
  return smallest(d, nProbe).map((i) => zones[i]);
}

/** Excluded nodes a filtered walk may expand per pool slot before it gives up (assembly/search.ts). */
export const MAX_DETOUR = 32;
/** Excluded nodes ahead of every allowed one in the zone scans that a walk always tolerates. */
export const MIN_AHEAD = 6;
/** Chance below which excluded nodes ahead of every allowed one are not put down to luck. */
export const AHEAD_CHANCE = 1e-4;

/**
 * The least t for which the t nearest of `scanned` nodes, `excluded` of them rejected at random,
 * are all rejected with chance below AHEAD_CHANCE; at least MIN_AHEAD; MIN_AHEAD when all are
 * rejected, excluded + 1 when no t is that unlikely.
 */
export function aheadLimit(scanned: number, excluded: number): number {
  if (excluded >= scanned) return MIN_AHEAD;
  let chance = 1;
  for (let t = 0; t < excluded; t++) {
    chance *= (excluded - t) / (scanned - t);
    if (chance < AHEAD_CHANCE) return Math.max(MIN_AHEAD, t + 1);
  }
  return excluded + 1;
}

/**
 * Beam search with a sorted pool of capacity L, seeded by every node of the scanned ranges and then
 * by the entries: expand the nearest unexpanded candidate, add every unvisited neighbour in
 * [lo, hi) that beats the pool's worst. `dist(node)` gives the traversal distance. Scans seed only
 * nodes that `admit` accepts; a node it rejects leaves the pool once expanded. The walk gives up
 * with an empty pool when aheadLimit of the scanned nodes it rejects are nearer than every scanned
 * one it accepts, or after it has expanded MAX_DETOUR * L rejected nodes. Returns the pool (ids
 * and distances), nearest first.
 */
export function beamSearch(
  dist: (node: number) => number, adjacency: Uint32Array, R: number, entries: number[], L: number, n: number,
  lo = 0, hi = n, scanRanges: [number, number][] = [], admit: (node: number) => boolean = () => true,
): { ids: number[]; dists: number[] } {
  const visited = new Uint8Array(n);
  const pool: { d: number; id: number; expanded: boolean }[] = [];
  const insert = (d: number, id: number) => {
    if (pool.length === L && d >= pool[L - 1].d) return;
    let pos = 0;
    while (pos < pool.length && pool[pos].d <= d) pos++;
    pool.splice(pos, 0, { d, id, expanded: false });
    if (pool.length > L) pool.pop();
  };
  // zone scans: every node of each range, in order, before the walk
  let scanned = 0;
  let rejected = 0;
  for (const [from, to] of scanRanges) {
    scanned += Math.max(0, to - from);
    for (let node = from; node < to; node++) {
      if (visited[node]) continue;
      visited[node] = 1;
      if (!admit(node)) {
        rejected++;
        continue;
      }
      const d = dist(node);
      if (pool.length < L || d < pool[pool.length - 1].d) insert(d, node);
    }
  }
  if (rejected > 0) {
    const nearest = pool.length ? pool[0].d : Infinity;
    const limit = aheadLimit(scanned, rejected);
    let ahead = 0;
    for (const [from, to] of scanRanges) {
      for (let node = from; node < to; node++) {
        if (!admit(node) && dist(node) < nearest && ++ahead >= limit) return { ids: [], dists: [] };
      }
    }
  }
  for (const e of entries) {
    if (visited[e]) continue;
    visited[e] = 1;
    insert(dist(e), e);
  }
  let detour = 0;
  for (;;) {
    const next = pool.find((c) => !c.expanded);
    if (!next) break;
    next.expanded = true;
    if (!admit(next.id)) {
      pool.splice(pool.indexOf(next), 1);
      if (++detour > L * MAX_DETOUR) return { ids: [], dists: [] };
    }
    const row = next.id * (R + 1);
    for (let j = 0; j < adjacency[row]; j++) {
      const nb = adjacency[row + 1 + j];
      if (nb < lo || nb >= hi || visited[nb]) continue;
      visited[nb] = 1;
      const d = dist(nb);
      if (pool.length < L || d < pool[pool.length - 1].d) insert(d, nb);
    }
  }
  return { ids: pool.map((c) => c.id), dists: pool.map((c) => c.d) };
}

/**
 * Exact distances of the first `count` candidates the filter admits (all by default), best k
 * ascending (ties: earlier candidate first).
 */
export function rerank(
  q: Float32Array, vectors: Float32Array, dim: number, metric: number, candIds: number[], k: number,
  count = candIds.length, admit: (id: number) => boolean = () => true,
): { ids: number[]; dists: number[] } {
  candIds = candIds.filter(admit).slice(0, count);
  const d = candIds.map((id) => distance(q, 0, vectors, id * dim, dim, metric));
  const best = smallest(d, k);
  return { ids: best.map((i) => candIds[i]), dists: best.map((i) => d[i]) };
}

/** Keep c unless an already kept s has alpha * d(s, c) <= d(p, c) (alpha squared for squared L2). */
export function robustPrune(
  vectors: Float32Array, dim: number, metric: number, candIds: number[], candDist: number[], R: number, alpha: number,
): number[] {
  const factor = metric === METRIC_L2 ? alpha * alpha : 1;
  const kept: number[] = [];
  for (let i = 0; i < candIds.length && kept.length < R; i++) {
    const c = candIds[i];
    const ok = kept.every((s) => s !== c && !(factor * distance(vectors, s * dim, vectors, c * dim, dim, metric) <= candDist[i]));
    if (ok) kept.push(c);
  }
  return kept;
}

/**
 * nb's list (row stride capacity + 1 in `adjacency`) and `extra` (unless -1), nearest to nb first
 * (ties: list order, extra last), robust-pruned to at most R, written back into the row.
 */
function reprune(
  vectors: Float32Array, dim: number, metric: number, adjacency: Uint32Array, capacity: number, R: number, alpha: number,
  nb: number, extra: number,
): void {
  const at = nb * (capacity + 1);
  const cand = Array.from(adjacency.subarray(at + 1, at + 1 + adjacency[at]));
  if (extra >= 0) cand.push(extra);
  const d = cand.map((c) => distance(vectors, nb * dim, vectors, c * dim, dim, metric));
  const order = cand.map((_, i) => i).sort((a, b) => d[a] - d[b] || a - b);
  const kept = robustPrune(vectors, dim, metric, order.map((i) => cand[i]), order.map((i) => d[i]), R, alpha);
  adjacency[at] = kept.length;
  adjacency.set(kept, at + 1);
}

/**
 * Back-links to `node` from each of its out-neighbours: appended while a list holds fewer than
 * `capacity`, else the list and node re-pruned to R.
 */
export function linkBack(
  vectors: Float32Array, dim: number, metric: number, adjacency: Uint32Array, R: number, capacity: number, alpha: number, node: number,
): void {
  const stride = capacity + 1;
  const out = Array.from(adjacency.subarray(node * stride + 1, node * stride + 1 + adjacency[node * stride]));
  for (const nb of out) {
    const count = adjacency[nb * stride];
    if (count < capacity) {
      adjacency[nb * stride + 1 + count] = node;
      adjacency[nb * stride] = count + 1;
    } else reprune(vectors, dim, metric, adjacency, capacity, R, alpha, nb, node);
  }
}

/** Every list of more than R links re-pruned to R, then rows [0, n) moved to stride R + 1; returns the narrowed rows. */
export function trimAndNarrow(
  vectors: Float32Array, dim: number, metric: number, adjacency: Uint32Array, n: number, R: number, capacity: number, alpha: number,
): Uint32Array {
  for (let i = 0; i < n; i++) if (adjacency[i * (capacity + 1)] > R) reprune(vectors, dim, metric, adjacency, capacity, R, alpha, i, -1);
  const out = new Uint32Array(n * (R + 1));
  for (let i = 0; i < n; i++) out.set(adjacency.subarray(i * (capacity + 1), i * (capacity + 1) + R + 1), i * (R + 1));
  return out;
}
