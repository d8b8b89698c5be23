// One call per query: zone selection -> entry points -> PQ lookup table -> beam search (seeded by
// zone scans) -> re-ranking. Everything the query needs is described by a context block, a
// u32[CTX_FIELDS] array written by src/search.ts: the index's arrays (shared by all threads) and
// one thread's scratch. Each thread owns its context, so searches run in parallel on one memory.

import { selectZones, searchPq, rerank } from './search';
import { pqLut, LUT_IP, LUT_L2, LUT_RESIDUAL_L2 } from './pq';
import { METRIC_L2 } from './distance';

// Context fields (u32 each). Keep in step with CTX in src/search.ts.
const N: i32 = 0;
const DIM: i32 = 1;
const METRIC: i32 = 2;
const M: i32 = 3;
const DEGREE: i32 = 4;
const N_ZONES: i32 = 5;
const N_GROUPS: i32 = 6;
const RESIDUAL: i32 = 7;
const HALF: i32 = 8;
const VECTORS: i32 = 9;
const CODES: i32 = 10;
const ADJACENCY: i32 = 11;
const CODEBOOKS_T: i32 = 12;
const CODEBOOK_NORMS: i32 = 13;
const CENTROIDS: i32 = 14;
const ZONE_START: i32 = 15;
const ZONE_ENTRY: i32 = 16;
const GROUP_CENTROIDS: i32 = 17;
const GROUP_START: i32 = 18;
const ZONE_OF: i32 = 19;
const VEC_TERM: i32 = 20;
const QUERY: i32 = 21;
const LUT: i32 = 22;
const VISITED: i32 = 23;
const EPOCH: i32 = 24;
const ZONE_TERM: i32 = 25;
const ZONE_TAG: i32 = 26;
const POOL_DIST: i32 = 27;
const POOL_IDS: i32 = 28;
const ZONE_IDS: i32 = 29;
const ZONE_DIST: i32 = 30;
const ENTRIES: i32 = 31;
const GROUP_SCRATCH: i32 = 32;
const OUT_IDS: i32 = 33;
const OUT_DIST: i32 = 34;
const ALLOW: i32 = 35;

// @ts-ignore: decorator
@inline
function get(ctx: usize, field: i32): u32 {
  return load<u32>(ctx + (<usize>field << 2));
}

// @ts-ignore: decorator
@inline
function ptr(ctx: usize, field: i32): usize {
  return <usize>load<u32>(ctx + (<usize>field << 2));
}

/**
 * Search the query in the context's query buffer; the best k (ids internal, kernel distances) go
 * to the context's out buffers, nearest first. Returns how many were found.
 * L: pool size (>= k); nProbe zones are selected (groupProbe groups of the tree are scanned for
 * them); of those, at most `scan` are scanned in full, and under L2 only zones whose squared
 * distance is within scanRatio of the nearest's; the best rerankCount pool entries are re-ranked.
 */
export function searchQuery(
  ctx: usize, k: i32, L: i32, nProbe: i32, groupProbe: i32, scan: i32, scanRatio: f32, rerankCount: i32,
): i32 {
  const q = ptr(ctx, QUERY);
  const dim = <i32>get(ctx, DIM);
  const metric = <i32>get(ctx, METRIC);
  const m = <i32>get(ctx, M);
  const nZones = <i32>get(ctx, N_ZONES);
  const residual = get(ctx, RESIDUAL) != 0;
  const zoneIds = ptr(ctx, ZONE_IDS);
  const zoneDist = ptr(ctx, ZONE_DIST);
  const entries = ptr(ctx, ENTRIES);
  const allow = ptr(ctx, ALLOW);

  const found = selectZones(
    q, ptr(ctx, CENTROIDS), nZones, dim, metric,
    ptr(ctx, GROUP_CENTROIDS), ptr(ctx, GROUP_START), <i32>get(ctx, N_GROUPS), groupProbe,
    nProbe, zoneIds, zoneDist, ptr(ctx, GROUP_SCRATCH),
  );
  const zoneEntry = ptr(ctx, ZONE_ENTRY);
  for (let i = 0; i < found; i++) {
    const z = load<u32>(zoneIds + (<usize>i << 2));
    store<u32>(entries + (<usize>i << 2), load<u32>(zoneEntry + (<usize>z << 2)));
  }
  let nScan = scan < found ? scan : found;
  if (nScan > 1 && metric == METRIC_L2) {
    const bound = load<f32>(zoneDist) * scanRatio;
    let c = 1;
    while (c < nScan && load<f32>(zoneDist + (<usize>c << 2)) <= bound) c++;
    nScan = c;
  }

  const lutMode = metric == METRIC_L2 ? (residual ? LUT_RESIDUAL_L2 : LUT_L2) : LUT_IP;
  const lut = ptr(ctx, LUT);
  pqLut(q, ptr(ctx, CODEBOOKS_T), ptr(ctx, CODEBOOK_NORMS), dim, m, lutMode, lut);

  // visited tags and zone-term tags share the epoch; clear both when it wraps
  let epoch = get(ctx, EPOCH) + 1;
  if (epoch == 65536) {
    memory.fill(ptr(ctx, VISITED), 0, <usize>get(ctx, N) << 1);
    if (residual) memory.fill(ptr(ctx, ZONE_TAG), 0, <usize>nZones << 1);
    epoch = 1;
  }
  store<u32>(ctx + (<usize>EPOCH << 2), epoch);

  const pool = searchPq(
    lut, ptr(ctx, CODES), m, ptr(ctx, ADJACENCY), <i32>get(ctx, DEGREE),
    entries, found, L, ptr(ctx, VISITED), <u16>epoch,
    ptr(ctx, POOL_DIST), ptr(ctx, POOL_IDS),
    residual ? ptr(ctx, ZONE_OF) : 0, ptr(ctx, ZONE_TERM), ptr(ctx, ZONE_TAG), ptr(ctx, VEC_TERM), q, ptr(ctx, CENTROIDS), dim, metric,
    zoneIds, nScan, ptr(ctx, ZONE_START), allow,
  );
  return rerank(
    q, ptr(ctx, VECTORS), dim, metric, <i32>get(ctx, HALF), ptr(ctx, POOL_IDS), pool, rerankCount, k,
    ptr(ctx, OUT_IDS), ptr(ctx, OUT_DIST), allow,
  );
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
  const dim = <i32>get(ctx, DIM);
  const rowBytes = <usize>dim << 2;
  const q = ptr(ctx, QUERY);
  const foundIds = ptr(ctx, OUT_IDS);
  const foundDist = ptr(ctx, OUT_DIST);
  for (let i = from; i < to; i++) {
    memory.copy(q, queries + <usize>i * rowBytes, rowBytes);
    const got = searchQuery(ctx, k, L, nProbe, groupProbe, scan, scanRatio, rerankCount);
    const slot = <usize>i * <usize>k << 2;
    memory.copy(outIds + slot, foundIds, <usize>got << 2);
    memory.copy(outDist + slot, foundDist, <usize>got << 2);
    for (let j = got; j < k; j++) {
      store<u32>(outIds + slot + (<usize>j << 2), 0xffffffff);
      store<f32>(outDist + slot + (<usize>j << 2), Infinity);
    }
  }
}

/**
 * Exact search of the query in the context's query buffer over `count` listed nodes (u32 at ids):
 * the best k into the context's out buffers. Filters too selective for the graph end up here.
 */
export function searchListed(ctx: usize, ids: usize, count: i32, k: i32): i32 {
  return rerank(
    ptr(ctx, QUERY), ptr(ctx, VECTORS), <i32>get(ctx, DIM), <i32>get(ctx, METRIC), <i32>get(ctx, HALF),
    ids, count, count, k, ptr(ctx, OUT_IDS), ptr(ctx, OUT_DIST), 0,
  );
}
