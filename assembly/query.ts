// One call per query: zone selection -> entry points -> PQ lookup table -> beam search (seeded by
// zone scans) -> re-ranking. Everything the query needs is described by a context block, a
// u32[CTX_FIELDS] array written by src/search.ts: the index's arrays (shared by all threads) and
// one thread's scratch. Each thread owns its context, so searches run in parallel on one memory.

import { selectZones, searchPq, walkExact, rerank, rankRows, scanRows, hasBit } from './search';
import { EXPANDED } from './pool';
import { scaleQueryForHalf } from './half';
import { pqLut, LUT_IP, LUT_L2, LUT_RESIDUAL_L2 } from './pq';
import { METRIC_L2 } from './distance';

// The per-thread context block: u32 fields written by src/search.ts, in this order (keep in step
// with CTX there). Read in place: an unmanaged class is a typed view of the block, no copy.
@unmanaged
export class SearchContext {
  n: u32;
  dim: u32;
  metric: u32;
  m: u32;
  degree: u32;
  nZones: u32;
  nGroups: u32;
  residual: u32;
  half: u32;
  vectors: u32;
  codes: u32;
  adjacency: u32;
  codebooksT: u32;
  codebookNorms: u32;
  centroids: u32;
  zoneStart: u32;
  zoneEntry: u32;
  groupCentroids: u32;
  groupStart: u32;
  zoneOf: u32;
  vecTerm: u32;
  query: u32;
  lut: u32;
  visited: u32;
  epoch: u32;
  zoneTerm: u32;
  zoneTag: u32;
  poolDist: u32;
  poolIds: u32;
  zoneIds: u32;
  zoneDist: u32;
  entries: u32;
  groupScratch: u32;
  outIds: u32;
  outDist: u32;
  allow: u32;
  neighbours: u32;
  codebooksQ: u32;
  codebookQScale: f32;
  queryPairs: u32;
  exactWalk: u32;
  rowNorms: u32;
  queryScaled: u32;
  skip: u32;
}

/** Bytes of a SearchContext: with the field order (test/context-blocks.test.ts), the offsets src/search.ts CTX assumes. */
export const SEARCH_CONTEXT_BYTES: i32 = offsetof<SearchContext>();

// Zones whose rows a walk scans in full (set by enterZones for the walk that follows it).
let scanZones: i32 = 0;

/**
 * Zone selection and entry points, shared by every walk: a new epoch for the visited tags, the
 * nProbe nearest zones (groupProbe groups of the tree scanned for them) into the context's zoneIds /
 * zoneDist, their medoids into entries; returns how many zones were found. Of those, at most `scan`
 * are scanned in full, and under L2 only zones whose squared distance is within scanRatio of the
 * nearest's (scanZones).
 */
function enterZones(c: SearchContext, nProbe: i32, groupProbe: i32, scan: i32, scanRatio: f32): i32 {
  const residual = c.residual != 0;
  const epoch = beginQuery(c);
  const found = selectZones(
    <usize>c.query, <usize>c.centroids, <i32>c.nZones, <i32>c.dim, <i32>c.metric,
    <usize>c.groupCentroids, <usize>c.groupStart, <i32>c.nGroups, groupProbe,
    nProbe, <usize>c.zoneIds, <usize>c.zoneDist, <usize>c.groupScratch,
    residual ? <usize>c.zoneTerm : 0, <usize>c.zoneTag, epoch,
  );
  enterAt(c, <usize>c.zoneIds, found);
  scanZones = zonesToScan(<usize>c.zoneDist, found, scan, scanRatio, <i32>c.metric);
  return found;
}

/** The entry points (medoids) of the `found` zones listed at zoneIds into the context's entries. */
// @ts-ignore: decorator
@inline
export function enterAt(c: SearchContext, zoneIds: usize, found: i32): void {
  const zoneEntry = <usize>c.zoneEntry;
  const entries = <usize>c.entries;
  for (let i = 0; i < found; i++) {
    const z = load<u32>(zoneIds + (<usize>i << 2));
    store<u32>(entries + (<usize>i << 2), load<u32>(zoneEntry + (<usize>z << 2)));
  }
}

/**
 * A new query's epoch for the visited tags (the visited and zone-term tags share it: both are
 * cleared when it wraps), with the context's node to skip, if any, tagged visited.
 */
export function beginQuery(c: SearchContext): u16 {
  let epoch = c.epoch + 1;
  if (epoch == 65536) {
    memory.fill(<usize>c.visited, 0, <usize>c.n << 1);
    if (c.residual != 0) memory.fill(<usize>c.zoneTag, 0, <usize>c.nZones << 1);
    epoch = 1;
  }
  c.epoch = epoch;
  // a node to keep out of this search (node + 1): tagged visited, nothing reaches or returns it
  if (c.skip != 0) store<u16>(<usize>c.visited + ((<usize>c.skip - 1) << 1), <u16>epoch);
  return <u16>epoch;
}

/**
 * How many of the `found` selected zones (their squared distances at zoneDist, nearest first) a
 * walk scans: at most `scan`, and under L2 only those within scanRatio of the nearest's distance.
 */
export function zonesToScan(zoneDist: usize, found: i32, scan: i32, scanRatio: f32, metric: i32): i32 {
  let nScan = scan < found ? scan : found;
  if (nScan > 1 && metric == METRIC_L2) {
    const bound = load<f32>(zoneDist) * scanRatio;
    let near = 1;
    while (near < nScan && load<f32>(zoneDist + (<usize>near << 2)) <= bound) near++;
    nScan = near;
  }
  return nScan;
}

/** The PQ walk from the `found` entries enterZones left: its pool (size returned) in the context's poolDist / poolIds, nearest first. */
function walkPq(c: SearchContext, found: i32, L: i32): i32 {
  const q = <usize>c.query;
  const dim = <i32>c.dim;
  const metric = <i32>c.metric;
  const m = <i32>c.m;
  const residual = c.residual != 0;
  const lutMode = metric == METRIC_L2 ? (residual ? LUT_RESIDUAL_L2 : LUT_L2) : LUT_IP;
  const lut = <usize>c.lut;
  pqLut(q, <usize>c.codebooksT, <usize>c.codebookNorms, dim, m, lutMode, lut, <usize>c.codebooksQ, c.codebookQScale, <usize>c.queryPairs);
  return searchPq(
    lut, <usize>c.codes, m, <usize>c.adjacency, <i32>c.degree,
    <usize>c.entries, found, L, <usize>c.visited, <u16>c.epoch,
    <usize>c.poolDist, <usize>c.poolIds,
    residual ? <usize>c.zoneOf : 0, <usize>c.zoneTerm, <usize>c.zoneTag, <usize>c.vecTerm, q, <usize>c.centroids, dim, metric,
    <usize>c.zoneIds, scanZones, <usize>c.zoneStart, <usize>c.allow, <usize>c.neighbours,
  );
}

/**
 * Search the query in the context's query buffer; the best k (ids internal, kernel distances) go
 * to the context's out buffers, nearest first. Returns how many were found.
 * L: pool size (>= k); nProbe zones are selected and up to `scan` of them scanned (enterZones); the
 * best rerankCount pool entries are re-ranked.
 * With the context's exactWalk set, the walk runs on exact distances instead (walkExact): no table,
 * and only the k results are re-scored.
 */
export function searchQuery(
  ctx: usize, k: i32, L: i32, nProbe: i32, groupProbe: i32, scan: i32, scanRatio: f32, rerankCount: i32,
): i32 {
  const c = changetype<SearchContext>(ctx);
  const q = <usize>c.query;
  const dim = <i32>c.dim;
  const metric = <i32>c.metric;
  const allow = <usize>c.allow;
  const found = enterZones(c, nProbe, groupProbe, scan, scanRatio);

  if (c.exactWalk != 0) {
    // traversal 'exact': the walk's order is final; the k nearest get their distances as
    // re-ranking computes them (the walk's half-row form leaves out |q|²)
    const half = c.half != 0;
    const qScaled = half && scaleQueryForHalf(q, dim, <usize>c.queryScaled) ? <usize>c.queryScaled : 0;
    const pool = walkExact(
      q, qScaled, <usize>c.rowNorms, <usize>c.vectors, dim, metric, half, <usize>c.adjacency, <i32>c.degree,
      <usize>c.entries, found, L, <usize>c.visited, <u16>c.epoch, <usize>c.poolDist, <usize>c.poolIds,
      <usize>c.zoneIds, scanZones, <usize>c.zoneStart, allow, <usize>c.neighbours,
    );
    return rerank(q, <usize>c.vectors, dim, metric, <i32>c.half, <usize>c.poolIds, pool, k, k, <usize>c.outIds, <usize>c.outDist, allow);
  }

  const pool = walkPq(c, found, L);
  return rerank(
    q, <usize>c.vectors, dim, metric, <i32>c.half, <usize>c.poolIds, pool, rerankCount, k,
    <usize>c.outIds, <usize>c.outDist, allow,
  );
}

/**
 * The PQ walk of searchQuery without its re-ranking, for rows kept outside this memory: the first
 * rerankCount pool entries the allow bitmap admits, as plain node ids, nearest first by PQ
 * distance, at the start of the context's poolIds; returns how many. The caller copies their rows
 * in and ranks them with rankStaged.
 */
export function searchCandidates(
  ctx: usize, L: i32, nProbe: i32, groupProbe: i32, scan: i32, scanRatio: f32, rerankCount: i32,
): i32 {
  const c = changetype<SearchContext>(ctx);
  const pool = walkPq(c, enterZones(c, nProbe, groupProbe, scan, scanRatio), L);
  const ids = <usize>c.poolIds;
  const allow = <usize>c.allow;
  let taken = 0;
  for (let i = 0; i < pool && taken < rerankCount; i++) {
    const id = load<u32>(ids + (<usize>i << 2)) & ~EXPANDED;
    if (allow != 0 && !hasBit(allow, id)) continue;
    store<u32>(ids + (<usize>taken << 2), id);
    taken++;
  }
  return taken;
}

/**
 * Rank `count` rows copied in at `rows` (row i is node ids[i]'s, stored as the index stores them)
 * against the query in the context's buffer, into the context's out buffers, which already hold
 * `size` results (0 to start afresh); returns how many they hold now (at most k).
 */
export function rankStaged(ctx: usize, rows: usize, ids: usize, count: i32, k: i32, size: i32): i32 {
  const c = changetype<SearchContext>(ctx);
  return rankRows(<usize>c.query, rows, <i32>c.dim, <i32>c.metric, <i32>c.half, ids, count, k, <usize>c.outIds, <usize>c.outDist, size);
}

/**
 * Search queries [from, to) of a batch (f32 rows of dim at `queries`) with one context; results go
 * to k slots per query at outIds / outDist (row q at q * k), padded with 0xFFFFFFFF / +inf when
 * fewer than k are found. One call per batch slice: a worker thread runs one of these at a time.
 */
export function searchRange(
  ctx: usize, queries: usize, from: i32, to: i32,
  k: i32, L: i32, nProbe: i32, groupProbe: i32, scan: i32, scanRatio: f32, rerankCount: i32,
  outIds: usize, outDist: usize,
): void {
  const c = changetype<SearchContext>(ctx);
  const dim = <i32>c.dim;
  const rowBytes = <usize>dim << 2;
  const q = <usize>c.query;
  const foundIds = <usize>c.outIds;
  const foundDist = <usize>c.outDist;
  for (let i = from; i < to; i++) {
    memory.copy(q, queries + <usize>i * rowBytes, rowBytes);
    const got = searchQuery(ctx, k, L, nProbe, groupProbe, scan, scanRatio, rerankCount);
    writeResults(foundIds, foundDist, got, k, outIds + (<usize>i * <usize>k << 2), outDist + (<usize>i * <usize>k << 2));
  }
}

/** A query's `got` results (of k) from the context's out buffers into its k batch slots, padded with 0xFFFFFFFF / +inf. */
export function writeResults(foundIds: usize, foundDist: usize, got: i32, k: i32, ids: usize, dists: usize): void {
  memory.copy(ids, foundIds, <usize>got << 2);
  memory.copy(dists, foundDist, <usize>got << 2);
  for (let j = got; j < k; j++) {
    store<u32>(ids + (<usize>j << 2), 0xffffffff);
    store<f32>(dists + (<usize>j << 2), Infinity);
  }
}

/**
 * Exact search of the query in the context's query buffer over `count` listed nodes (u32 at ids):
 * the best k into the context's out buffers. Filters too selective for the graph end up here.
 */
export function searchListed(ctx: usize, ids: usize, count: i32, k: i32): i32 {
  const c = changetype<SearchContext>(ctx);
  return rerank(
    <usize>c.query, <usize>c.vectors, <i32>c.dim, <i32>c.metric, <i32>c.half,
    ids, count, count, k, <usize>c.outIds, <usize>c.outDist, 0,
  );
}

/**
 * The 'scan' traversal of the query in the context's query buffer: every stored row of [0, n) the
 * context's allow bitmap admits compared with it (scanRows), the best k re-scored as re-ranking
 * does, into the context's out buffers, nearest first. Returns how many were found.
 */
export function searchAll(ctx: usize, n: i32, k: i32): i32 {
  const c = changetype<SearchContext>(ctx);
  const q = <usize>c.query;
  const dim = <i32>c.dim;
  const metric = <i32>c.metric;
  const half = c.half != 0;
  const qScaled = half && scaleQueryForHalf(q, dim, <usize>c.queryScaled) ? <usize>c.queryScaled : 0;
  const found = scanRows(q, qScaled, <usize>c.rowNorms, <usize>c.vectors, dim, metric, half, n, <usize>c.allow, <usize>c.poolDist, <usize>c.poolIds, k);
  return rerank(q, <usize>c.vectors, dim, metric, <i32>c.half, <usize>c.poolIds, found, k, k, <usize>c.outIds, <usize>c.outDist, 0);
}
