// Batch search with the zone scans grouped by zone (traversal 'exact' on binary16 rows). Searched
// one after another, queries that scan the same zone each load and widen its rows, at 2 float
// operations per dimension; here a slice of a batch first selects every query's zones, then scans
// each zone once for all the queries that scan it, on a copy of the zoned rows rounded to 16-bit
// integers (one scale per row, made once by roundRowsInto), four queries at a time (also rounded,
// one scale per query) by i32x4.dot_i16x8_s, eight products per instruction. Each query keeps its best rows
// by those approximate distances, a few more than its walk's pool holds; their exact distances
// (the walk's own) then seed the pool, and the walks, which differ per query, run one by one. The
// rounding only decides which rows seed a pool: every distance the walk orders by, and every
// distance returned, is the one searchQuery computes. Its reference is searchQuery itself
// (test/grouped.test.ts compares the two).

import { SearchContext, beginQuery, enterAt, zonesToScan, searchQuery, searchRange, writeResults } from './query';
import { selectZones, walkDistance, walkExactFromCall, rerank, insertSorted } from './search';
import { poolReset, poolInsert } from './pool';
import { scaleQueryForHalf, decode4, decodeHalf } from './half';
import { METRIC_L2, maxAbs } from './distance';

/** Rows a query keeps by approximate distance beyond its pool's L, at most (L more at most). */
const EXTRA_KEPT: i32 = 32;

// The slice's scratch, carved from one region by carve() (groupedScratchBytes gives its size).
/** f32[maxQueries * dim]: each query scaled for the half rows (scaleQueryForHalf). */
let scaled: usize = 0;
/** i16[maxQueries * padded]: each query rounded to integers; f32[maxQueries]: 1 / its scale. */
let queryInts: usize = 0;
let queryUnits: usize = 0;
/** u32[maxQueries * nProbe]: each query's selected zones, nearest first. */
let zones: usize = 0;
/** i32[maxQueries]: how many zones each query selected. */
let found: usize = 0;
/** i32[maxQueries]: how many of them it scans; -1: searched alone (its query could not be scaled). */
let scans: usize = 0;
/** u32[nZones + 1]: the pairs (zone, query) sorted by zone; zone z's are [pairStart[z], pairStart[z + 1]). */
let pairStart: usize = 0;
/** u32[maxQueries * nProbe]: the query of each pair. */
let pairQuery: usize = 0;
/** f32 / u32[maxQueries * kept], i32[maxQueries]: each query's best rows by approximate distance, nearest first. */
let listDist: usize = 0;
let listIds: usize = 0;
let listSize: usize = 0;

/** Dimensions of a rounded row: dim up to a multiple of 8 (zeros after dim). */
// @ts-ignore: decorator
@inline
function paddedDim(dim: i32): i32 {
  return (dim + 7) & ~7;
}

/** Bytes of one rounded row roundRowsInto writes (its units take 4 bytes per row more). */
export function roundedRowBytes(dim: i32): i32 {
  return paddedDim(dim) << 1;
}

/** Rows a query keeps by approximate distance for a pool of L. */
// @ts-ignore: decorator
@inline
function keptFor(L: i32): i32 {
  return L + (L < EXTRA_KEPT ? L : EXTRA_KEPT);
}

/**
 * Bits of the integers rows and queries are rounded to (magnitudes below 2^bits): as many as keep
 * each i32 lane of a dot product from overflowing (padded / 4 products summed in each lane).
 */
function roundBits(dim: i32): i32 {
  const perLane = paddedDim(dim) >> 2;
  const log = 32 - clz<i32>(perLane - 1);
  const bits = (30 - log) >> 1;
  return bits > 15 ? 15 : bits;
}

// @ts-ignore: decorator
@inline
function align(bytes: usize): usize {
  return (bytes + 15) & ~(<usize>15);
}

/** Lay the scratch out from `at`; returns the bytes it takes. */
function carve(at: usize, dim: i32, nZones: i32, maxQueries: i32, nProbe: i32, L: i32): usize {
  const q = <usize>maxQueries;
  const padded = <usize>paddedDim(dim);
  const kept = <usize>keptFor(L);
  let p = at;
  scaled = p;
  p += align(q * <usize>dim << 2);
  queryInts = p;
  p += align(q * padded << 1);
  queryUnits = p;
  p += align(q << 2);
  zones = p;
  p += align(q * <usize>nProbe << 2);
  found = p;
  p += align(q << 2);
  scans = p;
  p += align(q << 2);
  pairStart = p;
  p += align(<usize>(nZones + 1) << 2);
  pairQuery = p;
  p += align(q * <usize>nProbe << 2);
  listDist = p;
  p += align(q * kept << 2);
  listIds = p;
  p += align(q * kept << 2);
  listSize = p;
  p += align(q << 2);
  return p - at;
}

/** Bytes of scratch searchGrouped needs for slices of up to maxQueries queries. */
export function groupedScratchBytes(dim: i32, nZones: i32, maxQueries: i32, nProbe: i32, L: i32): usize {
  return carve(0, dim, nZones, maxQueries, nProbe, L);
}

/**
 * searchRange for traversal 'exact' on half rows with the zone scans grouped by zone: queries
 * [from, to) of the batch at `queries`, scanned on the rounded rows and units roundRowsInto made
 * for every zoned node (to - from <= the maxQueries the scratch was sized for, with
 * the same nProbe and L), results to outIds / outDist as searchRange writes them. A context with a
 * filter, a node to skip or float32 rows, or a slice the scratch (scratchBytes at `scratch`) cannot
 * hold, gets searchRange itself (the exact walk's; callers group only the exact walk).
 */
export function searchGrouped(
  ctx: usize, scratch: usize, scratchBytes: usize, maxQueries: i32, rounded: usize, units: usize, queries: usize, from: i32, to: i32,
  k: i32, L: i32, nProbe: i32, groupProbe: i32, scan: i32, scanRatio: f32,
  outIds: usize, outDist: usize,
): void {
  const c = changetype<SearchContext>(ctx);
  if (
    c.allow != 0 || c.skip != 0 || c.half == 0 || c.exactWalk == 0 || rounded == 0 || to - from > maxQueries ||
    groupedScratchBytes(<i32>c.dim, <i32>c.nZones, maxQueries, nProbe, L) > scratchBytes
  ) {
    searchRange(ctx, queries, from, to, k, L, nProbe, groupProbe, scan, scanRatio, k, outIds, outDist);
    return;
  }
  const dim = <i32>c.dim;
  const metric = <i32>c.metric;
  const nZones = <i32>c.nZones;
  const rowBytes = <usize>dim << 2;
  const nq = to - from;
  const bits = roundBits(dim);
  const kept = keptFor(L);
  carve(scratch, dim, nZones, maxQueries, nProbe, L);

  // zones of every query, and the pairs (zone, query) counted per zone
  memory.fill(pairStart, 0, <usize>(nZones + 1) << 2);
  for (let i = 0; i < nq; i++) {
    const q = queries + <usize>(from + i) * rowBytes;
    const picked = zones + (<usize>i * <usize>nProbe << 2);
    const got = selectZones(
      q, <usize>c.centroids, nZones, dim, metric, <usize>c.groupCentroids, <usize>c.groupStart, <i32>c.nGroups, groupProbe,
      nProbe, picked, <usize>c.zoneDist, <usize>c.groupScratch, 0, 0, 0,
    );
    store<i32>(found + (<usize>i << 2), got);
    let nScan = zonesToScan(<usize>c.zoneDist, got, scan, scanRatio, metric);
    if (!scaleQueryForHalf(q, dim, scaled + <usize>i * rowBytes) || !roundQuery(q, dim, bits, i)) nScan = -1;
    store<i32>(scans + (<usize>i << 2), nScan);
    store<i32>(listSize + (<usize>i << 2), 0);
    for (let s = 0; s < nScan; s++) {
      const at = pairStart + (<usize>load<u32>(picked + (<usize>s << 2)) << 2);
      store<u32>(at, load<u32>(at) + 1);
    }
  }
  // counts to starts; each pair placed at its zone's cursor, which then stands at the next zone's start
  let total: u32 = 0;
  for (let z = 0; z <= nZones; z++) {
    const at = pairStart + (<usize>z << 2);
    const count = load<u32>(at);
    store<u32>(at, total);
    total += count;
  }
  for (let i = 0; i < nq; i++) {
    const picked = zones + (<usize>i * <usize>nProbe << 2);
    const nScan = load<i32>(scans + (<usize>i << 2));
    for (let s = 0; s < nScan; s++) {
      const at = pairStart + (<usize>load<u32>(picked + (<usize>s << 2)) << 2);
      const slot = load<u32>(at);
      store<u32>(pairQuery + (<usize>slot << 2), <u32>i);
      store<u32>(at, slot + 1);
    }
  }
  for (let z = nZones; z > 0; z--) store<u32>(pairStart + (<usize>z << 2), load<u32>(pairStart + (<usize>(z - 1) << 2)));
  store<u32>(pairStart, 0);

  // each zone's rounded rows against its queries, four at a time
  const zoneStart = <usize>c.zoneStart;
  for (let z = 0; z < nZones; z++) {
    let p = load<u32>(pairStart + (<usize>z << 2));
    const end = load<u32>(pairStart + (<usize>(z + 1) << 2));
    if (p == end) continue;
    const r0 = load<u32>(zoneStart + (<usize>z << 2));
    const r1 = load<u32>(zoneStart + (<usize>(z + 1) << 2));
    for (; p + 4 <= end; p += 4) scanFour(c, rounded, units, pairQuery + (<usize>p << 2), r0, r1, kept, metric);
    for (; p < end; p++) scanOne(c, rounded, units, load<u32>(pairQuery + (<usize>p << 2)), r0, r1, kept, metric);
  }

  // the walks, each from its query's scanned rows and its zones' entries
  const foundIds = <usize>c.outIds;
  const foundDist = <usize>c.outDist;
  const entries = <usize>c.entries;
  const vectors = <usize>c.vectors;
  const norms = <usize>c.rowNorms;
  for (let i = 0; i < nq; i++) {
    const b = from + i;
    memory.copy(<usize>c.query, queries + <usize>b * rowBytes, rowBytes);
    const nScan = load<i32>(scans + (<usize>i << 2));
    let got: i32;
    if (nScan < 0) {
      got = searchQuery(ctx, k, L, nProbe, groupProbe, scan, scanRatio, k);
    } else {
      const epoch = beginQuery(c);
      const picked = zones + (<usize>i * <usize>nProbe << 2);
      const nFound = load<i32>(found + (<usize>i << 2));
      enterAt(c, picked, nFound);
      // the scanned zones' rows are visited, as a walk that scanned them itself would have left them
      for (let s = 0; s < nScan; s++) {
        const z = <usize>load<u32>(picked + (<usize>s << 2));
        tagVisited(<usize>c.visited, load<u32>(zoneStart + (z << 2)), load<u32>(zoneStart + ((z + 1) << 2)), epoch);
      }
      // the rows kept by approximate distance enter the pool at the walk's exact distances
      const qs = scaled + <usize>i * rowBytes;
      poolReset(<usize>c.poolDist, <usize>c.poolIds, L);
      const ids = listIds + (<usize>i * <usize>kept << 2);
      const size = load<i32>(listSize + (<usize>i << 2));
      for (let j = 0; j < size; j++) {
        const node = load<u32>(ids + (<usize>j << 2));
        poolInsert(walkDistance(node, <usize>c.query, qs, norms, vectors, dim, metric, true), node);
      }
      const pool = walkExactFromCall(
        <usize>c.query, qs, norms, vectors, dim, metric, true,
        <usize>c.adjacency, <i32>c.degree, entries, nFound, L, <usize>c.visited, epoch, 0, <usize>c.neighbours,
      );
      got = rerank(<usize>c.query, vectors, dim, metric, 1, <usize>c.poolIds, pool, k, k, foundIds, foundDist, 0);
    }
    writeResults(foundIds, foundDist, got, k, outIds + (<usize>b * <usize>k << 2), outDist + (<usize>b * <usize>k << 2));
  }
}

/** visited[from..to) = epoch, eight tags per store. */
// @ts-ignore: decorator
@inline
function tagVisited(visited: usize, from: u32, to: u32, epoch: u16): void {
  const tags = i16x8.splat(<i16>epoch);
  let node = from;
  for (; node + 8 <= to; node += 8) v128.store(visited + (<usize>node << 1), tags);
  for (; node < to; node++) store<u16>(visited + (<usize>node << 1), epoch);
}

/**
 * Query i (float32 at q) rounded to integers below 2^bits in magnitude, and 1 / its scale; false
 * (nothing written) for a query too small for a float32 scale (it is searched alone).
 */
function roundQuery(q: usize, dim: i32, bits: i32, i: i32): bool {
  const padded = paddedDim(dim);
  const out = queryInts + (<usize>i * <usize>padded << 1);
  const max = maxAbs(q, dim);
  const scale: f32 = max > 0 ? <f32>((1 << bits) - 1) / max : 0;
  if (!(scale < Infinity)) return false;
  for (let d = 0; d < dim; d++) store<i16>(out + (<usize>d << 1), <i16><i32>nearest<f32>(load<f32>(q + (<usize>d << 2)) * scale));
  for (let d = dim; d < padded; d++) store<i16>(out + (<usize>d << 1), 0);
  store<f32>(queryUnits + (<usize>i << 2), scale > 0 ? 1 / scale : 0);
  return true;
}

/**
 * Half rows [from, to) each rounded to integers below 2^roundBits(dim) in magnitude, with its own
 * scale: row i (padded, zeros after dim) at rounded + i * padded * 2, 1 / its scale at units + 4 i
 * (0 for a row of zeros). searchGrouped scans these instead of the half rows.
 */
export function roundRowsInto(vectors: usize, from: i32, to: i32, dim: i32, rounded: usize, units: usize): void {
  const padded = <usize>paddedDim(dim);
  const halfBytes = <usize>dim << 1;
  const body = dim & ~7;
  const bits = roundBits(dim);
  const magnitude = i16x8.splat(0x7fff);
  for (let r = from; r < to; r++) {
    const x = vectors + <usize>r * halfBytes;
    // the largest magnitude: half bit patterns without the sign order as their magnitudes do
    let top = i16x8.splat(0);
    for (let d = 0; d < body; d += 8) top = i16x8.max_u(top, v128.and(v128.load(x + (<usize>d << 1)), magnitude));
    top = i16x8.max_u(top, v128.shuffle<u16>(top, top, 4, 5, 6, 7, 0, 1, 2, 3));
    top = i16x8.max_u(top, v128.shuffle<u16>(top, top, 2, 3, 0, 1, 2, 3, 0, 1));
    top = i16x8.max_u(top, v128.shuffle<u16>(top, top, 1, 0, 1, 0, 1, 0, 1, 0));
    let topBits = <u32>i16x8.extract_lane_u(top, 0);
    for (let d = body; d < dim; d++) {
      const h = <u32>load<u16>(x + (<usize>d << 1)) & 0x7fff;
      if (h > topBits) topBits = h;
    }
    const max = decodeHalf(topBits);
    const scale: f32 = max > 0 ? <f32>((1 << bits) - 1) / max : 0;
    const scales = f32x4.splat(scale);
    const out = rounded + <usize>r * padded * 2;
    for (let d = 0; d < body; d += 8) {
      const h = v128.load(x + (<usize>d << 1));
      const lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(decode4(i32x4.extend_low_i16x8_s(h)), scales)));
      const hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(decode4(i32x4.extend_high_i16x8_s(h)), scales)));
      v128.store(out + (<usize>d << 1), i16x8.narrow_i32x4_s(lo, hi));
    }
    for (let d = body; d < dim; d++) {
      store<i16>(out + (<usize>d << 1), <i16><i32>nearest<f32>(decodeHalf(<u32>load<u16>(x + (<usize>d << 1))) * scale));
    }
    for (let d = dim; d < <i32>padded; d++) store<i16>(out + (<usize>d << 1), 0);
    store<f32>(units + (<usize>r << 2), scale > 0 ? 1 / scale : 0);
  }
}

/** Approximate walk distance of a row from its integer dot product with a query and the two units. */
// @ts-ignore: decorator
@inline
function approximate(dot: v128, queryUnit: f32, rowUnit: f32, node: u32, norms: usize, metric: i32): f32 {
  const lanes = f32x4.convert_i32x4_s(dot);
  // one unit at a time: their product may underflow where each scaled sum does not
  const d = (f32x4.extract_lane(lanes, 0) + f32x4.extract_lane(lanes, 1) + f32x4.extract_lane(lanes, 2) + f32x4.extract_lane(lanes, 3)) * queryUnit * rowUnit;
  return metric == METRIC_L2 ? load<f32>(norms + (<usize>node << 2)) - 2 * d : -d;
}

/**
 * Keep row `node` at approximate distance d in query i's list (d below its bound, the list's worst
 * when full); returns the new bound.
 */
// @ts-ignore: decorator
@inline
function keep(i: u32, d: f32, node: u32, kept: i32): f32 {
  const sizeAt = listSize + (<usize>i << 2);
  const offset = <usize>i * <usize>kept << 2;
  const size = insertSorted(d, node, listDist + offset, listIds + offset, load<i32>(sizeAt), kept);
  store<i32>(sizeAt, size);
  return boundOf(i, kept, size);
}

/** Query i's bound: the worst kept distance when its list is full, else +inf. */
// @ts-ignore: decorator
@inline
function boundOf(i: u32, kept: i32, size: i32): f32 {
  return size < kept ? <f32>Infinity : load<f32>(listDist + ((<usize>i * <usize>kept + <usize>(kept - 1)) << 2));
}

/** Rounded rows [r0, r1) against the four queries listed at `four`. */
function scanFour(c: SearchContext, rounded: usize, units: usize, four: usize, r0: u32, r1: u32, kept: i32, metric: i32): void {
  const padded = <usize>paddedDim(<i32>c.dim);
  const qBytes = padded << 1;
  const i0 = load<u32>(four);
  const i1 = load<u32>(four, 4);
  const i2 = load<u32>(four, 8);
  const i3 = load<u32>(four, 12);
  const q0 = queryInts + <usize>i0 * qBytes;
  const q1 = queryInts + <usize>i1 * qBytes;
  const q2 = queryInts + <usize>i2 * qBytes;
  const q3 = queryInts + <usize>i3 * qBytes;
  const u0 = load<f32>(queryUnits + (<usize>i0 << 2));
  const u1 = load<f32>(queryUnits + (<usize>i1 << 2));
  const u2 = load<f32>(queryUnits + (<usize>i2 << 2));
  const u3 = load<f32>(queryUnits + (<usize>i3 << 2));
  const norms = <usize>c.rowNorms;
  let b0 = boundOf(i0, kept, load<i32>(listSize + (<usize>i0 << 2)));
  let b1 = boundOf(i1, kept, load<i32>(listSize + (<usize>i1 << 2)));
  let b2 = boundOf(i2, kept, load<i32>(listSize + (<usize>i2 << 2)));
  let b3 = boundOf(i3, kept, load<i32>(listSize + (<usize>i3 << 2)));
  // two rows at a time: each query load feeds two products, so the loads no longer outnumber them
  // (batches ran 1.17-1.21x as fast as one row at a time on synthetic-10k, 1.13x on -100k). The four
  // distances of a row are computed before any is offered, and the odd row's loop below is kept
  // inline: a helper offering each distance as it is computed cost 3 %, four scanOne calls 5 %.
  let node = r0;
  for (; node + 2 <= r1; node += 2) {
    const x = rounded + <usize>node * qBytes;
    const y = x + qBytes;
    let a0 = i32x4.splat(0);
    let a1 = i32x4.splat(0);
    let a2 = i32x4.splat(0);
    let a3 = i32x4.splat(0);
    let c0 = i32x4.splat(0);
    let c1 = i32x4.splat(0);
    let c2 = i32x4.splat(0);
    let c3 = i32x4.splat(0);
    for (let o: usize = 0; o < qBytes; o += 16) {
      const h = v128.load(x + o);
      const g = v128.load(y + o);
      const w0 = v128.load(q0 + o);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(w0, h));
      c0 = i32x4.add(c0, i32x4.dot_i16x8_s(w0, g));
      const w1 = v128.load(q1 + o);
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(w1, h));
      c1 = i32x4.add(c1, i32x4.dot_i16x8_s(w1, g));
      const w2 = v128.load(q2 + o);
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(w2, h));
      c2 = i32x4.add(c2, i32x4.dot_i16x8_s(w2, g));
      const w3 = v128.load(q3 + o);
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(w3, h));
      c3 = i32x4.add(c3, i32x4.dot_i16x8_s(w3, g));
    }
    const unit = load<f32>(units + (<usize>node << 2));
    const d0 = approximate(a0, u0, unit, node, norms, metric);
    const d1 = approximate(a1, u1, unit, node, norms, metric);
    const d2 = approximate(a2, u2, unit, node, norms, metric);
    const d3 = approximate(a3, u3, unit, node, norms, metric);
    if (d0 < b0) b0 = keep(i0, d0, node, kept);
    if (d1 < b1) b1 = keep(i1, d1, node, kept);
    if (d2 < b2) b2 = keep(i2, d2, node, kept);
    if (d3 < b3) b3 = keep(i3, d3, node, kept);
    const next = node + 1;
    const unitNext = load<f32>(units + (<usize>next << 2));
    const e0 = approximate(c0, u0, unitNext, next, norms, metric);
    const e1 = approximate(c1, u1, unitNext, next, norms, metric);
    const e2 = approximate(c2, u2, unitNext, next, norms, metric);
    const e3 = approximate(c3, u3, unitNext, next, norms, metric);
    if (e0 < b0) b0 = keep(i0, e0, next, kept);
    if (e1 < b1) b1 = keep(i1, e1, next, kept);
    if (e2 < b2) b2 = keep(i2, e2, next, kept);
    if (e3 < b3) b3 = keep(i3, e3, next, kept);
  }
  for (; node < r1; node++) {
    const x = rounded + <usize>node * qBytes;
    const unit = load<f32>(units + (<usize>node << 2));
    let a0 = i32x4.splat(0);
    let a1 = i32x4.splat(0);
    let a2 = i32x4.splat(0);
    let a3 = i32x4.splat(0);
    for (let o: usize = 0; o < qBytes; o += 16) {
      const h = v128.load(x + o);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(q0 + o), h));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(q1 + o), h));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v128.load(q2 + o), h));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v128.load(q3 + o), h));
    }
    const d0 = approximate(a0, u0, unit, node, norms, metric);
    const d1 = approximate(a1, u1, unit, node, norms, metric);
    const d2 = approximate(a2, u2, unit, node, norms, metric);
    const d3 = approximate(a3, u3, unit, node, norms, metric);
    if (d0 < b0) b0 = keep(i0, d0, node, kept);
    if (d1 < b1) b1 = keep(i1, d1, node, kept);
    if (d2 < b2) b2 = keep(i2, d2, node, kept);
    if (d3 < b3) b3 = keep(i3, d3, node, kept);
  }
}

/** Rounded rows [r0, r1) against query i alone. */
function scanOne(c: SearchContext, rounded: usize, units: usize, i: u32, r0: u32, r1: u32, kept: i32, metric: i32): void {
  const qBytes = <usize>paddedDim(<i32>c.dim) << 1;
  const q0 = queryInts + <usize>i * qBytes;
  const u0 = load<f32>(queryUnits + (<usize>i << 2));
  const norms = <usize>c.rowNorms;
  let b0 = boundOf(i, kept, load<i32>(listSize + (<usize>i << 2)));
  for (let node = r0; node < r1; node++) {
    const x = rounded + <usize>node * qBytes;
    let a0 = i32x4.splat(0);
    for (let o: usize = 0; o < qBytes; o += 16) a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(q0 + o), v128.load(x + o)));
    const d0 = approximate(a0, u0, load<f32>(units + (<usize>node << 2)), node, norms, metric);
    if (d0 < b0) b0 = keep(i, d0, node, kept);
  }
}
