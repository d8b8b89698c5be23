/**
 * A built index's state (the arena, its layout, ids, removals, searchers, batch lanes) and the
 * operations on it that ZGQIndex composes: install, remove, append in place, memory and budgets.
 */
import { checkArenaBudget } from './memory.js';
import { decodeHalf } from './kernels/reference/half.js';
import { type IndexBytes, indexBytes, type IndexShape, installArenaBytes, workArenaBytes } from './budget.js';
import { kernelModule, type Kernels } from './kernels/wasm.js';
import { usesPairs } from './pq.js';
import { type BuildWorkers } from './graph.js';
import { Searcher } from './search.js';
import type { IndexMeta } from './persist.js';
import { type IndexArrays, type IndexLayout, type InPlace, install } from './layout.js';
import { IdLookup } from './ids.js';
import { RemovedNodes } from './removed.js';
import type { FastScan } from './fastscan.js';
import { type FilterTarget } from './filter.js';
import type { RowStore } from './rows.js';
import { appendInPlace } from './mutate.js';
import { platform } from './platform.js';
import { BatchLanes, releaseWaitingLanes } from './lanes.js';
import { type ResolvedOptions } from './options.js';

/** Bytes held by each component of a built index (see IndexBytes), and its search scratch. */
export interface MemoryStats extends IndexBytes {
  /** The 'fastscan' traversal's 4-bit codes and buffers: 0 until its first search (src/fastscan.ts). */
  fastScan: number;
  /**
   * The zoned rows rounded to 16-bit integers that batches scan grouped by zone: 0 until the first
   * such batch (src/batch.ts roundRows; padded dim * 2 + 4 bytes per row).
   */
  roundedRows: number;
  /** Per-thread search scratch (visited tags, lookup table, pool). */
  scratch: number;
  /** The components and scratch above, summed. */
  total: number;
  /**
   * Bytes of the index's WebAssembly memories, which never shrink: the total, the room of scratch
   * since released, and for a freshly built index the room its build's temporaries took (the build
   * lays the index out in its own memory rather than copy it). Not part of the total.
   */
  arena: number;
}

export interface Built {
  kernels: Kernels;
  layout: IndexLayout;
  searcher: Searcher;
  /** Uint32Array[capacity]: caller id of each internal node (the first layout.n in use). */
  ids: Uint32Array;
  zoneStart: Uint32Array;
  /** Uint32Array[capacity - zoned]: zones of the nodes appended in place ([zoned, n)). */
  tailZones: Uint32Array;
  /** Nodes laid out in the zone ranges (zoneStart[nZones]). */
  zoned: number;
  /** Replaced whenever nodes are added: prepared filters of an older state are resolved again. */
  version: object;
  /** Arena bytes at the end of the index data (scratch lies above). */
  dataBytes: number;
  /** One searcher (context and scratch) per worker thread of parallel batches. */
  workerSearchers: Searcher[];
  /** Arena buffers of the current batch: queries f32[capacity], results u32/f32[capacity]. */
  batch: { capacity: number; queries: number; outIds: number; outDist: number };
  /** Worker lanes of parallel batches (slots and counters in the arena; they name its memory to workers). */
  lanes: BatchLanes;
  /** The nodes removed since the last layout. */
  removed: RemovedNodes;
  /** Caller id -> node, made on first use. */
  lookup: IdLookup | null;
  /** The 4-bit codes of the 'fastscan' traversal, made on its first search (src/fastscan.ts). */
  fastScan?: FastScan;
  /**
   * The zoned rows rounded to 16-bit integers for batches' grouped zone scans (see roundRows in
   * src/batch.ts): made on the first such batch (rows [0, done) so far); ptr 0 when they do not fit.
   */
  rounded?: { ptr: number; units: number; bytes: number; done: number };
  /** The re-ranking rows when they live outside the arena (layout.vectorsPtr 0), else null. */
  rows: RowStore | null;
  /**
   * Filter scratch in the arena, made on first use: a bitmap and a node list each for search() and
   * batches; and a bitmap per depth for searches run from inside a filter predicate while the outer
   * filter is being compiled (depth: how many compiles of search() filters are under way).
   */
  filterScratch: { searchBits: number; batchBits: number; list: number; batchList: number; depth?: number; nested?: number[] };
}

let nextToken = 0;
/** Worker lanes for graph linking on the kernels' memory (lane 0 is the calling thread), or undefined for one thread. */
export async function buildWorkers(kernels: Kernels, threadsAsked: number | undefined): Promise<BuildWorkers | undefined> {
  const threads = platform.threads(threadsAsked);
  if (threads <= 1) return undefined;
  const token = `zgq-build-${nextToken++}-${Math.random().toString(36).slice(2)}`;
  const memory = kernels.arena.memory;
  void releaseWaitingLanes(); // workers waiting for more batches: linking needs their threads now
  const workers: BuildWorkers = {
    lanes: threads,
    run: (kind, ctx, from, to, lane, lanes) => platform.runTask({ kind, token, memory, module: kernelModule(), ctx, from, to, lane, lanes }, threads),
  };
  // an empty range does nothing but start the worker and bind its kernels to this memory, early
  for (let lane = 1; lane < threads; lane++) workers.run('buildBack', 0, 0, 0, 0, 1).catch(() => {});
  return workers;
}
export function targetOf(built: Built, live: Uint8Array | null): FilterTarget {
  return { owner: built.version, ids: built.ids.subarray(0, built.layout.n), lookup: () => lookupOf(built), live };
}
export function lookupOf(built: Built): IdLookup {
  built.lookup ??= new IdLookup(built.ids, built.layout.n, built.layout.capacity, built.removed.bits);
  return built.lookup;
}
/** Zones of the nodes appended in place. */
export function tailOf(built: Built): Uint32Array {
  return built.tailZones.subarray(0, built.layout.n - built.zoned);
}
/** Adds of at most this many vectors go in place (when there is room); larger ones re-lay out. */
export const APPEND_MAX = 256;
/** Room for in-place adds kept by a re-laid-out index. */
export function headroom(n: number): number {
  return Math.max(APPEND_MAX, Math.ceil(n / 16));
}
/**
 * Append rows (unit length under cosine) with their ids at the end of the index, in place: zone,
 * codes and stored vector written, then linked into the graph one batch at a time on this thread.
 * An id already present is removed first (its node stays, marked, until the next layout).
 */
export async function appendNodes(built: Built, rows: Float32Array, ids: Uint32Array, options: ResolvedOptions): Promise<void> {
  const lay = built.layout;
  const from = lay.n;
  const count = ids.length;
  const lookup = lookupOf(built);
  const replaced: number[] = [];
  for (let i = 0; i < count; i++) if (lookup.find(ids[i]) >= 0) replaced.push(ids[i]);
  if (replaced.length) removeIds(built, replaced);
  // everything up to the await happens at once: no search sees a half-added node
  built.ids.set(ids, from);
  for (let i = 0; i < count; i++) lookup.set(ids[i], from + i);
  built.removed.appended(from, from + count);
  const { zones, linked } = appendInPlace(built.kernels, lay, rows, options, built.removed.kernelBits);
  built.tailZones.set(zones, from - built.zoned);
  built.version = {};
  await linked;
}
/** Mark the nodes of `ids` removed (unknown and already removed ids are skipped); returns how many. */
export function removeIds(built: Built, ids: ArrayLike<number>): number {
  const lookup = lookupOf(built);
  let removed = 0;
  for (let i = 0; i < ids.length; i++) {
    const node = lookup.find(ids[i]);
    if (node >= 0 && built.removed.remove(node)) removed++;
  }
  return removed;
}
/**
 * Move validated arrays into a fresh arena (with room for `capacity` nodes) and set up a searcher
 * over them; with `rows`, the re-ranking rows stay there, outside the arena; `inPlace`: into the
 * build's arena that holds the rows and graph already (its budget was checked with the build's).
 */
export function installBuilt(meta: IndexMeta, arrays: IndexArrays, capacity = meta.n, rows: RowStore | null = null, inPlace?: InPlace): Built {
  const shape = shapeOf(Math.max(capacity, meta.n), meta.dim, meta.m, meta.options, meta.nZones, meta.storage === 'float16');
  if (!inPlace) checkArenaBudget(installArenaBytes({ ...shape, rowsOutside: rows !== null }), `an index of ${meta.n} vectors of dim ${meta.dim}`);
  const { kernels, layout } = install(meta, arrays, capacity, rows !== null, inPlace);
  const dataBytes = kernels.arena.used;
  const ids = new Uint32Array(layout.capacity);
  ids.set(arrays.ids);
  const tailZones = new Uint32Array(layout.capacity - meta.zoned);
  tailZones.set(arrays.tailZones);
  const built: Built = {
    kernels, layout, searcher: new Searcher(kernels, layout, rows), rows, ids, zoneStart: arrays.zoneStart.slice(), tailZones, zoned: meta.zoned,
    version: {}, dataBytes, workerSearchers: [], batch: { capacity: 0, queries: 0, outIds: 0, outDist: 0 },
    lanes: new BatchLanes(kernels.arena, `zgq-${nextToken++}-${Math.random().toString(36).slice(2)}`),
    removed: new RemovedNodes(kernels.arena, layout.capacity, () => layout.n), lookup: null,
    filterScratch: { searchBits: 0, batchBits: 0, list: 0, batchList: 0 },
  };
  if (arrays.deleted) built.removed.restore(arrays.deleted);
  return built;
}
/** Bytes held, per-node arrays counted at their capacity (room kept for in-place adds included). */
export function memoryStats(b: Built): MemoryStats {
  const lay = b.layout;
  const bytes = indexBytes({
    capacity: lay.capacity, dim: lay.dim, m: lay.m, degree: lay.degree, nZones: lay.nZones, nGroups: lay.nGroups,
    half: lay.halfStorage, residual: lay.residual, rowNorms: lay.rowNormsPtr !== 0, paired: lay.codebooksQPtr !== 0, rowsOutside: b.rows !== null,
  });
  const { codes, graph, codebooks, zones } = bytes;
  // rows in JS memory count; rows left in a file are the OS page cache's
  const vectors = bytes.vectors + (b.rows?.bytes ?? 0);
  const ids = b.ids.byteLength;
  const fastScan = b.fastScan?.bytes ?? 0;
  const roundedRows = b.rounded?.bytes ?? 0;
  const scratch = Math.max(0, b.kernels.arena.used - b.dataBytes - fastScan - roundedRows);
  return {
    vectors, codes, graph, codebooks, zones, ids, fastScan, roundedRows, scratch,
    total: vectors + codes + graph + codebooks + zones + ids + fastScan + roundedRows + scratch,
    arena: b.kernels.arena.memory.buffer.byteLength,
  };
}
/** Refuse a re-layout into `n` rows (with headroom) that cannot fit, before it starts; `repair`: removed or replaced nodes are cut out. */
export function checkRelayoutBudget(
  lay: IndexLayout, n: number, repair: boolean, o: ResolvedOptions, threads: number | undefined, what: string,
): void {
  const half = lay.halfStorage;
  checkArenaBudget(workArenaBytes({
    n, dim: lay.dim, m: lay.m, degree: lay.degree, efConstruction: o.efConstruction, nZones: lay.nZones, lanes: platform.threads(threads), half,
    previous: { n: lay.n, repair },
  }), what);
  checkArenaBudget(installArenaBytes(shapeOf(n + headroom(n), lay.dim, lay.m, o, lay.nZones, half)), what);
}

/** The shape of an index of n rows with these options, before it exists (its budget is checked first). */
export function shapeOf(capacity: number, dim: number, m: number, o: ResolvedOptions, nZones: number, half: boolean): IndexShape {
  const nGroups = Math.ceil(Math.sqrt(nZones)); // at most: the two-level tree's groups
  return {
    capacity, dim, m, degree: o.degree, nZones, nGroups, half, residual: o.residual, rowNorms: half && o.metric === 'l2', paired: usesPairs(dim, m),
  };
}

/** Stored rows [from, to) as float32, row-major (a copy; binary16 rows decoded). */
export function storedRows(built: Built, from: number, to: number): Float32Array {
  const { layout: lay, kernels } = built;
  const { arena } = kernels;
  const count = (to - from) * lay.dim;
  if (built.rows) {
    const bytes = new Uint8Array((to - from) * built.rows.rowBytes);
    built.rows.gather(Uint32Array.from({ length: to - from }, (_, i) => from + i), to - from, bytes);
    return lay.halfStorage ? Float32Array.from(new Uint16Array(bytes.buffer), decodeHalf) : new Float32Array(bytes.buffer);
  }
  if (!lay.halfStorage) return arena.f32(lay.vectorsPtr + from * lay.dim * 4, count).slice();
  return Float32Array.from(arena.u16(lay.vectorsPtr + from * lay.dim * 2, count), decodeHalf);
}

/** Stored row of `node` as float32 (a copy; binary16 rows decoded). */
export function storedRow(built: Built, node: number): Float32Array {
  return storedRows(built, node, node + 1);
}
