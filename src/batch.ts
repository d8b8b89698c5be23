/**
 * How a batch of queries runs: through the arena in slices, on the calling thread or worker lanes,
 * within a search scope (src/scope.ts).
 */
import { kernelModule } from './kernels/wasm.js';
import { Pacer } from './pace.js';
import { Searcher } from './search.js';
import { NO_ID } from './ids.js';
import { cameShort } from './filter.js';
import { platform } from './platform.js';
import { ZGQError } from './errors.js';
import type { ResolvedSearchOptions } from './options.js';
import type { Built } from './built.js';
import { searchFast } from './fastscan.js';
import { listedScope, type SearchScope } from './scope.js';
import { sliceBounds } from './worker.js';

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
  if (scope.empty || scope.exact || scope.all || scope.fast || built.rows) {
    // nothing to search, an exact scan of a few allowed nodes per query, or of all, or rows outside
    // the arena (copied in for each query by this thread's row store): on this thread
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
      else if (scope.exact) searcher.runListed(k, scope.listPtr, scope.listCount, ids, distances, q * k);
      else searcher.run(k, opts, ids, distances, q * k);
    }
    if (scope.allow && !scope.exact && !scope.all) scanShort(built, queries, nq, k, opts, scope, ids, distances);
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
  // batches run one at a time (ZGQIndex's batch queue): one aborted while rounding leaves the
  // rounded rows so far for the next to go on from
  if (groupedScans(built, nq, opts, scope)) await roundRows(built, pacer);
  // slices of about SLICE_MS each (the first a guess), so the event loop gets its turns and an
  // abort is seen between two of them
  let size = Math.min(chunk, FIRST_SLICE);
  const ordered = groupTuning.order && groupedScans(built, nq, opts, scope);
  for (let from = 0; from < nq; ) {
    const count = Math.min(size, nq - from);
    const rows = queries.subarray(from * dim, (from + count) * dim);
    arena.f32(batch.queries, count * dim).set(rows);
    const t0 = performance.now();
    const order = ordered ? localityOrder(built, rows, count) : null;
    await runChunk(built, count, k, opts, threadsAsked, scope);
    const perQuery = Math.max(1e-4, (performance.now() - t0) / count);
    const outIds = arena.u32(batch.outIds, count * k);
    const outDist = arena.f32(batch.outDist, count * k);
    if (order) {
      for (let i = 0; i < count; i++) {
        ids.set(outIds.subarray(i * k, (i + 1) * k), (from + order[i]) * k);
        distances.set(outDist.subarray(i * k, (i + 1) * k), (from + order[i]) * k);
      }
    } else {
      ids.set(outIds, from * k);
      distances.set(outDist, from * k);
    }
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
/** A searcher's grouped scratch for these slices, or null when the arena has no room for it (the batch then goes ungrouped). */
function groupedScratchOf(searcher: Searcher, maxQueries: number, nProbe: number, L: number): { ptr: number; bytes: number } | null {
  try {
    return searcher.groupedScratch(maxQueries, nProbe, L);
  } catch (error) {
    if (error instanceof ZGQError && error.code === 'OUT_OF_MEMORY') return null;
    throw error;
  }
}
/** Queries of a grouped slice at most (its scratch grows with them). */
const GROUPED_MAX_QUERIES = 1024;
/**
 * When zone scans are grouped across a batch (assembly/grouped.ts): `minShare` is the least number of
 * queries per zone (batch size times zones scanned per query, over the zones) at which it pays;
 * `order`: a slice's queries go in order of their nearest zone group (localityOrder).
 */
export const groupTuning = { minShare: 2, order: true };

/**
 * The chunk's queries (in the batch buffer, `rows` their copy) put in order of their nearest zone
 * group, in place; returns the order (position i holds query order[i]), or null where there are
 * no groups to order by. A zone's rows are shared by the queries of one slice that scan it, and
 * the lanes cut slices in order: queries of one region together share more of them.
 */
function localityOrder(built: Built, rows: Float32Array, count: number): Uint32Array | null {
  const lay = built.layout;
  const { arena, k: kern } = built.kernels;
  const nCentres = lay.nGroups || lay.nZones;
  if (nCentres < 2 || count < 2) return null;
  const centres = lay.nGroups ? lay.groupCentroidsPtr : lay.centroidsPtr;
  const mark = arena.mark();
  let nearest: Uint32Array;
  try {
    const nearestPtr = arena.alloc(count * 4);
    const distPtr = arena.alloc(count * 4);
    kern.nearestRows(built.batch.queries, count, centres, nCentres, lay.dim, lay.metric, nearestPtr, distPtr);
    nearest = arena.u32(nearestPtr, count).slice();
  } finally {
    arena.release(mark);
  }
  // counting sort by group: stable, so queries of one group keep their order
  const start = new Uint32Array(nCentres + 1);
  for (let i = 0; i < count; i++) start[nearest[i] + 1]++;
  for (let g = 0; g < nCentres; g++) start[g + 1] += start[g];
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[start[nearest[i]]++] = i;
  const dim = lay.dim;
  const into = arena.f32(built.batch.queries, count * dim);
  for (let i = 0; i < count; i++) into.set(rows.subarray(order[i] * dim, (order[i] + 1) * dim), i * dim);
  return order;
}

/**
 * Whether a batch's zone scans are grouped by zone: the exact walk on binary16 rows with zone scans,
 * no filter, and enough queries per zone to share its rows.
 */
function groupedScans(built: Built, nq: number, opts: ResolvedSearchOptions, scope: SearchScope): boolean {
  const { layout } = built;
  if (opts.traversal !== 'exact' || !layout.halfStorage || scope.allow || opts.scan <= 0) return false;
  if (built.rounded && !built.rounded.ptr) return false; // no room for the rounded rows
  return (nq * Math.min(opts.scan, opts.nProbe, layout.nZones)) / layout.nZones >= groupTuning.minShare;
}

/** Rows rounded per step of roundRows (the event loop gets a turn between steps when due). */
const ROUND_STEP = 16384;
/** The rounded rows are made only while the memory stays below this share of its limit with them. */
const ROUNDED_SHARE_OF_LIMIT = 0.5;

/**
 * The zoned rows rounded to 16-bit integers, one scale per row (assembly/grouped.ts roundRowsInto),
 * for grouped zone scans: padded dim * 2 + 4 bytes per row, made once per index state (appended
 * rows lie outside the zones, and a compaction makes a new state), on from where an aborted batch
 * stopped. Where they would take the WebAssembly memory past half its limit (they double the
 * rows' bytes), or the arena has no room for them, batches stay ungrouped (ptr 0).
 */
async function roundRows(built: Built, pacer: Pacer): Promise<void> {
  const { layout, kernels } = built;
  const { arena } = kernels;
  const rows = built.zoned;
  if (!built.rounded) {
    const rowBytes = kernels.k.roundedRowBytes(layout.dim);
    const bytes = rows * (rowBytes + 4);
    built.rounded = { ptr: 0, units: 0, bytes: 0, done: 0 };
    if (arena.used + bytes > arena.limitBytes * ROUNDED_SHARE_OF_LIMIT) return;
    const mark = arena.mark();
    try {
      const ptr = arena.alloc(rows * rowBytes);
      const units = arena.alloc(rows * 4);
      built.rounded = { ptr, units, bytes, done: 0 };
    } catch (error) {
      arena.release(mark);
      if (!(error instanceof ZGQError) || error.code !== 'OUT_OF_MEMORY') throw error;
      return;
    }
  }
  const r = built.rounded;
  while (r.ptr && r.done < rows) {
    if (pacer.due) await pacer.step();
    const to = Math.min(rows, r.done + ROUND_STEP);
    kernels.k.roundRowsInto(layout.vectorsPtr, r.done, to, layout.dim, r.ptr, r.units);
    r.done = to;
  }
}

/** Search the nq queries in the batch buffers into its result buffers, on this thread or on worker lanes. */
async function runChunk(
  built: Built, nq: number, k: number, opts: ResolvedSearchOptions, threadsAsked: number | undefined, scope: SearchScope,
): Promise<void> {
  const { k: kern } = built.kernels;
  const batch = built.batch;
  const dim = built.layout.dim;
  let threads = platform.threads(threadsAsked);
  threads = Math.max(1, Math.min(threads, Math.floor(nq / MIN_QUERIES_PER_THREAD)));
  let grouped = groupedScans(built, nq, opts, scope) && !!built.rounded?.ptr && built.rounded.done === built.zoned;
  if (threads === 1) {
    const searcher = built.searcher;
    searcher.allow = scope.allow;
    const [, L, nProbe, groupProbe, scan, scanRatio, rerankCount] = searcher.plan(k, opts);
    const most = Math.min(nq, GROUPED_MAX_QUERIES);
    const scratch = grouped ? groupedScratchOf(searcher, most, nProbe, L) : null;
    if (scratch) {
      const { ptr, units } = built.rounded!;
      for (let from = 0; from < nq; from += most) {
        kern.searchGrouped(
          searcher.ctx, scratch.ptr, scratch.bytes, most, ptr, units, batch.queries, from, Math.min(nq, from + most),
          k, L, nProbe, groupProbe, scan, scanRatio, batch.outIds, batch.outDist,
        );
        built.lanes.stats.grouped++;
      }
    } else {
      kern.searchRange(searcher.ctx, batch.queries, 0, nq, k, L, nProbe, groupProbe, scan, scanRatio, rerankCount, batch.outIds, batch.outDist);
    }
  } else {
    // the calling thread is lane 0 (it would only wait otherwise); workers are lanes 1..threads-1
    await built.lanes.settle(threads - 1);
    while (built.workerSearchers.length < threads - 1) built.workerSearchers.push(new Searcher(built.kernels, built.layout));
    const lanes = [built.searcher, ...built.workerSearchers.slice(0, threads - 1)];
    for (const lane of lanes) lane.allow = scope.allow;
    const calls = lanes.map((s) => s.plan(k, opts));
    // grouped slices shrink as the batch goes; each lane's scratch holds the largest
    const largest = sliceBounds(nq, 0, threads, GROUPED_MAX_QUERIES)[1];
    const scratches = grouped ? lanes.map((s, i) => groupedScratchOf(s, largest, calls[i][2], calls[i][1])) : [];
    if (scratches.some((s) => s === null)) grouped = false;
    const step = grouped ? 0 : Math.max(1, Math.min(CLAIM_STEP, Math.ceil(nq / (threads * CLAIMS_PER_LANE))));
    await built.lanes.run(kern, kernelModule(), {
      queries: batch.queries, nq, step, maxSlice: GROUPED_MAX_QUERIES, rowBytes: dim * 4, outIds: batch.outIds, outDist: batch.outDist,
      ctx: lanes.map((s) => s.ctx), calls, grouped: lanes.map((_, i) => (grouped ? scratches[i]! : { ptr: 0, bytes: 0 })),
      rounded: grouped ? built.rounded!.ptr : 0, units: grouped ? built.rounded!.units : 0,
    }, threads - 1);
  }
}
