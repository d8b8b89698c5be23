// Graph construction: HNSW-style incremental insertion into one flat proximity graph, with the
// neighbour-diversity (robust prune) rule. Adjacency layout as in search.ts.

import { METRIC_L2 } from './distance';
import { decodeHalfBlock } from './half';
import { EXPANDED } from './pool';
import { hasBit, rowDistance, searchExact, selectZones } from './search';

/** Row `id` as float32: its own address, or decoded into `into` when rows are binary16. */
// @ts-ignore: decorator
@inline
export function rowAsFloat(vectors: usize, id: u32, dim: i32, half: bool, into: usize): usize {
  if (!half) return vectors + <usize>id * (<usize>dim << 2);
  decodeHalfBlock(vectors + <usize>id * (<usize>dim << 1), into, dim);
  return into;
}

/**
 * Robust prune (Vamana's rule; alpha = 1 is HNSW's heuristic): walk candidates nearest first and
 * keep c unless an already kept s is close to it: alpha * d(s, c) <= d(p, c) for L2 (distances are
 * squared, so alpha enters squared), d(s, c) <= d(p, c) for inner product.
 * candIds / candDist: `count` candidates sorted by distance to p ascending. Writes up to R kept ids
 * to outIds and returns how many. Rows are binary16 when half; rowScratch holds f32[dim] then.
 */
export function robustPrune(
  vectors: usize, dim: i32, metric: i32,
  candIds: usize, candDist: usize, count: i32, R: i32, alpha: f32, outIds: usize, half: bool, rowScratch: usize,
): i32 {
  const factor: f32 = metric == METRIC_L2 ? alpha * alpha : <f32>1;
  let kept: i32 = 0;
  for (let i = 0; i < count && kept < R; i++) {
    const c = load<u32>(candIds + (<usize>i << 2));
    const dpc = load<f32>(candDist + (<usize>i << 2));
    const cv = kept > 0 ? rowAsFloat(vectors, c, dim, half, rowScratch) : 0;
    let ok = true;
    for (let j = 0; j < kept; j++) {
      const s = load<u32>(outIds + (<usize>j << 2));
      if (s == c) { ok = false; break; }
      if (factor * rowDistance(cv, vectors, s, dim, metric, half) <= dpc) { ok = false; break; }
    }
    if (ok) {
      store<u32>(outIds + (<usize>kept << 2), c);
      kept++;
    }
  }
  return kept;
}

/**
 * First half of inserting `node` (whose vector is stored): beam search with L = efConstruction from
 * `entries`, then robust prune of the candidates into the node's own row (at most R out-links).
 * Reads other rows only, writes only the node's row: nodes of one batch can do this in parallel
 * against a graph that does not change meanwhile (a batch's nodes have no in-links yet, so no
 * search reaches them). Candidates are limited to nodes in [lo, hi). Rows are binary16 when half.
 * scratch layout (bytes): dist f32[L] | ids u32[L] | nbrIds u32[R+1] | nbrDist f32[R+1] | two f32[dim]
 * rows (see LINK_SCRATCH in src/graph.ts).
 */
export function linkOut(
  node: u32, vectors: usize, dim: i32, metric: i32,
  adjacency: usize, R: i32,
  entries: usize, nEntries: i32, L: i32, alpha: f32,
  visited: usize, epoch: u16, scratch: usize, lo: u32, hi: u32, half: bool, deleted: usize,
): void {
  const poolDist = scratch;
  const poolIds = poolDist + (<usize>L << 2);
  const rowA = scratch + (<usize>L << 3) + (<usize>(R + 1) << 3);
  const rowB = rowA + (<usize>dim << 2);
  const q = rowAsFloat(vectors, node, dim, half, rowA);
  // the node itself may be reached from an entry; mark it visited so it never becomes a candidate
  store<u16>(visited + (<usize>node << 1), epoch);
  const searched = searchExact(q, vectors, dim, metric, adjacency, R, entries, nEntries, L, visited, epoch, poolDist, poolIds, lo, hi, half);
  // deleted nodes (bitmap, 0: none) lead the search but are no neighbours
  let found: i32 = 0;
  for (let i = 0; i < searched; i++) {
    const id = load<u32>(poolIds + (<usize>i << 2)) & ~EXPANDED;
    if (deleted != 0 && hasBit(deleted, id)) continue;
    store<u32>(poolIds + (<usize>found << 2), id);
    store<f32>(poolDist + (<usize>found << 2), load<f32>(poolDist + (<usize>i << 2)));
    found++;
  }
  const row = adjacency + <usize>node * (<usize>(R + 1) << 2);
  store<u32>(row, robustPrune(vectors, dim, metric, poolIds, poolDist, found, R, alpha, row + 4, half, rowB));
}

/**
 * Second half: a back-link to `node` from each of its out-neighbours nb with nb % lanes == lane,
 * re-pruning nb's list when it is full. Lanes own disjoint targets, so lanes run in parallel, and
 * each target sees its new links in batch order whatever the lane count: the graph is the same.
 * scratch as for linkOut.
 */
export function linkBack(
  node: u32, vectors: usize, dim: i32, metric: i32, adjacency: usize, R: i32, L: i32, alpha: f32,
  scratch: usize, lane: u32, lanes: u32, half: bool,
): void {
  const rowStride = <usize>(R + 1) << 2;
  const nbrIds = scratch + (<usize>L << 3);
  const nbrDist = nbrIds + (<usize>(R + 1) << 2);
  const rowA = nbrDist + (<usize>(R + 1) << 2);
  const rowB = rowA + (<usize>dim << 2);
  const row = adjacency + <usize>node * rowStride;
  const degree = <i32>load<u32>(row);
  for (let i = 0; i < degree; i++) {
    const nb = load<u32>(row + (<usize>(i + 1) << 2));
    if (nb % lanes != lane) continue;
    const nrow = adjacency + <usize>nb * rowStride;
    const count = <i32>load<u32>(nrow);
    if (count < R) {
      store<u32>(nrow + (<usize>(count + 1) << 2), node);
      store<u32>(nrow, count + 1);
      continue;
    }
    // full: candidates = current neighbours + node, sorted by distance to nb, pruned back to R
    const nv = rowAsFloat(vectors, nb, dim, half, rowA);
    let size: i32 = 0;
    for (let j = 0; j <= count; j++) {
      const c = j < count ? load<u32>(nrow + (<usize>(j + 1) << 2)) : node;
      const d = rowDistance(nv, vectors, c, dim, metric, half);
      // insertion sort: lists are at most R + 1 long
      let pos = size;
      while (pos > 0 && load<f32>(nbrDist + (<usize>(pos - 1) << 2)) > d) {
        store<f32>(nbrDist + (<usize>pos << 2), load<f32>(nbrDist + (<usize>(pos - 1) << 2)));
        store<u32>(nbrIds + (<usize>pos << 2), load<u32>(nbrIds + (<usize>(pos - 1) << 2)));
        pos--;
      }
      store<f32>(nbrDist + (<usize>pos << 2), d);
      store<u32>(nbrIds + (<usize>pos << 2), c);
      size++;
    }
    store<u32>(nrow, robustPrune(vectors, dim, metric, nbrIds, nbrDist, size, R, alpha, nrow + 4, half, rowB));
  }
}

// Build context: u32 fields written by src/graph.ts (keep in step with BCTX there). Index arrays are
// shared; visited, epoch and scratch belong to one lane (thread).
const B_VECTORS: i32 = 0;
const B_DIM: i32 = 1;
const B_METRIC: i32 = 2;
const B_ADJACENCY: i32 = 3;
const B_DEGREE: i32 = 4;
const B_L: i32 = 5;
const B_ALPHA: i32 = 6; // f32 bits
const B_CENTROIDS: i32 = 7;
const B_N_ZONES: i32 = 8;
const B_GROUP_CENTROIDS: i32 = 9;
const B_GROUP_START: i32 = 10;
const B_N_GROUPS: i32 = 11;
const B_GROUP_PROBE: i32 = 12;
const B_PROBE: i32 = 13;
const B_ZONE_ENTRY: i32 = 14;
const B_ZONE_START: i32 = 15;
const B_ZONE_OF: i32 = 16;
const B_PER_ZONE: i32 = 17;
const B_ORDER: i32 = 18;
const B_N: i32 = 19;
const B_VISITED: i32 = 20;
const B_EPOCH: i32 = 21;
const B_SCRATCH: i32 = 22;
const B_ENTRIES: i32 = 23;
const B_ZONE_IDS: i32 = 24;
const B_ZONE_DIST: i32 = 25;
const B_GROUP_SCRATCH: i32 = 26;
const B_HALF: i32 = 27;
const B_DELETED: i32 = 28;

// @ts-ignore: decorator
@inline
function bget(ctx: usize, field: i32): u32 {
  return load<u32>(ctx + (<usize>field << 2));
}

/**
 * linkOut for the nodes order[from..to): entries are the medoids of the node's `probe` nearest
 * zones (per-zone graphs: its own zone's medoid, candidates limited to its zone).
 */
export function buildOut(ctx: usize, from: i32, to: i32): void {
  const vectors = <usize>bget(ctx, B_VECTORS);
  const dim = <i32>bget(ctx, B_DIM);
  const metric = <i32>bget(ctx, B_METRIC);
  const adjacency = <usize>bget(ctx, B_ADJACENCY);
  const R = <i32>bget(ctx, B_DEGREE);
  const L = <i32>bget(ctx, B_L);
  const alpha = reinterpret<f32>(bget(ctx, B_ALPHA));
  const order = <usize>bget(ctx, B_ORDER);
  const n = bget(ctx, B_N);
  const visited = <usize>bget(ctx, B_VISITED);
  const scratch = <usize>bget(ctx, B_SCRATCH);
  const entries = <usize>bget(ctx, B_ENTRIES);
  const zoneIds = <usize>bget(ctx, B_ZONE_IDS);
  const zoneEntry = <usize>bget(ctx, B_ZONE_ENTRY);
  const zoneStart = <usize>bget(ctx, B_ZONE_START);
  const perZone = bget(ctx, B_PER_ZONE) != 0;
  const half = bget(ctx, B_HALF) != 0;
  const deleted = <usize>bget(ctx, B_DELETED);
  let epoch = bget(ctx, B_EPOCH);
  for (let i = from; i < to; i++) {
    const node = load<u32>(order + (<usize>i << 2));
    epoch++;
    if (epoch == 65536) {
      memory.fill(visited, 0, <usize>n << 1);
      epoch = 1;
    }
    let lo: u32 = 0;
    let hi: u32 = n;
    let nEntries: i32;
    if (perZone) {
      const z = load<u32>(<usize>bget(ctx, B_ZONE_OF) + (<usize>node << 2));
      lo = load<u32>(zoneStart + (<usize>z << 2));
      hi = load<u32>(zoneStart + (<usize>(z + 1) << 2));
      const medoid = load<u32>(zoneEntry + (<usize>z << 2));
      store<u32>(entries, medoid);
      nEntries = medoid == node ? 0 : 1;
    } else {
      // the scratch's first row holds the node's vector as float32 for zone selection (linkOut
      // decodes it there again)
      const scratchRow = scratch + (<usize>L << 3) + (<usize>(R + 1) << 3);
      nEntries = selectZones(
        rowAsFloat(vectors, node, dim, half, scratchRow), <usize>bget(ctx, B_CENTROIDS), <i32>bget(ctx, B_N_ZONES), dim, metric,
        <usize>bget(ctx, B_GROUP_CENTROIDS), <usize>bget(ctx, B_GROUP_START), <i32>bget(ctx, B_N_GROUPS),
        <i32>bget(ctx, B_GROUP_PROBE), <i32>bget(ctx, B_PROBE), zoneIds, <usize>bget(ctx, B_ZONE_DIST),
        <usize>bget(ctx, B_GROUP_SCRATCH),
      );
      for (let e = 0; e < nEntries; e++) {
        const z = load<u32>(zoneIds + (<usize>e << 2));
        store<u32>(entries + (<usize>e << 2), load<u32>(zoneEntry + (<usize>z << 2)));
      }
    }
    linkOut(node, vectors, dim, metric, adjacency, R, entries, nEntries, L, alpha, visited, <u16>epoch, scratch, lo, hi, half, deleted);
  }
  store<u32>(ctx + (<usize>B_EPOCH << 2), epoch);
}

/** linkBack for the nodes order[from..to), in order, for this lane's targets. */
export function buildBack(ctx: usize, from: i32, to: i32, lane: u32, lanes: u32): void {
  const vectors = <usize>bget(ctx, B_VECTORS);
  const dim = <i32>bget(ctx, B_DIM);
  const metric = <i32>bget(ctx, B_METRIC);
  const adjacency = <usize>bget(ctx, B_ADJACENCY);
  const R = <i32>bget(ctx, B_DEGREE);
  const L = <i32>bget(ctx, B_L);
  const alpha = reinterpret<f32>(bget(ctx, B_ALPHA));
  const order = <usize>bget(ctx, B_ORDER);
  const scratch = <usize>bget(ctx, B_SCRATCH);
  const half = bget(ctx, B_HALF) != 0;
  for (let i = from; i < to; i++) {
    linkBack(load<u32>(order + (<usize>i << 2)), vectors, dim, metric, adjacency, R, L, alpha, scratch, lane, lanes, half);
  }
}
