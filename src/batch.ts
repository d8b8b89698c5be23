/**
 * Where a search may look (the allow bitmap of removals and filters, or an exact scan of the allowed
 * nodes) and how a batch runs: through the arena in slices, on the calling thread or worker lanes.
 */
import { kernelModule } from './kernels/wasm.js';
import { Pacer } from './pace.js';
import { Searcher } from './search.js';
import { NO_ID } from './ids.js';
import { cameShort, compileFilter, filteredPool, listAllowed, scanFiltered, type SearchFilter } from './filter.js';
import { platform } from './platform.js';
import { type ResolvedSearchOptions, scansEveryVector } from './options.js';
import { type Built, targetOf } from './built.js';
import { fastScanOf, searchFast } from './fastscan.js';

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
  const live = n - built.removed.count;
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
 * Scan exactly, on this thread, the allowed nodes for each query of a filtered batch whose walk came
 * back short (ids and distances: the batch's results, internal ids, rewritten in place).
 */
export function scanShort(
  built: Built, queries: Float32Array, nq: number, k: number, opts: ResolvedSearchOptions, scope: SearchScope, ids: Uint32Array, distances: Float32Array,
): void {
  const dim = built.layout.dim;
  let listed: SearchScope | null = null;
  for (let q = 0; q < nq; q++) {
    if (!cameShort(ids, q * k, k, scope.allowed)) continue;
    listed ??= listedScope(built, scope, 'batchList');
    built.searcher.queryBuffer(k, opts).set(queries.subarray(q * dim, (q + 1) * dim));
    built.searcher.runListed(k, listed.listPtr, listed.listCount, ids, distances, q * k);
  }
}
/** Largest slice a lane claims at a time (smaller near the end of small batches). */
const CLAIM_STEP = 32;
/** Batches below this many queries per thread run on the calling thread. */
const MIN_QUERIES_PER_THREAD = 32;
/** Slices per lane a batch is cut into (at most CLAIM_STEP queries each): the last ones even out the lanes' ends. */
const CLAIMS_PER_LANE = 32;
/**
 * Search a validated batch: queries copied into the arena, then one searchRange call per slice,
 * on the calling thread or on worker threads sharing the memory. Returns internal ids and kernel
 * distances (copies).
 */
export async function runBatch(
  built: Built, queries: Float32Array, nq: number, k: number, given: ResolvedSearchOptions, threadsAsked: number | undefined,
  scope: SearchScope, pacer: Pacer,
): Promise<{ ids: Uint32Array; distances: Float32Array }> {
  const { arena } = built.kernels;
  const dim = built.layout.dim;
  const batch = built.batch;
  const opts = scope.ef === given.ef ? given : { ...given, ef: scope.ef };
  if (scope.empty || scope.exact || scope.all || scope.fast) {
    // nothing to search, an exact scan of a few allowed nodes per query, or of all: on this thread
    const ids = new Uint32Array(nq * k).fill(NO_ID);
    const distances = new Float32Array(nq * k).fill(Infinity);
    if (scope.empty) return { ids, distances };
    const searcher = built.searcher;
    searcher.allow = scope.allow;
    for (let q = 0; q < nq; q++) {
      if (pacer.due) await pacer.step();
      searcher.queryBuffer(k, opts).set(queries.subarray(q * dim, (q + 1) * dim));
      if (scope.fast) searchFast(built, built.fastScan!, k, opts.rerank, ids, distances, q * k);
      else if (scope.all) searcher.runAll(k, built.layout.n, ids, distances, q * k);
      else searcher.runListed(k, scope.listPtr, scope.listCount, ids, distances, q * k);
    }
    return { ids, distances };
  }
  const ids = new Uint32Array(nq * k);
  const distances = new Float32Array(nq * k);
  // the batch goes through the arena in chunks of bounded size: a batch's queries and results
  // live in JS memory, so neither nq nor k can push the arena past its limit
  const chunk = Math.max(1, Math.min(nq, Math.floor(BATCH_ARENA_BYTES / (4 * Math.max(dim, k)))));
  if (batch.capacity < chunk * Math.max(dim, k)) {
    const capacity = Math.max(chunk * Math.max(dim, k), Math.min(batch.capacity * 2, BATCH_ARENA_BYTES / 4));
    const queriesPtr = arena.alloc(capacity * 4);
    const outIdsPtr = arena.alloc(capacity * 4);
    const outDistPtr = arena.alloc(capacity * 4);
    Object.assign(batch, { capacity, queries: queriesPtr, outIds: outIdsPtr, outDist: outDistPtr });
  }
  // slices of about SLICE_MS each (the first a guess), so the event loop gets its turns and an
  // abort is seen between two of them
  let size = Math.min(chunk, FIRST_SLICE);
  for (let from = 0; from < nq; ) {
    const count = Math.min(size, nq - from);
    arena.f32(batch.queries, count * dim).set(queries.subarray(from * dim, (from + count) * dim));
    const t0 = performance.now();
    await runChunk(built, count, k, opts, threadsAsked, scope);
    const perQuery = Math.max(1e-4, (performance.now() - t0) / count);
    ids.set(arena.u32(batch.outIds, count * k), from * k);
    distances.set(arena.f32(batch.outDist, count * k), from * k);
    from += count;
    if (from < nq) await pacer.step();
    size = Math.max(1, Math.min(chunk, Math.floor(SLICE_MS / perQuery)));
  }
  if (scope.allow) scanShort(built, queries, nq, k, opts, scope, ids, distances);
  return { ids, distances };
}
/** Wall time a batch slice aims at (ms): the event loop waits at most about this long. */
const SLICE_MS = 20;
/** Queries in a batch's first slice, before its speed is known. */
const FIRST_SLICE = 256;
/** Arena bytes for each of a batch's three buffers (queries, result ids, result distances). */
const BATCH_ARENA_BYTES = 32 << 20;
/** Search the nq queries in the batch buffers into its result buffers, on this thread or on worker lanes. */
async function runChunk(
  built: Built, nq: number, k: number, opts: ResolvedSearchOptions, threadsAsked: number | undefined, scope: SearchScope,
): Promise<void> {
  const { k: kern } = built.kernels;
  const batch = built.batch;
  const dim = built.layout.dim;
  let threads = platform.threads(threadsAsked);
  threads = Math.max(1, Math.min(threads, Math.floor(nq / MIN_QUERIES_PER_THREAD)));
  if (threads === 1) {
    built.searcher.allow = scope.allow;
    const [, L, nProbe, groupProbe, scan, scanRatio, rerankCount] = built.searcher.plan(k, opts);
    kern.searchRange(built.searcher.ctx, batch.queries, 0, nq, k, L, nProbe, groupProbe, scan, scanRatio, rerankCount, batch.outIds, batch.outDist);
  } else {
    // the calling thread is lane 0 (it would only wait otherwise); workers are lanes 1..threads-1
    await built.lanes.settle(threads - 1);
    while (built.workerSearchers.length < threads - 1) built.workerSearchers.push(new Searcher(built.kernels, built.layout));
    const lanes = [built.searcher, ...built.workerSearchers.slice(0, threads - 1)];
    for (const lane of lanes) lane.allow = scope.allow;
    const calls = lanes.map((s) => s.plan(k, opts));
    const step = Math.max(1, Math.min(CLAIM_STEP, Math.ceil(nq / (threads * CLAIMS_PER_LANE))));
    await built.lanes.run(kern, kernelModule(), {
      queries: batch.queries, nq, step, rowBytes: dim * 4, outIds: batch.outIds, outDist: batch.outDist, ctx: lanes.map((s) => s.ctx), calls,
    }, threads - 1);
  }
}
