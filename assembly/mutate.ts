// Graph repair after deletions (the consolidation step of FreshDiskANN): a live node that links to
// deleted nodes takes their live neighbours as candidates, and robust prune picks its new list.
// Deleted nodes keep their rows until the caller drops them, so repairs read only unchanged rows
// and write only the repaired node's: nodes can be repaired in any order, or in parallel.

import { poolReset, poolInsert, poolSize, EXPANDED } from './pool';
import { hasBit, rowDistance } from './search';
import { robustPrune, rowAsFloat } from './graph';

/**
 * Repair nodes[0..count): for node p, candidates are its live neighbours plus the live
 * neighbours of its deleted neighbours (deleted: bitmap, bit set = deleted), the nearest L kept,
 * pruned to at most R out-links. Rows are binary16 when half. visited: u16 tags[n], all zero on
 * entry (left dirty). scratch: dist f32[L] | ids u32[L] | two f32[dim] rows.
 */
export function repairNodes(
  vectors: usize, dim: i32, metric: i32, adjacency: usize, R: i32, L: i32, alpha: f32,
  deleted: usize, nodes: usize, count: i32, n: i32, visited: usize, scratch: usize, half: bool,
): void {
  const rowStride = <usize>(R + 1) << 2;
  const poolDist = scratch;
  const poolIds = scratch + (<usize>L << 2);
  const rowA = scratch + (<usize>L << 3);
  const rowB = rowA + (<usize>dim << 2);
  let epoch: u32 = 0;
  for (let i = 0; i < count; i++) {
    const p = load<u32>(nodes + (<usize>i << 2));
    epoch++;
    if (epoch == 65536) {
      memory.fill(visited, 0, <usize>n << 1);
      epoch = 1;
    }
    const e = <u16>epoch;
    store<u16>(visited + (<usize>p << 1), e);
    const pv = rowAsFloat(vectors, p, dim, half, rowA);
    const row = adjacency + <usize>p * rowStride;
    const degree = <i32>load<u32>(row);
    poolReset(poolDist, poolIds, L);
    for (let j = 0; j < degree; j++) {
      const nb = load<u32>(row + (<usize>(j + 1) << 2));
      if (!hasBit(deleted, nb)) {
        // live: a candidate itself
        consider(nb, pv, vectors, dim, metric, half, visited, e);
        continue;
      }
      const nrow = adjacency + <usize>nb * rowStride;
      const nCount = <i32>load<u32>(nrow);
      for (let t = 0; t < nCount; t++) {
        const x = load<u32>(nrow + (<usize>(t + 1) << 2));
        if (!hasBit(deleted, x)) consider(x, pv, vectors, dim, metric, half, visited, e);
      }
    }
    const found = poolSize;
    for (let j = 0; j < found; j++) {
      const q = poolIds + (<usize>j << 2);
      store<u32>(q, load<u32>(q) & ~EXPANDED);
    }
    store<u32>(row, robustPrune(vectors, dim, metric, poolIds, poolDist, found, R, alpha, row + 4, half, rowB));
  }
}

// @ts-ignore: decorator
@inline
function consider(c: u32, pv: usize, vectors: usize, dim: i32, metric: i32, half: bool, visited: usize, epoch: u16): void {
  const tag = visited + (<usize>c << 1);
  if (load<u16>(tag) == epoch) return;
  store<u16>(tag, epoch);
  poolInsert(rowDistance(pv, vectors, c, dim, metric, half), c);
}
