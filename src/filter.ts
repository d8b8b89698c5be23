/**
 * Filtered search: which nodes a search may return, as a bitmap over nodes in the arena (the layout
 * assembly/search.ts reads), and how to search that subset.
 *
 * The graph walk still crosses nodes outside the filter (they keep the graph navigable); zone scans
 * seed the pool only with allowed nodes and re-ranking takes only allowed ones. The pool widens by
 * the inverse of the filter's selectivity so that it holds about ef allowed candidates, up to
 * MAX_WIDEN times ef; below that selectivity, or when few nodes are allowed, an exact scan of the
 * allowed nodes is cheaper and exact.
 */
import { ZGQError } from './errors.js';
import { hasBit, type IdLookup, popcount8, setBit } from './ids.js';

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

  /** @internal use ZGQIndex.prepareFilter */
  constructor(source: Exclude<SearchFilter, PreparedFilter>, owner: object, bits: Uint8Array) {
    this.source = source;
    this.owner = owner;
    this.bits = bits;
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

/** Widest pool of a filtered graph search, as a multiple of ef. */
export const MAX_WIDEN = 16;
/** Filters admitting at most this many nodes per pool slot of the widened search are scanned exactly. */
const EXACT_PER_SLOT = 4;

export type FilterPlan = { exact: true } | { exact: false; ef: number };

/** How to search `allowed` of `live` nodes with pool size ef. */
export function planFiltered(ef: number, allowed: number, live: number): FilterPlan {
  const widened = Math.min(live, Math.ceil((ef * live) / allowed));
  if (widened > ef * MAX_WIDEN || allowed <= widened * EXACT_PER_SLOT) return { exact: true };
  return { exact: false, ef: widened };
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
    let allowed = 0;
    for (let i = 0; i < bits.length; i++) {
      const b = live ? filter.bits[i] & live[i] : filter.bits[i];
      bits[i] = b;
      allowed += popcount8(b);
    }
    return allowed;
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
