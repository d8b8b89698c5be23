/**
 * Filtered search: which nodes a search may return, as a bitmap over nodes in the arena (the layout
 * assembly/search.ts reads), and how to search that subset.
 *
 * The graph walk still crosses nodes outside the filter (they keep the graph navigable) but drops
 * them from its pool once expanded, so it walks on until its pool is full of allowed nodes; zone
 * scans seed the pool only with allowed nodes. To fill a pool of L allowed nodes the walk
 * expands about L / selectivity nodes: when few nodes are allowed, an exact scan of them is
 * cheaper (see scanFiltered). A filter that excludes the query's neighbourhood (anti-correlated)
 * defeats the walk: the kernel then gives up (see the top of assembly/search.ts), or the walk runs
 * out of graph, and the caller scans the allowed nodes (see cameShort).
 */
import { ZGQError } from './errors.js';
import { countBits, hasBit, type IdLookup, popcount8, setBit } from './ids.js';

/**
 * Which ids a search may return: an allow-list (a Set or an array of ids), a predicate on the id,
 * or a filter prepared once by ZGQIndex.prepareFilter. A Set or array costs O(its size) per call, a
 * predicate one call per indexed vector, a prepared filter a copy of n / 8 bytes.
 */
export type SearchFilter = ReadonlySet<number> | ArrayLike<number> | ((id: number) => boolean) | PreparedFilter;

/**
 * A filter resolved against one state of an index (ZGQIndex.prepareFilter): searches with it skip
 * the per-call id look-ups. Vectors removed later are still excluded; after add() or compact() it
 * is resolved again from its source on each use, so prepare it again then.
 */
export class PreparedFilter {
  /** The filter it was prepared from. */
  readonly source: Exclude<SearchFilter, PreparedFilter>;
  /** @internal the index state it was resolved against */
  readonly owner: object;
  /** @internal Uint8Array[ceil(n / 8)]: allowed nodes of that state */
  readonly bits: Uint8Array;
  /** @internal set bits of `bits` (searches on an index with nothing removed need not count them) */
  readonly allowed: number;

  /** @internal use ZGQIndex.prepareFilter */
  constructor(source: Exclude<SearchFilter, PreparedFilter>, owner: object, bits: Uint8Array) {
    this.source = source;
    this.owner = owner;
    this.bits = bits;
    this.allowed = countBits(bits, bits.length * 8);
  }
}

/** What compileFilter resolves ids against: the index state. */
export interface FilterTarget {
  /** Identity of the index state (prepared filters of another state are resolved again). */
  owner: object;
  /** Uint32Array[n]: caller id of each node. */
  ids: Uint32Array;
  lookup: () => IdLookup;
  /** Bitmap of live nodes (bit set: not removed), or null when none are removed. */
  live: Uint8Array | null;
}

/** Filters admitting less than one node in this many are scanned (the walk gives up at 32: MAX_DETOUR in assembly/search.ts). */
const MIN_SELECTIVITY_INV = 16;
/**
 * Exact distance work, in coordinates, that one node expanded by a walk costs: about 4 rows of 128
 * dimensions and 16 of 32 (walk against scan, 100K x 128 and 20K x 32 clustered data: the scan
 * wins below about 8 % and 25 % of the nodes admitted).
 */
const EXPANSION_COORDS = 512;

/**
 * Pool size of a walk through a filter that admits `allowed` of n nodes, for pool size ef: excluded
 * nodes waiting to be expanded share the pool with the allowed ones and narrow the walk, so it
 * grows by the excluded share, up to twice ef (recall@10 0.83 -> 0.95 at 10 % and ef 16 on
 * 15K x 32 clustered data).
 */
export function filteredPool(ef: number, allowed: number, n: number): number {
  return Math.ceil(ef * (2 - allowed / n));
}

/**
 * Whether `allowed` of n nodes (dimension dim) are better scanned exactly than walked with this
 * pool size: the walk expands about pool * n / allowed nodes, the scan computes `allowed` exact distances.
 */
export function scanFiltered(pool: number, allowed: number, n: number, dim: number): boolean {
  const expansions = (pool * n) / allowed;
  return allowed * MIN_SELECTIVITY_INV < n || allowed * dim <= expansions * EXPANSION_COORDS;
}

/**
 * Whether a filtered walk's k result slots at ids[offset..] (nearest first, empty slots 0xFFFFFFFF)
 * came back short of min(k, allowed) results: the walk gave up, or ran out of graph first. The
 * caller then scans the allowed nodes.
 */
export function cameShort(ids: Uint32Array, offset: number, k: number, allowed: number): boolean {
  return allowed > 0 && ids[offset + Math.min(k, allowed) - 1] === 0xffffffff;
}

/**
 * Write the filter's bitmap over the target's n nodes into `bits`: a node is allowed when the
 * filter admits its caller id and it is live. Returns how many nodes are allowed.
 */
export function compileFilter(filter: SearchFilter, target: FilterTarget, bits: Uint8Array): number {
  const { ids, live } = target;
  const n = ids.length;
  if (filter instanceof PreparedFilter) {
    if (filter.owner !== target.owner) return compileFilter(filter.source, target, bits);
    bits.set(filter.bits.subarray(0, bits.length));
    return live ? andCount(bits, live) : filter.allowed;
  }
  bits.fill(0);
  let allowed = 0;
  if (typeof filter === 'function') {
    for (let node = 0; node < n; node++) {
      if (live && !hasBit(live, node)) continue;
      if (filter(ids[node])) {
        setBit(bits, node);
        allowed++;
      }
    }
    return allowed;
  }
  const map = target.lookup();
  const admit = (id: unknown, where: string): void => {
    if (typeof id !== 'number' || !Number.isInteger(id)) {
      throw new ZGQError('INVALID_ARGUMENT', `filter ${where} is ${String(id)}, not an integer id`);
    }
    const node = map.find(id);
    if (node < 0 || (live && !hasBit(live, node))) return;
    if (!hasBit(bits, node)) {
      setBit(bits, node);
      allowed++;
    }
  };
  if (filter instanceof Set) {
    for (const id of filter) admit(id, 'entry');
  } else if (filter !== null && typeof filter === 'object' && typeof (filter as ArrayLike<number>).length === 'number') {
    const list = filter as ArrayLike<number>;
    for (let i = 0; i < list.length; i++) admit(list[i], `[${i}]`);
  } else {
    throw new ZGQError('INVALID_ARGUMENT', 'filter must be a Set of ids, an array of ids, a function (id) => boolean or a prepared filter');
  }
  return allowed;
}

/**
 * bits &= live over bits.length bytes; returns the set bits left. Four bytes at a time where both
 * start 4-byte aligned (arena bitmaps are): this runs once per search with a prepared filter.
 */
function andCount(bits: Uint8Array, live: Uint8Array): number {
  let count = 0;
  let i = 0;
  if ((bits.byteOffset & 3) === 0 && (live.byteOffset & 3) === 0) {
    const words = bits.length >> 2;
    const b32 = new Uint32Array(bits.buffer, bits.byteOffset, words);
    const l32 = new Uint32Array(live.buffer, live.byteOffset, words);
    for (let w = 0; w < words; w++) {
      let v = b32[w] & l32[w];
      b32[w] = v;
      v -= (v >>> 1) & 0x55555555;
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
      count += Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
    }
    i = words << 2;
  }
  for (; i < bits.length; i++) {
    bits[i] &= live[i];
    count += popcount8(bits[i]);
  }
  return count;
}

/** The allowed nodes of a bitmap over n nodes, ascending, into `out`; returns how many. */
export function listAllowed(bits: Uint8Array, n: number, out: Uint32Array): number {
  let count = 0;
  for (let byte = 0; byte < bits.length; byte++) {
    let b = bits[byte];
    while (b) {
      const bit = 31 - Math.clz32(b & -b);
      const node = (byte << 3) + bit;
      if (node < n) out[count++] = node;
      b &= b - 1;
    }
  }
  return count;
}
