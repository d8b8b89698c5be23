/**
 * Where a search may look: the allow bitmap of removals and filters with the pool widened for it,
 * or an exact scan of the allowed nodes when too few are allowed for a walk to pay, or of all of
 * them (the scan traversals). search() and batches choose theirs here.
 */
import { cameShort, compileFilter, filteredPool, listAllowed, scanFiltered, type SearchFilter } from './filter.js';
import { type Metric, reportedDistance, type ResolvedSearchOptions, scansEveryVector } from './options.js';
import { type Built, targetOf } from './built.js';
import { fastScanOf, searchFast } from './fastscan.js';
import { NO_ID } from './ids.js';

/** Where one search may look: the allow bitmap and pool size, or an exact scan of listed nodes. */
export interface SearchScope {
  /** Arena bitmap of returnable nodes, or 0 for all. */
  allow: number;
  /** How many nodes the bitmap admits (a walk that finds fewer than min(k, allowed) is followed by a scan). */
  allowed: number;
  ef: number;
  /** Nothing may be returned. */
  empty: boolean;
  /** Scan the listCount nodes at listPtr exactly instead of searching the graph. */
  exact: boolean;
  /** Scan every node the bitmap admits (all when allow is 0) in order: the 'scan' traversal. */
  all?: boolean;
  /** The 'fastscan' traversal over every node (nothing removed, no filter). */
  fast?: boolean;
  listPtr: number;
  listCount: number;
}

/** The scope of searches with no filter on an index with nothing removed (ef: the caller's). */
export const UNRESTRICTED: SearchScope = Object.freeze({ allow: 0, allowed: 0, ef: 0, empty: false, exact: false, listPtr: 0, listCount: 0 });

/**
 * Where a search with this filter looks: with no filter and nothing removed, everywhere; else
 * through a bitmap of the returnable nodes (the walk goes on until its pool holds ef of them), or
 * an exact scan of them when the filter admits too few for a walk to pay (see src/filter.ts).
 * `slot` picks the filter scratch: search() and batches each have their own, so a search during a
 * batch cannot disturb it, and a search run from a filter predicate compiles into a bitmap of its
 * own depth, so it cannot disturb the filter that called it (issue 15).
 */
export function searchScope(built: Built, filter: SearchFilter | undefined, ef: number, slot: 'searchBits' | 'batchBits'): SearchScope {
  const n = built.layout.n;
  const live = built.removed.live;
  const scope: SearchScope = { allow: 0, allowed: live, ef, empty: false, exact: false, listPtr: 0, listCount: 0 };
  if (live === 0) return { ...scope, empty: true };
  let bits = built.removed.liveBits;
  let allowed = live;
  if (filter !== undefined) {
    const { arena } = built.kernels;
    const bytes = (n + 7) >> 3;
    const scratch = built.filterScratch;
    const depth = scratch.depth ?? 0;
    bits = filterBits(built, slot, depth);
    const liveBits = built.removed.liveView(n);
    if (slot === 'searchBits') scratch.depth = depth + 1;
    try {
      allowed = compileFilter(filter, targetOf(built, liveBits), arena.u8(bits, bytes));
    } finally {
      if (slot === 'searchBits') scratch.depth = depth;
    }
  } else if (built.removed.count === 0) {
    return scope;
  }
  if (allowed === 0) return { ...scope, empty: true };
  // every node, none removed: the walk needs no bitmap
  if (allowed === n) return scope;
  const pool = filteredPool(ef, allowed, n);
  if (scanFiltered(pool, allowed, n, built.layout.dim)) return listedScope(built, { ...scope, allow: bits, allowed }, slot === 'batchBits' ? 'batchList' : 'list');
  return { ...scope, allow: bits, allowed, ef: pool };
}
/** Arena bitmap (capacity-sized: appends fill the index up to it) a filter of `slot` compiles into at this depth. */
function filterBits(built: Built, slot: 'searchBits' | 'batchBits', depth: number): number {
  const scratch = built.filterScratch;
  const alloc = () => built.kernels.arena.alloc((built.layout.capacity + 7) >> 3);
  if (slot === 'batchBits') return (scratch.batchBits ||= alloc());
  if (depth === 0) return (scratch.searchBits ||= alloc());
  const nested = (scratch.nested ??= []);
  return (nested[depth - 1] ||= alloc());
}
/**
 * Where a search with these options looks: a scan traversal's scope (scanScope; `seed` seeds the
 * fast scan's codes), else searchScope with a pool of at least k.
 */
export function scopeFor(
  built: Built, filter: SearchFilter | undefined, opts: ResolvedSearchOptions, k: number, slot: 'searchBits' | 'batchBits', seed: number,
): SearchScope {
  if (scansEveryVector(opts.traversal)) return scanScope(built, filter, k, slot, opts.traversal === 'fastscan' ? seed : null);
  return searchScope(built, filter, Math.max(opts.ef, k), slot);
}

/**
 * The scope of the 'scan' traversal: every node a search may return (those the filter admits, else
 * every live node) compared exactly; in order through the bitmap, or through a list when the
 * filter admits few enough (see searchScope).
 */
export function scanScope(built: Built, filter: SearchFilter | undefined, k: number, slot: 'searchBits' | 'batchBits', fastSeed: number | null = null): SearchScope {
  const scope = searchScope(built, filter, k, slot);
  if (scope.empty || scope.exact) return scope;
  // fast scan covers every node: with a bitmap (a filter, removals) the exact scan does; its codes
  // are made here, before the search, on first use
  const fast = fastSeed !== null && scope.allow === 0 && fastScanOf(built, fastSeed) !== null;
  return fast ? { ...scope, fast: true } : { ...scope, all: true };
}

/**
 * The scope as an exact scan of the nodes its bitmap admits. search() shares one node list (it is
 * filled after any search nested in the filter has finished, and used before control returns);
 * batches have their own, since a batch gives the event loop turns while it scans.
 */
export function listedScope(built: Built, scope: SearchScope, slot: 'list' | 'batchList'): SearchScope {
  const { arena } = built.kernels;
  const { n, capacity } = built.layout;
  const scratch = built.filterScratch;
  scratch[slot] ||= arena.alloc(capacity * 4);
  const listPtr = scratch[slot];
  const listCount = listAllowed(arena.u8(scope.allow, (n + 7) >> 3), n, arena.u32(listPtr, n));
  return { ...scope, exact: true, listPtr, listCount };
}

/**
 * One query in `built` within the filter: `write` puts the query into the searcher's buffer once the
 * scope is made (a filter predicate may run searches of its own first); up to k caller ids and
 * reported distances are written from the start of ids / distances, nearest first.
 */
export function searchOne(
  built: Built, k: number, opts: ResolvedSearchOptions, filter: SearchFilter | undefined, seed: number, metric: Metric,
  write: (into: Float32Array) => void, ids: Uint32Array, distances: Float32Array,
): void {
  const scope = filter === undefined && built.removed.count === 0 && !scansEveryVector(opts.traversal)
    ? UNRESTRICTED
    : scopeFor(built, filter, opts, k, 'searchBits', seed);
  const searchOpts = scope === UNRESTRICTED || scope.ef === opts.ef ? opts : { ...opts, ef: scope.ef };
  write(built.searcher.queryBuffer(k, searchOpts));
  runScope(built, k, searchOpts, ids, distances, scope, metric);
  // a filtered walk that gave up or ran out of graph: the allowed nodes are scanned instead (the
  // query is still in the buffer)
  if (scope.allow && !scope.exact && !scope.all && !scope.fast && cameShort(ids, 0, k, scope.allowed)) runScope(built, k, searchOpts, ids, distances, listedScope(built, scope, 'list'), metric);
}

/**
 * Search the query in the searcher's query buffer within `scope`: up to k caller ids and
 * reported distances written from the start of ids / distances, nearest first.
 */
function runScope(built: Built, k: number, opts: ResolvedSearchOptions, ids: Uint32Array, distances: Float32Array, scope: SearchScope, metric: Metric): void {
  if (scope.empty) return;
  built.searcher.allow = scope.allow;
  const got = scope.fast
    ? searchFast(built, built.fastScan!, k, opts.rerank, ids, distances, 0)
    : scope.all
    ? built.searcher.runAll(k, built.layout.n, ids, distances, 0)
    : scope.exact ? built.searcher.runListed(k, scope.listPtr, scope.listCount, ids, distances, 0) : built.searcher.run(k, opts, ids, distances, 0);
  callerResults(built, ids, distances, metric, got);
}

/** The first `count` internal results of `built` (NO_ID slots skipped) as caller ids and reported distances, in place. */
export function callerResults(built: Built, ids: Uint32Array, distances: Float32Array, metric: Metric, count = ids.length): void {
  const callerIds = built.ids;
  for (let i = 0; i < count; i++) {
    if (ids[i] === NO_ID) continue;
    ids[i] = callerIds[ids[i]];
    distances[i] = reportedDistance(metric, distances[i]);
  }
}
