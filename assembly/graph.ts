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
 * Rows hold `capacity` >= R links (stride capacity + 1 words; see linkBack for why more than R).
 * scratch layout (bytes): dist f32[L] | ids u32[L] | nbrIds u32[capacity+1] | nbrDist f32[capacity+1] |
 * two f32[dim] rows (see linkScratchBytes in src/graph.ts).
 */
export function linkOut(
  node: u32, vectors: usize, dim: i32, metric: i32,
  adjacency: usize, R: i32, capacity: i32,
  entries: usize, nEntries: i32, L: i32, alpha: f32,
  visited: usize, epoch: u16, scratch: usize, lo: u32, hi: u32, half: bool, deleted: usize,
): void {
  const poolDist = scratch;
  const poolIds = poolDist + (<usize>L << 2);
  const rowA = scratch + (<usize>L << 3) + (<usize>(capacity + 1) << 3);
  const rowB = rowA + (<usize>dim << 2);
  const q = rowAsFloat(vectors, node, dim, half, rowA);
  // the node itself may be reached from an entry; mark it visited so it never becomes a candidate
  store<u16>(visited + (<usize>node << 1), epoch);
  const searched = searchExact(
    q, vectors, dim, metric, adjacency, capacity, entries, nEntries, L, visited, epoch, poolDist, poolIds, lo, hi, half,
    // the neighbour list's scratch (linkBack's) holds each node's unvisited neighbours here
    poolIds + (<usize>L << 2),
  );
  // deleted nodes (bitmap, 0: none) lead the search but are no neighbours
  let found: i32 = 0;
  for (let i = 0; i < searched; i++) {
    const id = load<u32>(poolIds + (<usize>i << 2)) & ~EXPANDED;
    if (deleted != 0 && hasBit(deleted, id)) continue;
    store<u32>(poolIds + (<usize>found << 2), id);
    store<f32>(poolDist + (<usize>found << 2), load<f32>(poolDist + (<usize>i << 2)));
    found++;
  }
  const row = adjacency + <usize>node * (<usize>(capacity + 1) << 2);
  store<u32>(row, robustPrune(vectors, dim, metric, poolIds, poolDist, found, R, alpha, row + 4, half, rowB));
}

/**
 * Second half: a back-link to `node` from each of its out-neighbours nb with nb % lanes == lane.
 * A list takes links until it holds `capacity`; the next one re-prunes it back to R. With capacity
 * R (HNSW) every back-link to a full list re-prunes it; with some slack (DiskANN's 1.3 R) a list
 * is re-pruned once per (capacity - R) links, and trimLists prunes what is left over R at the end.
 * Lanes own disjoint targets, so lanes run in parallel, and each target sees its new links in batch
 * order whatever the lane count: the graph is the same. scratch as for linkOut.
 */
export function linkBack(
  node: u32, vectors: usize, dim: i32, metric: i32, adjacency: usize, R: i32, capacity: i32, L: i32, alpha: f32,
  scratch: usize, lane: u32, lanes: u32, half: bool,
): void {
  linkBackNoting(node, vectors, dim, metric, adjacency, R, capacity, L, alpha, scratch, lane, lanes, half, 0);
}

/**
 * linkBack that also notes every node a re-prune dropped from a list (it lost an in-link, so it may
 * no longer be reachable: src/graph.ts connectGraph checks it). dropped: u32 [count, capacity,
 * ids...], or 0 to note nothing; count goes on past capacity (the caller then checks everything).
 * One lane only: lanes would race on the count.
 */
function linkBackNoting(
  node: u32, vectors: usize, dim: i32, metric: i32, adjacency: usize, R: i32, capacity: i32, L: i32, alpha: f32,
  scratch: usize, lane: u32, lanes: u32, half: bool, dropped: usize,
): void {
  const rowStride = <usize>(capacity + 1) << 2;
  const row = adjacency + <usize>node * rowStride;
  const degree = <i32>load<u32>(row);
  for (let i = 0; i < degree; i++) {
    const nb = load<u32>(row + (<usize>(i + 1) << 2));
    if (nb % lanes != lane) continue;
    addLink(nb, adjacency + <usize>nb * rowStride, node, vectors, dim, metric, R, capacity, L, alpha, scratch, half, dropped);
  }
}

/** `node` appended to nb's list (row nrow) while it has room; a full list re-pruned with it (reprune). */
// @ts-ignore: decorator
@inline
function addLink(
  nb: u32, nrow: usize, node: u32, vectors: usize, dim: i32, metric: i32, R: i32, capacity: i32, L: i32, alpha: f32,
  scratch: usize, half: bool, dropped: usize,
): void {
  const count = <i32>load<u32>(nrow);
  if (count < capacity) {
    store<u32>(nrow + (<usize>(count + 1) << 2), node);
    store<u32>(nrow, count + 1);
    return;
  }
  reprune(nb, nrow, node, vectors, dim, metric, R, capacity, L, alpha, scratch, half, dropped);
}

/** No node: reprune's `extra` when only the list itself is pruned. */
const NO_NODE: u32 = 0xffffffff;

/**
 * Prune nb's list (row nrow), with `extra` added unless NO_NODE, back to at most R: the candidates
 * sorted by distance to nb, then robustPrune. Notes what it drops in `dropped` (see linkBackNoting).
 */
function reprune(
  nb: u32, nrow: usize, extra: u32, vectors: usize, dim: i32, metric: i32, R: i32, capacity: i32, L: i32, alpha: f32,
  scratch: usize, half: bool, dropped: usize,
): void {
  const nbrIds = scratch + (<usize>L << 3);
  const nbrDist = nbrIds + (<usize>(capacity + 1) << 2);
  const rowA = nbrDist + (<usize>(capacity + 1) << 2);
  const rowB = rowA + (<usize>dim << 2);
  const count = <i32>load<u32>(nrow);
  const total = extra == NO_NODE ? count : count + 1;
  const nv = rowAsFloat(vectors, nb, dim, half, rowA);
  let size: i32 = 0;
  for (let j = 0; j < total; j++) {
    const c = j < count ? load<u32>(nrow + (<usize>(j + 1) << 2)) : extra;
    const d = rowDistance(nv, vectors, c, dim, metric, half);
    // insertion sort: lists are at most capacity + 1 long
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
  const kept = robustPrune(vectors, dim, metric, nbrIds, nbrDist, size, R, alpha, nrow + 4, half, rowB);
  store<u32>(nrow, kept);
  if (dropped != 0) noteDropped(nbrIds, size, nrow + 4, kept, extra, dropped);
}

/** Note the candidates at candIds[0..size) that are not among kept[0..keptCount), `node` excepted (NO_NODE: none). */
function noteDropped(candIds: usize, size: i32, kept: usize, keptCount: i32, node: u32, dropped: usize): void {
  const capacity = load<u32>(dropped + 4);
  for (let i = 0; i < size; i++) {
    const c = load<u32>(candIds + (<usize>i << 2));
    if (c == node) continue;
    let found = false;
    for (let j = 0; j < keptCount; j++) {
      if (load<u32>(kept + (<usize>j << 2)) == c) {
        found = true;
        break;
      }
    }
    if (found) continue;
    const count = load<u32>(dropped);
    if (count < capacity) store<u32>(dropped + 8 + (<usize>count << 2), c);
    store<u32>(dropped, count + 1);
  }
}

// Build context: a block of u32 fields (alpha: f32 bits) written by src/graph.ts, in this order
// (keep in step with BCTX there). Index arrays are shared; visited, epoch and scratch belong to one
// lane (thread). Read in place: an unmanaged class is a typed view of the block, no copy.
@unmanaged
class BuildContext {
  vectors: u32;
  dim: i32;
  metric: i32;
  adjacency: u32;
  degree: i32;
  L: i32;
  alpha: f32;
  centroids: u32;
  nZones: i32;
  groupCentroids: u32;
  groupStart: u32;
  nGroups: i32;
  groupProbe: i32;
  probe: i32;
  zoneEntry: u32;
  zoneStart: u32;
  zoneOf: u32;
  perZone: u32;
  order: u32;
  n: u32;
  visited: u32;
  epoch: u32;
  scratch: u32;
  entries: u32;
  zoneIds: u32;
  zoneDist: u32;
  groupScratch: u32;
  half: u32;
  deleted: u32;
  dropped: u32;
  capacity: i32;
  candidates: u32;
  candidateDist: u32;
  candidateWidth: i32;
  candidateFirst: u32;
  outLists: u32;
}

/** Bytes of a BuildContext: with the field order (test/context-blocks.test.ts), the offsets src/graph.ts BCTX assumes. */
export const BUILD_CONTEXT_BYTES: i32 = offsetof<BuildContext>();

/**
 * linkOut for the nodes order[from..to): entries are the medoids of the node's `probe` nearest
 * zones (per-zone graphs: its own zone's medoid, candidates limited to its zone).
 */
export function buildOut(ctx: usize, from: i32, to: i32): void {
  const c = changetype<BuildContext>(ctx);
  const vectors = <usize>c.vectors;
  const dim = c.dim;
  const R = c.degree;
  const L = c.L;
  const n = c.n;
  const visited = <usize>c.visited;
  const scratch = <usize>c.scratch;
  const entries = <usize>c.entries;
  const zoneIds = <usize>c.zoneIds;
  const zoneEntry = <usize>c.zoneEntry;
  const zoneStart = <usize>c.zoneStart;
  const half = c.half != 0;
  let epoch = c.epoch;
  for (let i = from; i < to; i++) {
    const node = load<u32>(<usize>c.order + (<usize>i << 2));
    epoch++;
    if (epoch == 65536) {
      memory.fill(visited, 0, <usize>n << 1);
      epoch = 1;
    }
    let lo: u32 = 0;
    let hi: u32 = n;
    let nEntries: i32;
    if (c.perZone != 0) {
      const z = load<u32>(<usize>c.zoneOf + (<usize>node << 2));
      lo = load<u32>(zoneStart + (<usize>z << 2));
      hi = load<u32>(zoneStart + (<usize>(z + 1) << 2));
      const medoid = load<u32>(zoneEntry + (<usize>z << 2));
      store<u32>(entries, medoid);
      nEntries = medoid == node ? 0 : 1;
    } else {
      // the scratch's first row holds the node's vector as float32 for zone selection (linkOut
      // decodes it there again)
      const scratchRow = scratch + (<usize>L << 3) + (<usize>(c.capacity + 1) << 3);
      nEntries = selectZones(
        rowAsFloat(vectors, node, dim, half, scratchRow), <usize>c.centroids, c.nZones, dim, c.metric,
        <usize>c.groupCentroids, <usize>c.groupStart, c.nGroups, c.groupProbe, c.probe, zoneIds, <usize>c.zoneDist,
        <usize>c.groupScratch, 0, 0, 0,
      );
      for (let e = 0; e < nEntries; e++) {
        const z = load<u32>(zoneIds + (<usize>e << 2));
        store<u32>(entries + (<usize>e << 2), load<u32>(zoneEntry + (<usize>z << 2)));
      }
    }
    linkOut(
      node, vectors, dim, c.metric, <usize>c.adjacency, R, c.capacity, entries, nEntries, L, c.alpha, visited, <u16>epoch, scratch, lo, hi,
      half, <usize>c.deleted,
    );
  }
  c.epoch = epoch;
}

/** linkBack for the nodes order[from..to), in order, for this lane's targets (noting drops when ctx.dropped is set). */
export function buildBack(ctx: usize, from: i32, to: i32, lane: u32, lanes: u32): void {
  const c = changetype<BuildContext>(ctx);
  const order = <usize>c.order;
  for (let i = from; i < to; i++) {
    linkBackNoting(
      load<u32>(order + (<usize>i << 2)), <usize>c.vectors, c.dim, c.metric, <usize>c.adjacency, c.degree, c.capacity, c.L, c.alpha,
      <usize>c.scratch, lane, lanes, c.half != 0, <usize>c.dropped,
    );
  }
}

/** Prune every list of the nodes [from, to) holding more than R links back to R (after linking with slack; see linkBack). */
export function trimLists(ctx: usize, from: i32, to: i32): void {
  const c = changetype<BuildContext>(ctx);
  const rowStride = <usize>(c.capacity + 1) << 2;
  for (let node = from; node < to; node++) {
    const nrow = <usize>c.adjacency + <usize>node * rowStride;
    if (<i32>load<u32>(nrow) <= c.degree) continue;
    reprune(
      <u32>node, nrow, NO_NODE, <usize>c.vectors, c.dim, c.metric, c.degree, c.capacity, c.L, c.alpha, <usize>c.scratch, c.half != 0,
      <usize>c.dropped,
    );
  }
}

/** No neighbour: the padding of a candidate list past its last candidate. */
const NO_ID: u32 = 0xffffffff;

/**
 * Out-links from given candidates (a graph built from each node's nearest rows rather than from
 * searches; src/graph.ts linkCandidates): for the nodes [from, to), robust prune of the node's
 * candidateWidth candidates (rows (node - candidateFirst) of candidates / candidateDist, nearest
 * first, NO_ID past the last, the node itself among them skipped) into its adjacency row and into
 * its row of outLists (stride degree + 1, the same lists, which reverseLinks reads). Each node
 * writes only its own rows: lanes split the nodes.
 */
export function pruneCandidates(ctx: usize, from: i32, to: i32): void {
  const c = changetype<BuildContext>(ctx);
  const R = c.degree;
  const width = c.candidateWidth;
  const scratch = <usize>c.scratch;
  // the pool's halves of the link scratch hold one node's candidates (L >= width: see src/graph.ts)
  const poolDist = scratch;
  const poolIds = poolDist + (<usize>c.L << 2);
  const rowB = scratch + (<usize>c.L << 3) + (<usize>(c.capacity + 1) << 3) + (<usize>c.dim << 2);
  const rowStride = <usize>(c.capacity + 1) << 2;
  for (let node = from; node < to; node++) {
    const at = <usize>(<u32>node - c.candidateFirst) * <usize>width;
    let count: i32 = 0;
    for (let j = 0; j < width; j++) {
      const id = load<u32>(<usize>c.candidates + ((at + <usize>j) << 2));
      if (id == NO_ID) break;
      if (id == <u32>node) continue;
      store<u32>(poolIds + (<usize>count << 2), id);
      store<f32>(poolDist + (<usize>count << 2), load<f32>(<usize>c.candidateDist + ((at + <usize>j) << 2)));
      count++;
    }
    const row = <usize>c.adjacency + <usize>node * rowStride;
    const kept = robustPrune(<usize>c.vectors, c.dim, c.metric, poolIds, poolDist, count, R, c.alpha, row + 4, c.half != 0, rowB);
    store<u32>(row, kept);
    memory.copy(<usize>c.outLists + <usize>node * (<usize>(R + 1) << 2), row, (<usize>kept + 1) << 2);
  }
}

/**
 * The reverse of each out-link, once pruneCandidates wrote every node's: for the nodes [from, to)
 * in order, `node` added to the row of each of its out-neighbours nb (from outLists, which do not
 * change) with nb % lanes == lane, unless the row holds it already (the two chose each other); a
 * full row is re-pruned as linkBack does. Lanes own disjoint targets and each row sees its links in
 * node order, so the graph is the same for any lane count.
 */
export function reverseLinks(ctx: usize, from: i32, to: i32, lane: u32, lanes: u32): void {
  const c = changetype<BuildContext>(ctx);
  const R = c.degree;
  const capacity = c.capacity;
  const rowStride = <usize>(capacity + 1) << 2;
  const adjacency = <usize>c.adjacency;
  for (let node = from; node < to; node++) {
    const out = <usize>c.outLists + <usize>node * (<usize>(R + 1) << 2);
    const degree = <i32>load<u32>(out);
    for (let i = 0; i < degree; i++) {
      const nb = load<u32>(out + (<usize>(i + 1) << 2));
      if (nb % lanes != lane) continue;
      const nrow = adjacency + <usize>nb * rowStride;
      const count = <i32>load<u32>(nrow);
      let present = false;
      for (let j = 0; j < count; j++) {
        if (load<u32>(nrow + (<usize>(j + 1) << 2)) == <u32>node) {
          present = true;
          break;
        }
      }
      if (present) continue;
      addLink(nb, nrow, <u32>node, <usize>c.vectors, c.dim, c.metric, R, capacity, c.L, c.alpha, <usize>c.scratch, c.half != 0, 0);
    }
  }
}

/**
 * Move rows [from, to) of stride fromCapacity + 1 words to stride toCapacity + 1 (toCapacity <=
 * fromCapacity), in place, front to back: a row's new place ends before the next row's old one
 * starts, so calls over ascending ranges from 0 move every row. Every row must hold at most
 * toCapacity links (trimLists).
 */
export function narrowRows(adjacency: usize, from: u32, to: u32, fromCapacity: i32, toCapacity: i32): void {
  const fromStride = <usize>(fromCapacity + 1) << 2;
  const toStride = <usize>(toCapacity + 1) << 2;
  for (let i = from; i < to; i++) memory.copy(adjacency + <usize>i * toStride, adjacency + <usize>i * fromStride, toStride);
}
