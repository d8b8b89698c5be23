// The candidate pool of a beam search: a sorted array of at most `capacity` (distance, id) pairs,
// nearest first (the "L" list of Vamana / DiskANN, the ef list of HNSW). The high bit of an id
// marks the candidate as expanded. `cursor` is the first unexpanded position, so expanding is
// O(1) and insertion a short memmove, with no heap objects. Pool state lives in module globals,
// which are per instance: each worker thread instantiates the module and so has its own pool.

export const EXPANDED: u32 = 0x80000000;

// Pools of up to this many entries insert by a walk from the end; longer ones binary-search and
// move a block with memory.copy, which on a shared memory is a call out of the compiled code (into
// the engine's memmove) and costs more than a short walk.
const SHIFT_BY_COPY: i32 = 48;

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
// @ts-ignore: decorator
@inline
export function poolInsert(d: f32, id: u32): void {
  const dists = poolDist;
  const ids = poolId;
  const size = poolSize;
  const full = size == poolCapacity;
  if (full && d >= load<f32>(dists + (<usize>(size - 1) << 2))) return;
  const last = full ? size - 1 : size;
  let pos: i32;
  if (last <= SHIFT_BY_COPY) {
    // short pool: find the place walking down from the end, moving entries up on the way (the
    // entries passed are exactly those a shift would move)
    pos = last;
    while (pos > 0) {
      const from = dists + (<usize>(pos - 1) << 2);
      const prev = load<f32>(from);
      if (prev <= d) break;
      store<f32>(from, prev, 4);
      store<u32>(ids + (<usize>pos << 2), load<u32>(ids + (<usize>(pos - 1) << 2)));
      pos--;
    }
  } else {
    // long pool: binary search for the first larger distance (selects, not branches: the
    // comparisons are unpredictable), then one block move
    pos = 0;
    let len = size;
    while (len > 0) {
      const half = len >> 1;
      const probe = pos + half;
      const before = load<f32>(dists + (<usize>probe << 2)) <= d;
      pos = select<i32>(probe + 1, pos, before);
      len = select<i32>(len - half - 1, half, before);
    }
    if (last > pos) {
      memory.copy(dists + (<usize>(pos + 1) << 2), dists + (<usize>pos << 2), <usize>(last - pos) << 2);
      memory.copy(ids + (<usize>(pos + 1) << 2), ids + (<usize>pos << 2), <usize>(last - pos) << 2);
    }
  }
  store<f32>(dists + (<usize>pos << 2), d);
  store<u32>(ids + (<usize>pos << 2), id);
  if (!full) poolSize = size + 1;
  if (pos < poolCursor) poolCursor = pos;
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

/** The nearest unexpanded candidate without taking it; -1 when none is left. */
// @ts-ignore: decorator
@inline
export function poolPeek(): i32 {
  for (let i = poolCursor; i < poolSize; i++) {
    const id = load<u32>(poolId + (<usize>i << 2));
    if ((id & EXPANDED) == 0) return <i32>id;
  }
  return -1;
}
