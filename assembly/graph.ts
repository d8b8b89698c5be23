// Graph construction: HNSW-style incremental insertion into one flat proximity graph, with the
// neighbour-diversity (robust prune) rule. Adjacency layout as in search.ts.

import { distance, METRIC_L2 } from './distance';
import { EXPANDED } from './pool';
import { searchExact } from './search';

/**
 * Robust prune (Vamana's rule; alpha = 1 is HNSW's heuristic): walk candidates nearest first and
 * keep c unless an already kept s is close to it: alpha * d(s, c) <= d(p, c) for L2 (distances are
 * squared, so alpha enters squared), d(s, c) <= d(p, c) for inner product.
 * candIds / candDist: `count` candidates sorted by distance to p ascending. Writes up to R kept ids
 * to outIds and returns how many.
 */
export function robustPrune(
  vectors: usize, dim: i32, metric: i32,
  candIds: usize, candDist: usize, count: i32, R: i32, alpha: f32, outIds: usize,
): i32 {
  const stride = <usize>dim << 2;
  const factor: f32 = metric == METRIC_L2 ? alpha * alpha : <f32>1;
  let kept: i32 = 0;
  for (let i = 0; i < count && kept < R; i++) {
    const c = load<u32>(candIds + (<usize>i << 2));
    const dpc = load<f32>(candDist + (<usize>i << 2));
    const cv = vectors + <usize>c * stride;
    let ok = true;
    for (let j = 0; j < kept; j++) {
      const s = load<u32>(outIds + (<usize>j << 2));
      if (s == c) { ok = false; break; }
      if (factor * distance(vectors + <usize>s * stride, cv, dim, metric) <= dpc) { ok = false; break; }
    }
    if (ok) {
      store<u32>(outIds + (<usize>kept << 2), c);
      kept++;
    }
  }
  return kept;
}

/**
 * Insert `node` (whose vector is already stored) into the graph: beam search with L = efConstruction
 * from `entries`, robust prune of the found candidates to at most R out-links, then a back-link from
 * every chosen neighbour, re-pruning a neighbour's list when it is full. Candidates are limited to
 * nodes in [lo, hi) (the node's zone for per-zone graphs; [0, n) otherwise).
 * scratch layout (bytes): dist f32[L] | ids u32[L] | kept u32[R] | nbrIds u32[R+1] | nbrDist f32[R+1].
 */
export function insertNode(
  node: u32, vectors: usize, dim: i32, metric: i32,
  adjacency: usize, R: i32,
  entries: usize, nEntries: i32, L: i32, alpha: f32,
  visited: usize, epoch: u16, scratch: usize, lo: u32, hi: u32,
): void {
  const stride = <usize>dim << 2;
  const rowStride = <usize>(R + 1) << 2;
  const poolDist = scratch;
  const poolIds = poolDist + (<usize>L << 2);
  const kept = poolIds + (<usize>L << 2);
  const nbrIds = kept + (<usize>R << 2);
  const nbrDist = nbrIds + (<usize>(R + 1) << 2);
  const q = vectors + <usize>node * stride;

  // the node itself may be reached from an entry; mark it visited so it never becomes a candidate
  store<u16>(visited + (<usize>node << 1), epoch);
  let found = searchExact(q, vectors, dim, metric, adjacency, R, entries, nEntries, L, visited, epoch, poolDist, poolIds, lo, hi);
  for (let i = 0; i < found; i++) {
    const p = poolIds + (<usize>i << 2);
    store<u32>(p, load<u32>(p) & ~EXPANDED);
  }
  const degree = robustPrune(vectors, dim, metric, poolIds, poolDist, found, R, alpha, kept);
  const row = adjacency + <usize>node * rowStride;
  store<u32>(row, degree);
  memory.copy(row + 4, kept, <usize>degree << 2);

  for (let i = 0; i < degree; i++) {
    const nb = load<u32>(kept + (<usize>i << 2));
    const nrow = adjacency + <usize>nb * rowStride;
    const count = <i32>load<u32>(nrow);
    if (count < R) {
      store<u32>(nrow + (<usize>(count + 1) << 2), node);
      store<u32>(nrow, count + 1);
      continue;
    }
    // full: candidates = current neighbours + node, sorted by distance to nb, pruned back to R
    const nv = vectors + <usize>nb * stride;
    let size: i32 = 0;
    for (let j = 0; j <= count; j++) {
      const c = j < count ? load<u32>(nrow + (<usize>(j + 1) << 2)) : node;
      const d = distance(nv, vectors + <usize>c * stride, dim, metric);
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
    const newCount = robustPrune(vectors, dim, metric, nbrIds, nbrDist, size, R, alpha, nrow + 4);
    store<u32>(nrow, newCount);
  }
}
