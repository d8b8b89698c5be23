// The candidate pool of a beam search: a sorted array of at most `capacity` (distance, id) pairs,
// nearest first (the "L" list of Vamana / DiskANN, the ef list of HNSW). The high bit of an id
// marks the candidate as expanded. `cursor` is the first unexpanded position, so expanding is
// O(1) and insertion a short memmove, with no heap objects. Pool state lives in module globals,
// which are per instance: each worker thread instantiates the module and so has its own pool.

export const EXPANDED: u32 = 0x80000000;

export let poolDist: usize = 0;
export let poolId: usize = 0;
export let poolCapacity: i32 = 0;
export let poolSize: i32 = 0;
export let poolCursor: i32 = 0;

// @ts-ignore: decorator
@inline
export function poolReset(dists: usize, ids: usize, capacity: i32): void {
  poolDist = dists;
  poolId = ids;
  poolCapacity = capacity;
  poolSize = 0;
  poolCursor = 0;
}

/** Distance of the worst kept candidate, or +inf while the pool has room. */
// @ts-ignore: decorator
@inline
export function poolBound(): f32 {
  return poolSize < poolCapacity ? <f32>Infinity : load<f32>(poolDist + (<usize>(poolSize - 1) << 2));
}

/** Insert (d, id) in sorted position (ties after equal distances); drops the worst when full. */
export function poolInsert(d: f32, id: u32): void {
  if (poolSize == poolCapacity && d >= load<f32>(poolDist + (<usize>(poolSize - 1) << 2))) return;
  // binary search for the first position with a larger distance
  let lo: i32 = 0;
  let hi: i32 = poolSize;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (load<f32>(poolDist + (<usize>mid << 2)) <= d) lo = mid + 1;
    else hi = mid;
  }
  const last = poolSize < poolCapacity ? poolSize : poolCapacity - 1;
  if (last > lo) {
    memory.copy(poolDist + (<usize>(lo + 1) << 2), poolDist + (<usize>lo << 2), <usize>(last - lo) << 2);
    memory.copy(poolId + (<usize>(lo + 1) << 2), poolId + (<usize>lo << 2), <usize>(last - lo) << 2);
  }
  store<f32>(poolDist + (<usize>lo << 2), d);
  store<u32>(poolId + (<usize>lo << 2), id);
  if (poolSize < poolCapacity) poolSize++;
  if (lo < poolCursor) poolCursor = lo;
}

/** Take the nearest unexpanded candidate and mark it expanded; -1 when none is left. */
// @ts-ignore: decorator
@inline
export function poolNext(): i32 {
  while (poolCursor < poolSize) {
    const p = poolId + (<usize>poolCursor << 2);
    const id = load<u32>(p);
    poolCursor++;
    if ((id & EXPANDED) == 0) {
      store<u32>(p, id | EXPANDED);
      return <i32>id;
    }
  }
  return -1;
}
