// Query-time kernels: zone selection, the beam search over the graph on PQ distances or on the
// stored rows (traversal 'exact'), and exact re-ranking; also the exact beam search the graph build
// uses. Each is one call per query (coarse calls across the JS/WASM border).
//
// Adjacency: u32[n * (R + 1)], row i = [count, nbr_0 .. nbr_{R-1}] (see src/graph.ts).
// Visited set: u16 tags[n]; node i is visited in this query when tags[i] == epoch (the caller bumps
// the epoch per query and clears the tags when it wraps).
//
// Filtered walks (allow != 0) cross nodes they may not return, since those keep the graph
// navigable, but such a node leaves the pool once expanded: the pool then fills with returnable
// nodes only, and the walk goes on until it holds L of them or runs out of graph. (Kept in the
// pool, excluded nodes near the query would fill it and end the walk with no result: issue 15.)
// A walk is no good when the filter excludes the query's neighbourhood: the allowed nodes nearest
// to it then lie behind a ball of excluded ones, in a dense shell that PQ distances cannot order
// and that the graph may reach only in part. Such a walk gives up and returns 0, and the caller
// scans the allowed rows instead. It gives up before walking when the zone scans find more excluded
// nodes nearer than every allowed one than a filter independent of the query would place there
// (see aheadLimit), and while walking once it has expanded more than MAX_DETOUR * L excluded nodes.

import { distance, METRIC_L2 } from './distance';
import { adc } from './pq';
import { distanceHalf, dotHalfScaled } from './half';
import { EXPANDED, poolReset, poolInsert, poolNext, poolPeek, poolBound, poolSize, poolCursor, poolDist, poolId } from './pool';

/** Excluded nodes a filtered walk may expand per pool slot before it gives up (see above). */
export const MAX_DETOUR: i32 = 32;
/**
 * Excluded nodes nearer than every allowed one in the zone scans that a walk tolerates whatever
 * the odds: with the query's 5 nearest excluded it still reaches recall@10 0.98, where a scan
 * would cost a pass over the allowed rows; with 10 to 100 excluded, recall stays >= 0.95 (20K x 32
 * clustered, ef 64; at 8, a ball of 30 fell to 0.94).
 */
export const MIN_AHEAD: i32 = 6;
/**
 * Chance below which excluded nodes ahead of every allowed one are not put down to luck. A walk
 * given up wrongly costs a scan of the allowed rows, up to hundreds of walks.
 */
export const AHEAD_CHANCE: f64 = 1e-4;

/**
 * How many of the `excluded` of `scanned` zone-scan nodes may lie nearer to the query than every
 * allowed one before the walk gives up: were the filter independent of the query, the t nearest
 * scanned nodes would all be excluded with chance (E / S) ((E - 1) / (S - 1)) ... over t factors;
 * the limit is the least t that makes this below AHEAD_CHANCE, and at least MIN_AHEAD (excluded + 1
 * when no t does). With no allowed node among the scanned ones, MIN_AHEAD.
 */
export function aheadLimit(scanned: i32, excluded: i32): i32 {
  if (excluded >= scanned) return MIN_AHEAD;
  let chance: f64 = 1;
  let t: i32 = 0;
  while (t < excluded && chance >= AHEAD_CHANCE) {
    chance *= <f64>(excluded - t) / <f64>(scanned - t);
    t++;
  }
  if (chance >= AHEAD_CHANCE) return excluded + 1;
  return t > MIN_AHEAD ? t : MIN_AHEAD;
}

/**
 * Take the candidate poolNext just returned (at poolCursor - 1) out of the pool: an expanded node
 * the filter excludes holds no slot.
 */
// @ts-ignore: decorator
@inline
function poolDropTaken(): void {
  const at = poolCursor - 1;
  for (let i = at; i < poolSize - 1; i++) {
    const from = <usize>(i + 1) << 2;
    store<f32>(poolDist + (<usize>i << 2), load<f32>(poolDist + from));
    store<u32>(poolId + (<usize>i << 2), load<u32>(poolId + from));
  }
  poolSize--;
  poolCursor = at;
}

// @ts-ignore: decorator
@inline
export function insertSorted(d: f32, id: u32, dists: usize, ids: usize, size: i32, capacity: i32): i32 {
  // keeps the best `capacity` entries sorted ascending; returns the new size
  if (size == capacity && d >= load<f32>(dists + (<usize>(size - 1) << 2))) return size;
  let pos = size < capacity ? size : capacity - 1;
  while (pos > 0 && load<f32>(dists + (<usize>(pos - 1) << 2)) > d) {
    store<f32>(dists + (<usize>pos << 2), load<f32>(dists + (<usize>(pos - 1) << 2)));
    store<u32>(ids + (<usize>pos << 2), load<u32>(ids + (<usize>(pos - 1) << 2)));
    pos--;
  }
  store<f32>(dists + (<usize>pos << 2), d);
  store<u32>(ids + (<usize>pos << 2), id);
  return size < capacity ? size + 1 : size;
}

/**
 * The nProbe zones whose centroids are nearest to q, nearest first, into outZones / outDist.
 * With nGroups == 0 every centroid is scanned (exact). Otherwise zones are grouped (zones of group g
 * are [groupStart[g], groupStart[g+1])) and only the members of the groupProbe nearest groups are
 * scanned. scratch: f32/u32 room for 2 * groupProbe entries. Returns the number of zones written.
 * With zoneTerm != 0, every distance computed is also kept as that zone's term for this query
 * (zoneTerm[z], zoneTag[z] = epoch), so residual PQ does not compute it again.
 */
export function selectZones(
  q: usize, centroids: usize, nZones: i32, dim: i32, metric: i32,
  groupCentroids: usize, groupStart: usize, nGroups: i32, groupProbe: i32,
  nProbe: i32, outZones: usize, outDist: usize, scratch: usize,
  zoneTerm: usize, zoneTag: usize, epoch: u16,
): i32 {
  const stride = <usize>dim << 2;
  const keep = zoneTerm != 0;
  let found: i32 = 0;
  if (nGroups == 0) {
    for (let z = 0; z < nZones; z++) {
      const d = distance(q, centroids + <usize>z * stride, dim, metric);
      if (keep) keepZoneTerm(<u32>z, d, zoneTerm, zoneTag, epoch);
      found = insertSorted(d, <u32>z, outDist, outZones, found, nProbe);
    }
    return found;
  }
  const gDist = scratch;
  const gIds = scratch + (<usize>groupProbe << 2);
  let groups: i32 = 0;
  for (let g = 0; g < nGroups; g++) {
    const d = distance(q, groupCentroids + <usize>g * stride, dim, metric);
    groups = insertSorted(d, <u32>g, gDist, gIds, groups, groupProbe);
  }
  for (let gi = 0; gi < groups; gi++) {
    const g = load<u32>(gIds + (<usize>gi << 2));
    const from = <i32>load<u32>(groupStart + (<usize>g << 2));
    const to = <i32>load<u32>(groupStart + (<usize>(g + 1) << 2));
    for (let z = from; z < to; z++) {
      const d = distance(q, centroids + <usize>z * stride, dim, metric);
      if (keep) keepZoneTerm(<u32>z, d, zoneTerm, zoneTag, epoch);
      found = insertSorted(d, <u32>z, outDist, outZones, found, nProbe);
    }
  }
  return found;
}

/** Record the query's distance to zone z's centroid for this query (see zoneTermOf). */
// @ts-ignore: decorator
@inline
function keepZoneTerm(z: u32, d: f32, zoneTerm: usize, zoneTag: usize, epoch: u16): void {
  store<f32>(zoneTerm + (<usize>z << 2), d);
  store<u16>(zoneTag + (<usize>z << 1), epoch);
}

/**
 * Beam search on PQ distances (ADC with the query's LUT). The pool is seeded first by a scan of
 * every node of the `nScan` zones listed at `scanZones` (zone z owns nodes [zoneStart[z],
 * zoneStart[z + 1]); its codes are contiguous, so a scan reads memory in order), then by `entries`.
 * Residual PQ adds zoneTerm[zoneOf[i]] + vecTerm[i] to every code's table sum; zoneTerm is filled
 * lazily (valid where zoneTag == epoch) from q and the zone centroids, so untouched zones cost nothing.
 * Pass zoneOf = 0 for plain PQ. allow: bitmap over nodes (bit i set: node i may be returned), or 0
 * for all; zone scans skip nodes outside it and the walk drops them once expanded (see the top of
 * this file). Leaves the pool (capacity L) sorted; returns its size, or 0 when a filtered walk gave up.
 */
export function searchPq(
  lut: usize, codes: usize, m: i32,
  adjacency: usize, R: i32,
  entries: usize, nEntries: i32, L: i32,
  visited: usize, epoch: u16,
  outDist: usize, outIds: usize,
  zoneOf: usize, zoneTerm: usize, zoneTag: usize, vecTerm: usize, q: usize, centroids: usize, dim: i32, metric: i32,
  scanZones: usize, nScan: i32, zoneStart: usize, allow: usize, neighbours: usize,
): i32 {
  poolReset(outDist, outIds, L);
  const rowStride = <usize>(R + 1) << 2;
  const residual = zoneOf != 0;
  const filtered = allow != 0;
  let scanned: i32 = 0;
  let excluded: i32 = 0;
  for (let s = 0; s < nScan; s++) {
    const z = load<u32>(scanZones + (<usize>s << 2));
    const from = load<u32>(zoneStart + (<usize>z << 2));
    const to = load<u32>(zoneStart + (<usize>(z + 1) << 2));
    if (from >= to) continue;
    scanned += <i32>(to - from);
    // residual: the zone term is shared by the whole zone; residualTerm caches it
    const zt: f32 = residual ? zoneTermOf(z, zoneTerm, zoneTag, epoch, q, centroids, dim, metric) : 0;
    for (let node = from; node < to; node++) {
      const tag = visited + (<usize>node << 1);
      if (load<u16>(tag) == epoch) continue;
      store<u16>(tag, epoch);
      // scans only seed the pool with nodes that may be returned; the walk below still crosses others
      if (filtered && !hasBit(allow, node)) {
        excluded++;
        continue;
      }
      let d = adc(lut, codes + <usize>node * <usize>m, m);
      if (residual) d += zt + load<f32>(vecTerm + (<usize>node << 2));
      if (d < poolBound()) poolInsert(d, node);
    }
  }
  if (excluded > 0) {
    // excluded nodes nearer than the nearest allowed one: a ball around the query? (see the top)
    const nearest: f32 = poolSize > 0 ? load<f32>(outDist) : <f32>Infinity;
    const limit = aheadLimit(scanned, excluded);
    let ahead: i32 = 0;
    for (let s = 0; s < nScan; s++) {
      const z = load<u32>(scanZones + (<usize>s << 2));
      const to = load<u32>(zoneStart + (<usize>(z + 1) << 2));
      const zt: f32 = residual ? zoneTermOf(z, zoneTerm, zoneTag, epoch, q, centroids, dim, metric) : 0;
      for (let node = load<u32>(zoneStart + (<usize>z << 2)); node < to; node++) {
        if (hasBit(allow, node)) continue;
        let d = adc(lut, codes + <usize>node * <usize>m, m);
        if (residual) d += zt + load<f32>(vecTerm + (<usize>node << 2));
        if (d < nearest && ++ahead >= limit) return 0;
      }
    }
  }
  for (let e = 0; e < nEntries; e++) {
    const node = load<u32>(entries + (<usize>e << 2));
    const tag = visited + (<usize>node << 1);
    if (load<u16>(tag) == epoch) continue;
    store<u16>(tag, epoch);
    let d = adc(lut, codes + <usize>node * <usize>m, m);
    if (residual) d += residualTerm(node, zoneOf, zoneTerm, zoneTag, epoch, vecTerm, q, centroids, dim, metric);
    poolInsert(d, node);
  }
  const detourLimit = L * MAX_DETOUR;
  let detour: i32 = 0;
  while (true) {
    const node = poolNext();
    if (node < 0) break;
    if (filtered && !hasBit(allow, <u32>node)) {
      poolDropTaken();
      if (++detour > detourLimit) return 0;
    }
    const row = adjacency + <usize>node * rowStride;
    const count = <i32>load<u32>(row);
    // gather the unvisited neighbours first, reading one byte of each one's code (and terms), and
    // the row of the candidate likely to be expanded next: the loads are independent, so their
    // cache misses overlap instead of stalling one ADC at a time
    let fresh: i32 = 0;
    let touched: u32 = 0;
    const next = poolPeek();
    if (next >= 0) touched = load<u32>(adjacency + <usize>next * rowStride);
    for (let j = 0; j < count; j++) {
      const nb = load<u32>(row + (<usize>(j + 1) << 2));
      const tag = visited + (<usize>nb << 1);
      if (load<u16>(tag) == epoch) continue;
      store<u16>(tag, epoch);
      store<u32>(neighbours + (<usize>fresh << 2), nb);
      fresh++;
      touched += <u32>load<u8>(codes + <usize>nb * <usize>m);
      if (residual) touched += load<u32>(vecTerm + (<usize>nb << 2)) ^ load<u32>(zoneOf + (<usize>nb << 2));
    }
    touchSink ^= touched;
    for (let j = 0; j < fresh; j++) {
      const nb = load<u32>(neighbours + (<usize>j << 2));
      let d = adc(lut, codes + <usize>nb * <usize>m, m);
      if (residual) d += residualTerm(nb, zoneOf, zoneTerm, zoneTag, epoch, vecTerm, q, centroids, dim, metric);
      if (d < poolBound()) poolInsert(d, nb);
    }
  }
  return poolSize;
}

/** Sink of the touch loads (kept so the optimiser cannot drop them). */
export let touchSink: u32 = 0;

/** The query's distance to zone z's centroid, computed on first use in this query (tag == epoch). */
// @ts-ignore: decorator
@inline
function zoneTermOf(z: u32, zoneTerm: usize, zoneTag: usize, epoch: u16, q: usize, centroids: usize, dim: i32, metric: i32): f32 {
  const tag = zoneTag + (<usize>z << 1);
  if (load<u16>(tag) == epoch) return load<f32>(zoneTerm + (<usize>z << 2));
  const t = distance(q, centroids + <usize>z * (<usize>dim << 2), dim, metric);
  store<f32>(zoneTerm + (<usize>z << 2), t);
  store<u16>(tag, epoch);
  return t;
}

// @ts-ignore: decorator
@inline
function residualTerm(
  node: u32, zoneOf: usize, zoneTerm: usize, zoneTag: usize, epoch: u16, vecTerm: usize, q: usize, centroids: usize, dim: i32, metric: i32,
): f32 {
  const z = load<u32>(zoneOf + (<usize>node << 2));
  return zoneTermOf(z, zoneTerm, zoneTag, epoch, q, centroids, dim, metric) + load<f32>(vecTerm + (<usize>node << 2));
}

/**
 * Distance from the float32 vector q to stored row `id` (binary16 rows when half, else float32).
 */
// @ts-ignore: decorator
@inline
export function rowDistance(q: usize, vectors: usize, id: u32, dim: i32, metric: i32, half: bool): f32 {
  return half
    ? distanceHalf(q, vectors + <usize>id * (<usize>dim << 1), dim, metric)
    : distance(q, vectors + <usize>id * (<usize>dim << 2), dim, metric);
}

/**
 * The neighbours listed in `row` (count of them) within [lo, hi) and not visited this epoch: marked
 * visited, written to `neighbours`, and every cache line of their stored rows touched, so that the
 * misses overlap instead of each distance computed next waiting for its row. Returns how many.
 */
// @ts-ignore: decorator
@inline
function freshNeighbours(
  row: usize, count: i32, visited: usize, epoch: u16, neighbours: usize, vectors: usize, rowBytes: usize, lo: u32, hi: u32,
): i32 {
  let fresh: i32 = 0;
  let touched: u32 = 0;
  for (let j = 0; j < count; j++) {
    const nb = load<u32>(row + (<usize>(j + 1) << 2));
    if (nb - lo >= hi - lo) continue;
    const tag = visited + (<usize>nb << 1);
    if (load<u16>(tag) == epoch) continue;
    store<u16>(tag, epoch);
    store<u32>(neighbours + (<usize>fresh << 2), nb);
    fresh++;
    const at = vectors + <usize>nb * rowBytes;
    for (let o: usize = 0; o < rowBytes; o += 64) touched += load<u8>(at + o);
  }
  touchSink ^= touched;
  return fresh;
}

/**
 * Beam search on exact distances to the stored rows (used to build the graph; rows binary16 when
 * half). Same pool contract as searchPq; only nodes in [lo, hi) are visited (one zone, when graphs
 * are built per zone). neighbours: scratch u32[R] for a node's unvisited neighbours.
 */
export function searchExact(
  q: usize, vectors: usize, dim: i32, metric: i32,
  adjacency: usize, R: i32,
  entries: usize, nEntries: i32, L: i32,
  visited: usize, epoch: u16,
  outDist: usize, outIds: usize, lo: u32, hi: u32, half: bool, neighbours: usize,
): i32 {
  poolReset(outDist, outIds, L);
  const rowStride = <usize>(R + 1) << 2;
  for (let e = 0; e < nEntries; e++) {
    const node = load<u32>(entries + (<usize>e << 2));
    const tag = visited + (<usize>node << 1);
    if (load<u16>(tag) == epoch) continue;
    store<u16>(tag, epoch);
    poolInsert(rowDistance(q, vectors, node, dim, metric, half), node);
  }
  const rowBytes = <usize>dim << (half ? 1 : 2);
  while (true) {
    const node = poolNext();
    if (node < 0) break;
    const row = adjacency + <usize>node * rowStride;
    const count = <i32>load<u32>(row);
    // the new neighbours' rows loaded together (the build's searches on random-100k waited for one row at a time)
    const fresh = freshNeighbours(row, count, visited, epoch, neighbours, vectors, rowBytes, lo, hi);
    for (let j = 0; j < fresh; j++) {
      const nb = load<u32>(neighbours + (<usize>j << 2));
      const d = rowDistance(q, vectors, nb, dim, metric, half);
      if (d < poolBound()) poolInsert(d, nb);
    }
  }
  return poolSize;
}

/**
 * Distance of stored row `node` during an exact walk: with qScaled (half rows), the dot-product
 * form (see dotHalfScaled), which under L2 is |x|² - 2 <q, x> from rowNorms, the squared distance
 * less |q|² (the same order); otherwise the row's distance to q.
 */
// @ts-ignore: decorator
@inline
export function walkDistance(
  node: u32, q: usize, qScaled: usize, rowNorms: usize, vectors: usize, dim: i32, metric: i32, half: bool,
): f32 {
  if (qScaled == 0) return rowDistance(q, vectors, node, dim, metric, half);
  const dot = dotHalfScaled(qScaled, vectors + <usize>node * (<usize>dim << 1), dim);
  return metric == METRIC_L2 ? load<f32>(rowNorms + (<usize>node << 2)) - 2 * dot : -dot;
}

/**
 * Beam search of a query on exact distances to the stored rows (traversal 'exact'): no lookup
 * table and no re-ranking, each distance costing more than a PQ code's. Seeded like searchPq, by
 * scans of the `nScan` zones at scanZones (nodes outside `allow` skipped), then by `entries`, and
 * filtered like it. qScaled: 0, or the query scaled for dotHalfScaled (half rows; rowNorms needed
 * under L2). Leaves the pool (capacity L) sorted by walk distance; returns its size, or 0 when a
 * filtered walk gave up.
 */
export function walkExact(
  q: usize, qScaled: usize, rowNorms: usize, vectors: usize, dim: i32, metric: i32, half: bool,
  adjacency: usize, R: i32,
  entries: usize, nEntries: i32, L: i32,
  visited: usize, epoch: u16,
  outDist: usize, outIds: usize,
  scanZones: usize, nScan: i32, zoneStart: usize, allow: usize, neighbours: usize,
): i32 {
  poolReset(outDist, outIds, L);
  const filtered = allow != 0;
  let scanned: i32 = 0;
  let excluded: i32 = 0;
  for (let s = 0; s < nScan; s++) {
    const z = load<u32>(scanZones + (<usize>s << 2));
    const from = load<u32>(zoneStart + (<usize>z << 2));
    const to = load<u32>(zoneStart + (<usize>(z + 1) << 2));
    if (to > from) scanned += <i32>(to - from);
    for (let node = from; node < to; node++) {
      const tag = visited + (<usize>node << 1);
      if (load<u16>(tag) == epoch) continue;
      store<u16>(tag, epoch);
      if (filtered && !hasBit(allow, node)) {
        excluded++;
        continue;
      }
      const d = walkDistance(node, q, qScaled, rowNorms, vectors, dim, metric, half);
      if (d < poolBound()) poolInsert(d, node);
    }
  }
  if (excluded > 0) {
    // excluded nodes nearer than the nearest allowed one: a ball around the query? (see the top)
    const nearest: f32 = poolSize > 0 ? load<f32>(outDist) : <f32>Infinity;
    const limit = aheadLimit(scanned, excluded);
    let ahead: i32 = 0;
    for (let s = 0; s < nScan; s++) {
      const z = load<u32>(scanZones + (<usize>s << 2));
      const to = load<u32>(zoneStart + (<usize>(z + 1) << 2));
      for (let node = load<u32>(zoneStart + (<usize>z << 2)); node < to; node++) {
        if (hasBit(allow, node)) continue;
        if (walkDistance(node, q, qScaled, rowNorms, vectors, dim, metric, half) < nearest && ++ahead >= limit) return 0;
      }
    }
  }
  return walkExactFrom(
    q, qScaled, rowNorms, vectors, dim, metric, half, adjacency, R, entries, nEntries, L, visited, epoch, allow, neighbours,
  );
}

/**
 * The rest of walkExact once its pool (reset for capacity L) holds what the zone scans found and
 * those nodes are tagged visited: the entries, then the walk. Batches whose zone scans are grouped
 * by zone (assembly/grouped.ts) seed the pool themselves and walk from here.
 */
// @ts-ignore: decorator
@inline
export function walkExactFrom(
  q: usize, qScaled: usize, rowNorms: usize, vectors: usize, dim: i32, metric: i32, half: bool,
  adjacency: usize, R: i32, entries: usize, nEntries: i32, L: i32,
  visited: usize, epoch: u16, allow: usize, neighbours: usize,
): i32 {
  const rowStride = <usize>(R + 1) << 2;
  const rowBytes = half ? <usize>dim << 1 : <usize>dim << 2;
  const filtered = allow != 0;
  for (let e = 0; e < nEntries; e++) {
    const node = load<u32>(entries + (<usize>e << 2));
    const tag = visited + (<usize>node << 1);
    if (load<u16>(tag) == epoch) continue;
    store<u16>(tag, epoch);
    poolInsert(walkDistance(node, q, qScaled, rowNorms, vectors, dim, metric, half), node);
  }
  const detourLimit = L * MAX_DETOUR;
  let detour: i32 = 0;
  while (true) {
    const node = poolNext();
    if (node < 0) break;
    if (filtered && !hasBit(allow, <u32>node)) {
      poolDropTaken();
      if (++detour > detourLimit) return 0;
    }
    const row = adjacency + <usize>node * rowStride;
    const count = <i32>load<u32>(row);
    // the new neighbours' rows loaded together (waiting for one at a time cost 7 % of a siftsmall query)
    const fresh = freshNeighbours(row, count, visited, epoch, neighbours, vectors, rowBytes, 0, 0xffffffff);
    for (let j = 0; j < fresh; j++) {
      const nb = load<u32>(neighbours + (<usize>j << 2));
      const d = walkDistance(nb, q, qScaled, rowNorms, vectors, dim, metric, half);
      if (d < poolBound()) poolInsert(d, nb);
    }
  }
  return poolSize;
}

/**
 * walkExactFrom as a function of its own, for callers that should not take in its body (the
 * grouped batch kernel: inlined there, its two-thread batches ran 1.4x instead of 1.7x one thread).
 */
export function walkExactFromCall(
  q: usize, qScaled: usize, rowNorms: usize, vectors: usize, dim: i32, metric: i32, half: bool,
  adjacency: usize, R: i32, entries: usize, nEntries: i32, L: i32,
  visited: usize, epoch: u16, allow: usize, neighbours: usize,
): i32 {
  return walkExactFrom(q, qScaled, rowNorms, vectors, dim, metric, half, adjacency, R, entries, nEntries, L, visited, epoch, allow, neighbours);
}

/**
 * The 'scan' traversal: every stored row of [0, n) that `allow` admits (0: all), in order, so the
 * rows stream from memory with no graph and no table. Distances in the exact walk's form
 * (walkDistance); the best k go to poolDist / poolIds (capacity >= k), sorted ascending, for
 * rerank to re-score. Returns how many.
 */
export function scanRows(
  q: usize, qScaled: usize, rowNorms: usize, vectors: usize, dim: i32, metric: i32, half: bool,
  n: i32, allow: usize, poolDist: usize, poolIds: usize, k: i32,
): i32 {
  let size: i32 = 0;
  for (let node: u32 = 0; node < <u32>n; node++) {
    if (allow != 0 && !hasBit(allow, node)) continue;
    size = insertSorted(walkDistance(node, q, qScaled, rowNorms, vectors, dim, metric, half), node, poolDist, poolIds, size, k);
  }
  return size;
}

/** Bit `node` of the bitmap at `bits` (node i is bit i & 7 of byte i >> 3). */
// @ts-ignore: decorator
@inline
export function hasBit(bits: usize, node: u32): bool {
  return ((<u32>load<u8>(bits + (<usize>node >> 3)) >> (node & 7)) & 1) != 0;
}

/**
 * Re-ranking on the stored vectors: full distances for the first `count` candidates (of `available`
 * at candIds, expanded bits ignored) that the bitmap `allow` admits (0: all), the best k sorted
 * ascending into outIds / outDist. Returns how many were written.
 * halfStorage: rows are binary16 (see half.ts) instead of float32.
 */
export function rerank(
  q: usize, vectors: usize, dim: i32, metric: i32, halfStorage: i32,
  candIds: usize, available: i32, count: i32, k: i32, outIds: usize, outDist: usize, allow: usize,
): i32 {
  let size: i32 = 0;
  let taken: i32 = 0;
  const stride = halfStorage ? <usize>dim << 1 : <usize>dim << 2;
  // read one byte of every cache line of the candidates' rows first: independent loads whose
  // misses overlap, where the distances below would wait for each row in turn
  const touchCount = available < count ? available : count;
  let touched: u32 = 0;
  for (let i = 0; i < touchCount; i++) {
    const row = vectors + <usize>(load<u32>(candIds + (<usize>i << 2)) & ~EXPANDED) * stride;
    for (let o: usize = 0; o < stride; o += 64) touched += load<u8>(row + o);
  }
  touchSink ^= touched;
  for (let i = 0; i < available && taken < count; i++) {
    const id = load<u32>(candIds + (<usize>i << 2)) & ~EXPANDED;
    if (allow != 0 && !hasBit(allow, id)) continue;
    taken++;
    const row = vectors + <usize>id * stride;
    const d = halfStorage ? distanceHalf(q, row, dim, metric) : distance(q, row, dim, metric);
    size = insertSorted(d, id, outDist, outIds, size, k);
  }
  return size;
}

/**
 * Exact distances of `count` rows laid out one after another at `rows` (row i belongs to node
 * ids[i]; binary16 when halfStorage) inserted into the sorted results at outIds / outDist, which
 * hold `size` already; keeps the best k, returns how many are held. Re-ranking of rows kept outside
 * this memory (copied in by the caller), with rerank's distances.
 */
export function rankRows(
  q: usize, rows: usize, dim: i32, metric: i32, halfStorage: i32,
  ids: usize, count: i32, k: i32, outIds: usize, outDist: usize, size: i32,
): i32 {
  const stride = halfStorage ? <usize>dim << 1 : <usize>dim << 2;
  for (let i = 0; i < count; i++) {
    const row = rows + <usize>i * stride;
    const d = halfStorage ? distanceHalf(q, row, dim, metric) : distance(q, row, dim, metric);
    size = insertSorted(d, load<u32>(ids + (<usize>i << 2)), outDist, outIds, size, k);
  }
  return size;
}

/** Clear the expanded bits of the pool's ids in place (so callers read plain node ids). */
export function stripExpanded(ids: usize, count: i32): void {
  for (let i = 0; i < count; i++) {
    const p = ids + (<usize>i << 2);
    store<u32>(p, load<u32>(p) & ~EXPANDED);
  }
}
