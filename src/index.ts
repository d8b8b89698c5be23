/**
 * ZGQ: Zonal Graph Quantization, an approximate-nearest-neighbour index.
 *
 * Vectors are flat row-major Float32Arrays everywhere: vector i of a set with dimension dim is
 * `x[i * dim + j]`, j < dim. Caller ids are uint32; internal node ids (zone-contiguous) never leave
 * the index.
 */
import { firstNonFinite, ZGQError } from './errors.js';
import { Arena } from './memory.js';
import { createKernels, kernelModule, type Kernels } from './kernels/wasm.js';
import { buildZones, defaultZoneCount } from './zones.js';
import { encodePQ, pairedRows, PQ_CENTROIDS, residuals, residualTerms, trainPQ } from './pq.js';
import { type BuildWorkers, buildGraph } from './graph.js';
import { type IndexLayout, Searcher } from './search.js';
import { fitsHalf, fromContainer, install, type IndexArrays, type IndexMeta, metaOf, toHalf, toSections, viewArrays } from './persist.js';
import { countBits, hasBit, IdLookup, setBit } from './ids.js';
import { compileFilter, type FilterTarget, listAllowed, MAX_WIDEN, planFiltered, PreparedFilter, type SearchFilter } from './filter.js';
import { appendInPlace, relayout } from './mutate.js';
import { decodeContainer, type DecodedContainer, encodeContainer } from './format.js';
import { type ParallelInfo, platform } from './platform.js';
import { BatchLanes, releaseWaitingLanes } from './lanes.js';
import {
  DEFAULT_SEARCH, kernelMetric, type Metric, type ResolvedOptions, type ResolvedSearchOptions, type VectorStorage, type SearchOptions, type ZGQOptions, resolveOptions, resolveSearch,
} from './options.js';

export { ZGQError, type ZGQErrorCode } from './errors.js';
export type { GraphShape, Metric, SearchOptions, Traversal, VectorStorage, ZGQOptions } from './options.js';
export { PreparedFilter, type SearchFilter } from './filter.js';
export type { ParallelInfo } from './platform.js';

/** Id reported in result slots that have no neighbour (k larger than the index). */
export const NO_ID = 0xffffffff;

/** Result of one query: k slots, nearest first (copies, owned by the caller). */
export interface SearchResult {
  ids: Uint32Array;
  /** Squared L2 for 'l2'; 1 - dot for 'ip'; 1 - cosine similarity for 'cosine'. */
  distances: Float32Array;
}

/** Result of a batch: row q of the flat arrays is `[q * k, (q + 1) * k)`. */
export interface BatchSearchResult extends SearchResult {
  nq: number;
  k: number;
}

/** Options of searchBatch: search options plus the thread count. */
export interface BatchSearchOptions extends SearchOptions {
  /**
   * Threads that search the batch (worker threads sharing the index's memory; nothing is copied
   * per worker). Default: the CPUs available to the process (in a browser: 1 unless the page is
   * cross-origin isolated, see `stats().parallel`). Small batches run on the calling thread.
   */
  threads?: number;
}

export interface BuildOptions {
  /** Caller ids, one per vector, unique uint32 values. Default: 0..n-1. */
  ids?: Uint32Array | ArrayLike<number>;
  /** Progress of the build: phase name and fraction done in [0, 1]. */
  onProgress?: (phase: BuildPhase, fraction: number) => void;
  /**
   * Threads that build the graph (worker threads on the shared memory). Default: the CPUs available
   * (in a browser: 1 unless the page is cross-origin isolated). The index is the same, byte for byte, for any thread count.
   */
  threads?: number;
}

export type BuildPhase = 'zones' | 'pq' | 'graph' | 'done';

/** Options of add: progress of linking the new vectors, and threads as for build. */
export interface AddOptions {
  /** Fraction of the new vectors linked into the graph, in [0, 1]. */
  onProgress?: (fraction: number) => void;
  /** Threads that link the new vectors (worker threads). Default: the CPUs available. */
  threads?: number;
}

/** Bytes held by each component of a built index. */
export interface MemoryStats {
  /** Stored rows (binary16 or float32); binary16 rows under 'l2' or 'cosine' also keep their squared norms (4 bytes each). */
  vectors: number;
  codes: number;
  graph: number;
  codebooks: number;
  zones: number;
  ids: number;
  /** Per-thread search scratch (visited tags, lookup table, pool). */
  scratch: number;
  total: number;
}

export interface IndexStats {
  /** Vectors searches can return. */
  size: number;
  /** Removed vectors still held until the next compact() or a large add(). */
  deleted: number;
  /** Vectors added in place since the last layout: reached through the graph, not zone scans. */
  appended: number;
  /** Vectors the index has room for before an add must lay it out afresh. */
  capacity: number;
  dim: number;
  metric: Metric;
  zones: number;
  /** Groups of the two-level zone-selection tree (0: zones are scanned exactly). */
  zoneGroups: number;
  zoneSizes: { min: number; max: number; mean: number };
  pqSubspaces: number;
  residual: boolean;
  /** How re-ranking vectors are stored. */
  storage: VectorStorage;
  degree: number;
  /** Mean out-degree of the graph. */
  meanDegree: number;
  memory: MemoryStats;
  /** Where parallel build and batch search run here (in a browser: one thread unless cross-origin isolated). */
  parallel: ParallelInfo;
}

interface Built {
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
  /**
   * Uint8Array[ceil(capacity / 8)]: removed nodes (bit set), or null while none are. A view of the
   * arena at deletedBitsPtr (the memory is shared, so the view stays valid when it grows), read by
   * the in-place linking kernels as it is.
   */
  deleted: Uint8Array | null;
  deletedBitsPtr: number;
  deletedCount: number;
  /** Arena bitmap of the nodes searches may return (bit set: not removed), or 0 while none are removed. */
  liveBitsPtr: number;
  /** Caller id -> node, made on first use. */
  lookup: IdLookup | null;
  /** Filter scratch in the arena, made on first use: a bitmap each for search() and batches, a node list. */
  filterScratch: { searchBits: number; batchBits: number; list: number };
}

/** Where one search may look: the allow bitmap and pool size, or an exact scan of listed nodes. */
interface SearchScope {
  /** Arena bitmap of returnable nodes, or 0 for all. */
  allow: number;
  ef: number;
  /** Nothing may be returned. */
  empty: boolean;
  /** Scan the listCount nodes at listPtr exactly instead of searching the graph. */
  exact: boolean;
  listPtr: number;
  listCount: number;
}

export class ZGQIndex {
  readonly options: ResolvedOptions;
  private built: Built | null = null;
  private batchQueue: Promise<void> = Promise.resolve();
  /** add and compact run one at a time, each on the index the previous one left. */
  private mutations: Promise<void> = Promise.resolve();
  /** Ids removed while an add or compact runs: removed again from its result. */
  private removedDuring: number[] | null = null;
  /** The last per-call search options seen, as given (fields copied) and resolved. */
  private lastOptions: ({ given: SearchOptions; defaults: ResolvedSearchOptions; resolved: ResolvedSearchOptions } & SearchOptions) | null = null;

  /** Search options the caller fixed; the others may follow the zone count at build. */
  private readonly fixedSearch: SearchOptions;

  constructor(options: ZGQOptions) {
    this.options = resolveOptions(options);
    this.fixedSearch = { ...options.search };
  }

  get dim(): number {
    return this.options.dim;
  }

  /** Number of vectors searches can return (0 before build; removed vectors do not count). */
  get size(): number {
    return this.built ? this.built.layout.n - this.built.deletedCount : 0;
  }

  /**
   * Build the index over `vectors` (Float32Array[n * dim], row-major). Replaces any previous
   * content only once the new index is complete.
   */
  async build(vectors: Float32Array, options: BuildOptions = {}): Promise<void> {
    const { dim, metric } = this.options;
    if (!(vectors instanceof Float32Array)) {
      throw new ZGQError('INVALID_ARGUMENT', `vectors must be a Float32Array of n * dim values; got ${describe(vectors)}`);
    }
    if (vectors.length === 0) throw new ZGQError('EMPTY_INPUT', 'cannot build an index from 0 vectors');
    if (vectors.length % dim !== 0) {
      throw new ZGQError('DIMENSION_MISMATCH', `vectors has ${vectors.length} values, not a multiple of dim ${dim}`);
    }
    const n = vectors.length / dim;
    if (n >= 0x7fffffff) throw new ZGQError('INVALID_ARGUMENT', `at most 2^31 - 1 vectors per index; got ${n}`);
    checkFinite(vectors, dim, 'vector');
    const ids = resolveIds(options.ids, n);
    const progress = options.onProgress ?? (() => {});
    checkThreads(options.threads);

    const x = metric === 'cosine' ? normalizedCopy(vectors, dim) : vectors;
    const o = this.options;
    // the build works in an arena of its own; the finished arrays move to a fresh, tight one
    const kernels = createKernels(new Arena());
    const { arena } = kernels;
    const metricCode = kernelMetric(metric);
    const m = Math.min(o.pqSubspaces, dim);

    // graph workers (lane 0 is this thread): started now, so they are up when the graph needs them
    const workers = await buildWorkers(kernels, options.threads);

    progress('zones', 0);
    const zones = buildZones(kernels, x, n, dim, Math.min(o.zones ?? defaultZoneCount(n), n), o.seed);
    progress('zones', 1);

    // vectors in internal (zone-contiguous) order; zone tables for the graph build
    const vectorsPtr = arena.alloc(n * dim * 4);
    {
      const v = arena.f32(vectorsPtr, n * dim);
      for (let i = 0; i < n; i++) v.set(x.subarray(zones.order[i] * dim, zones.order[i] * dim + dim), i * dim);
    }
    const centroidsPtr = arena.allocFrom(zones.centroids);
    const groupCentroidsPtr = zones.nGroups ? arena.allocFrom(zones.groupCentroids) : 0;
    const groupStartPtr = zones.nGroups ? arena.allocFrom(zones.groupStart) : 0;

    progress('pq', 0);
    const zoneOf = new Uint32Array(n);
    for (let z = 0; z < zones.nZones; z++) zoneOf.fill(z, zones.zoneStart[z], zones.zoneStart[z + 1]);
    const pqInput = o.residual ? residuals(arena.f32(vectorsPtr, n * dim), zoneOf, zones.centroids, dim) : arena.f32(vectorsPtr, n * dim).slice();
    // PQ training is a fixed cost (at most 10000 rows): on small sets it outweighs the graph, so
    // fewer Lloyd passes there; k-means++ on 8 points per centroid (BENCHMARKS.md "Performance work")
    const pqIterations = n <= PQ_SMALL_N ? 4 : 10;
    const codebooks = trainPQ(kernels, pqInput, n, dim, m, { seed: o.seed + 1, iterations: pqIterations, seedPointsPerCentroid: 8 });
    const codes = new Uint8Array(n * m);
    encodePQ(kernels, pqInput, n, dim, m, codebooks, codes);
    const vecTerm = o.residual ? residualTerms(codebooks, codes, zoneOf, zones.centroids, n, dim, m, metricCode) : new Float32Array(0);
    progress('pq', 1);

    progress('graph', 0);
    const adjacencyPtr = await buildGraph(
      kernels,
      { vectorsPtr, n, dim, metric: metricCode, zones, centroidsPtr, groupCentroidsPtr, groupStartPtr },
      {
        degree: o.degree, efConstruction: o.efConstruction, alpha: o.alpha, buildProbe: 2, shape: o.graph, seed: o.seed + 2,
        onProgress: (done, total) => progress('graph', done / total),
      },
      workers,
    );

    const storage = o.storage === 'float16' && fitsHalf(x) ? 'float16' : 'float32';
    const internalIds = new Uint32Array(n);
    for (let i = 0; i < n; i++) internalIds[i] = ids[zones.order[i]];
    // far queries spread their neighbours over more zones when zones are many
    const zonesProbed = Math.max(DEFAULT_SEARCH.nProbe, Math.ceil(zones.nZones / ZONES_PER_PROBE));
    const search = {
      ...o.search,
      nProbe: this.fixedSearch.nProbe ?? zonesProbed,
      scan: this.fixedSearch.scan ?? zonesProbed,
    };
    const meta: IndexMeta = {
      kind: 'zgq-index', options: { ...o, search }, n, dim, m, degree: o.degree, nZones: zones.nZones, nGroups: zones.nGroups,
      residual: o.residual, storage, zoned: n,
    };
    const arrays: IndexArrays = {
      vectors: storage === 'float16' ? toHalf(kernels, vectorsPtr, n * dim) : arena.f32(vectorsPtr, n * dim),
      codes,
      adjacency: arena.u32(adjacencyPtr, n * (o.degree + 1)),
      codebooks,
      centroids: zones.centroids,
      zoneStart: zones.zoneStart,
      zoneEntry: zones.zoneEntry,
      groupCentroids: zones.groupCentroids,
      groupStart: zones.groupStart,
      vecTerm,
      ids: internalIds,
      deleted: null,
      tailZones: new Uint32Array(0),
    };
    this.built = installBuilt(meta, arrays);
    this.options.search = search;
    progress('done', 1);
  }

  /**
   * The k nearest indexed vectors to `query`, nearest first. When fewer than k exist (k larger
   * than the index), the remaining slots hold NO_ID and Infinity.
   */
  search(query: Float32Array | ArrayLike<number>, k: number, options?: SearchOptions): SearchResult {
    const built = this.requireBuilt();
    checkK(k);
    const opts = this.resolveCached(options);
    const ids = new Uint32Array(k).fill(NO_ID);
    const distances = new Float32Array(k).fill(Infinity);
    const filter = options?.filter;
    const scope = filter === undefined && built.deletedCount === 0 ? UNRESTRICTED : searchScope(built, filter, Math.max(opts.ef, k), 'searchBits');
    this.searchInto(built, query, 0, k, opts, ids, distances, 0, 'query', scope);
    return { ids, distances };
  }

  /**
   * Search nq queries (Float32Array[nq * dim], row-major). Returns flat arrays of nq * k slots,
   * row q at [q * k, (q + 1) * k).
   */
  async searchBatch(queries: Float32Array, k: number, options?: BatchSearchOptions): Promise<BatchSearchResult> {
    const built = this.requireBuilt();
    checkK(k);
    const threads = options?.threads;
    checkThreads(threads);
    const dim = this.options.dim;
    if (!(queries instanceof Float32Array)) {
      throw new ZGQError('INVALID_ARGUMENT', `queries must be a Float32Array of nq * dim values; got ${describe(queries)}`);
    }
    if (queries.length % dim !== 0) {
      throw new ZGQError('DIMENSION_MISMATCH', `queries has ${queries.length} values, not a multiple of the index dim ${dim}`);
    }
    const nq = queries.length / dim;
    checkFinite(queries, dim, 'query');
    const opts = resolveSearch(options, this.options.search);
    const rows = this.options.metric === 'cosine' ? normalizedCopy(queries, dim, 'query') : queries;
    const filter = options?.filter;
    // batches share the index's batch buffers and worker contexts: one batch at a time
    const run = this.batchQueue.then(() => runBatch(built, rows, nq, k, opts, threads, searchScope(built, filter, Math.max(opts.ef, k), 'batchBits')));
    this.batchQueue = run.then(() => undefined, () => undefined);
    const { ids, distances } = await run;
    const callerIds = built.ids;
    const metric = this.options.metric;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] === NO_ID) continue;
      ids[i] = callerIds[ids[i]];
      distances[i] = reportedDistance(metric, distances[i]);
    }
    return { ids, distances, nq, k };
  }

  /**
   * Write the index to `path` atomically: a temporary file in the same directory is written,
   * flushed and renamed over `path`, so a crash never leaves a half-written index in its place.
   */
  async save(path: string): Promise<void> {
    const built = this.requireBuilt();
    const { meta, sections } = toSections(built.kernels, built.layout, built.ids, built.deleted, tailOf(built), this.options);
    // a snapshot of the index as it is now: removals and in-place adds may change it while the
    // file is written, and the sections are views of its memory
    const snapshot = sections.map((section) => ({ tag: section.tag, bytes: section.bytes.slice() }));
    await platform.writeIndex(path, meta as unknown as Record<string, unknown>, snapshot);
  }

  /** Read an index written by `save`. Damaged or foreign files fail with CORRUPT_FILE. */
  static async load(path: string): Promise<ZGQIndex> {
    return ZGQIndex.fromDecoded(await platform.readIndex(path), path);
  }

  /**
   * The index in the file format of `save` (same header, sections and checksums), as one new
   * Uint8Array (a copy: later changes to the index do not show in it).
   */
  toBytes(): Uint8Array {
    const built = this.requireBuilt();
    const { meta, sections } = toSections(built.kernels, built.layout, built.ids, built.deleted, tailOf(built), this.options);
    return encodeContainer(meta as unknown as Record<string, unknown>, sections, platform.crc32);
  }

  /**
   * An index from the bytes of `toBytes` or of a saved file, with the checks of `load`: damaged or
   * foreign bytes fail with CORRUPT_FILE. The bytes are copied; the caller may reuse them.
   */
  static fromBytes(bytes: Uint8Array): ZGQIndex {
    if (!(bytes instanceof Uint8Array)) {
      throw new ZGQError('INVALID_ARGUMENT', `bytes must be a Uint8Array; got ${describe(bytes)}`);
    }
    return ZGQIndex.fromDecoded(decodeContainer(bytes, 'bytes', platform.crc32), 'bytes');
  }

  private static fromDecoded(decoded: DecodedContainer, name: string): ZGQIndex {
    const { meta, arrays } = fromContainer(decoded, name);
    const index = new ZGQIndex(meta.options);
    index.built = installBuilt(meta, arrays);
    return index;
  }

  /**
   * Add vectors (Float32Array[count * dim]) under caller ids, one per vector. Each joins the zone
   * whose centroid is nearest, is encoded with the trained PQ and linked into the graph. An id
   * already in the index is replaced: its old vector is removed and the new one added.
   * Up to 256 vectors go in place when the index has room (stats().capacity), linked on this thread
   * while no batch runs. Larger adds, and the first after a build or load, lay the index out afresh
   * (one copy of it; removed vectors dropped; room kept for n / 16 more): searches run on the
   * previous index until the new one is complete, and a failed add leaves the index unchanged.
   */
  async add(vectors: Float32Array, ids: Uint32Array | ArrayLike<number>, options: AddOptions = {}): Promise<void> {
    this.requireBuilt();
    const { dim, metric } = this.options;
    if (!(vectors instanceof Float32Array)) {
      throw new ZGQError('INVALID_ARGUMENT', `vectors must be a Float32Array of count * dim values; got ${describe(vectors)}`);
    }
    if (vectors.length % dim !== 0) {
      throw new ZGQError('DIMENSION_MISMATCH', `vectors has ${vectors.length} values, not a multiple of the index dim ${dim}`);
    }
    const count = vectors.length / dim;
    if (ids === undefined) throw new ZGQError('INVALID_ARGUMENT', 'add needs the ids of the new vectors, one per vector');
    const newIds = resolveIds(ids, count);
    checkFinite(vectors, dim, 'vector');
    checkThreads(options.threads);
    if (count === 0) return;
    const rows = metric === 'cosine' ? normalizedCopy(vectors, dim) : vectors.slice();
    await this.mutate(async (built) => {
      const lay = built.layout;
      const inPlace = count <= APPEND_MAX && lay.capacity - lay.n >= count && this.options.graph !== 'per-zone' && (!lay.halfStorage || fitsHalf(rows));
      if (inPlace) {
        // no batch may read the graph while it changes; the append itself never yields
        await this.exclusive(() => appendNodes(built, rows, newIds, this.options));
        options.onProgress?.(1);
        return null;
      }
      const deleted = new Uint8Array((lay.n + 7) >> 3);
      if (built.deleted) deleted.set(built.deleted.subarray(0, deleted.length));
      const lookup = lookupOf(built);
      for (let i = 0; i < count; i++) {
        const node = lookup.find(newIds[i]);
        if (node >= 0) setBit(deleted, node);
      }
      return relayout(metaOf(lay, this.options, lay.n - built.zoned), viewArrays(built.kernels, lay, built.ids, deleted, tailOf(built)), {
        vectors: rows, ids: newIds, onProgress: options.onProgress, workers: (kernels) => buildWorkers(kernels, options.threads),
      });
    });
  }

  /** Run fn when no batch is searching, and hold batches back until it is done. */
  private exclusive<T>(fn: () => T): Promise<T> {
    const run = this.batchQueue.then(fn);
    this.batchQueue = run.then(() => undefined, () => undefined);
    return run;
  }

  /**
   * Remove vectors by caller id. They are never returned again from the moment this returns; their
   * memory is reclaimed and the graph around them repaired by the next compact(), or by an add that
   * lays the index out afresh. Ids not in the index are ignored. Returns how many were removed.
   */
  remove(ids: ArrayLike<number>): number {
    const built = this.requireBuilt();
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw new ZGQError('INVALID_ARGUMENT', `ids must be a Uint32Array or an array of integers; got ${describe(ids)}`);
    }
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isInteger(ids[i]) || ids[i] < 0) throw new ZGQError('INVALID_ARGUMENT', `ids[${i}] must be a non-negative integer; got ${String(ids[i])}`);
    }
    this.removedDuring?.push(...Array.from(ids));
    return removeIds(built, ids);
  }

  /**
   * Resolve a filter (Set, array of ids or predicate) against the index once, for many searches:
   * each search then copies a bitmap (n / 8 bytes) instead of looking up every id. Removals made
   * later still apply; after add() or compact(), prepare it again (until then it is resolved anew
   * on every use).
   */
  prepareFilter(filter: Exclude<SearchFilter, PreparedFilter>): PreparedFilter {
    const built = this.requireBuilt();
    const bits = new Uint8Array((built.layout.n + 7) >> 3);
    compileFilter(filter, targetOf(built, null), bits);
    return new PreparedFilter(filter, built.version, bits);
  }

  /** Whether `id` is in the index (added and not removed). */
  has(id: number): boolean {
    const built = this.built;
    if (!built || !Number.isInteger(id)) return false;
    const node = lookupOf(built).find(id);
    return node >= 0 && !(built.deleted && hasBit(built.deleted, node));
  }

  /**
   * Drop removed vectors for good: every vector that linked to one is relinked to their
   * neighbours (robust prune), then the index is laid out afresh without them. add() does the same
   * on the way. Searches run on the previous index meanwhile. With every vector removed there is
   * nothing to keep, and the index stays as it is.
   */
  async compact(): Promise<void> {
    this.requireBuilt();
    await this.mutate(async (built) => {
      if (built.deletedCount === 0 || built.deletedCount === built.layout.n) return null;
      const lay = built.layout;
      return relayout(metaOf(lay, this.options, lay.n - built.zoned), viewArrays(built.kernels, lay, built.ids, built.deleted, tailOf(built)), {
        vectors: new Float32Array(0), ids: new Uint32Array(0),
      });
    });
  }

  /** Run a change on the latest index, install its result, and re-apply removals made meanwhile. */
  private mutate(change: (built: Built) => Promise<{ meta: IndexMeta; arrays: IndexArrays } | null>): Promise<void> {
    const run = this.mutations.then(async () => {
      const built = this.requireBuilt();
      this.removedDuring = [];
      try {
        const result = await change(built);
        if (!result) return;
        // changed indexes keep room to grow in place
        const next = installBuilt(result.meta, result.arrays, result.meta.n + headroom(result.meta.n));
        if (this.removedDuring.length) removeIds(next, this.removedDuring);
        this.built = next;
        this.options.storage = result.meta.storage;
      } finally {
        this.removedDuring = null;
      }
    });
    this.mutations = run.catch(() => undefined);
    return run;
  }

  /** Zone count and sizes, graph degree, and memory bytes per component. */
  stats(): IndexStats {
    const b = this.requireBuilt();
    const lay = b.layout;
    const sizes = { min: Infinity, max: 0, mean: lay.n / lay.nZones };
    for (let z = 0; z < lay.nZones; z++) {
      const s = b.zoneStart[z + 1] - b.zoneStart[z];
      sizes.min = Math.min(sizes.min, s);
      sizes.max = Math.max(sizes.max, s);
    }
    const adjacency = b.kernels.arena.u32(lay.adjacencyPtr, lay.n * (lay.degree + 1));
    let edges = 0;
    for (let i = 0; i < lay.n; i++) edges += adjacency[i * (lay.degree + 1)];
    const memory = memoryStats(b);
    return {
      size: lay.n - b.deletedCount, deleted: b.deletedCount, appended: lay.n - b.zoned, capacity: lay.capacity, dim: lay.dim, metric: this.options.metric, zones: lay.nZones, zoneGroups: lay.nGroups, zoneSizes: sizes,
      pqSubspaces: lay.m, residual: lay.residual, storage: lay.halfStorage ? 'float16' : 'float32', degree: lay.degree, meanDegree: edges / lay.n, memory,
      parallel: platform.parallel(),
    };
  }

  /**
   * resolveSearch, remembering the last options object: callers tend to pass the same one to every
   * search, and it is re-checked field by field (so a changed object is resolved again).
   */
  private resolveCached(given: SearchOptions | undefined): ResolvedSearchOptions {
    const last = this.lastOptions;
    if (
      given !== undefined && last && last.given === given && last.defaults === this.options.search && last.ef === given.ef &&
      last.nProbe === given.nProbe && last.rerank === given.rerank && last.scan === given.scan && last.scanRatio === given.scanRatio &&
      last.traversal === given.traversal
    ) {
      return last.resolved;
    }
    const resolved = resolveSearch(given, this.options.search);
    if (given !== undefined) {
      this.lastOptions = {
        given, defaults: this.options.search, resolved,
        ef: given.ef, nProbe: given.nProbe, rerank: given.rerank, scan: given.scan, scanRatio: given.scanRatio, traversal: given.traversal,
      };
    }
    return resolved;
  }

  private requireBuilt(): Built {
    if (!this.built) throw new ZGQError('NOT_BUILT', 'the index is empty: call build() (or ZGQIndex.load) before searching');
    return this.built;
  }

  private searchInto(
    built: Built, source: ArrayLike<number>, start: number, k: number, opts: ReturnType<typeof resolveSearch>,
    outIds: Uint32Array, outDist: Float32Array, offset: number, what: string, scope: SearchScope,
  ): void {
    const dim = this.options.dim;
    if (start === 0 && what === 'query') {
      if (source === null || typeof source !== 'object' || typeof (source as ArrayLike<number>).length !== 'number') {
        throw new ZGQError('INVALID_ARGUMENT', `query must be a Float32Array of dim values; got ${describe(source)}`);
      }
      if (source.length !== dim) {
        throw new ZGQError('DIMENSION_MISMATCH', `query has ${source.length} values; the index dim is ${dim}`);
      }
    }
    const searchOpts = scope === UNRESTRICTED || scope.ef === opts.ef ? opts : { ...opts, ef: scope.ef };
    const q = built.searcher.queryBuffer(k, searchOpts);
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const v = source[start + j];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new ZGQError('NOT_FINITE', `${what} has a non-finite value ${String(v)} at position ${j}`);
      }
      q[j] = v;
      norm += v * v;
    }
    if (this.options.metric === 'cosine') {
      if (norm === 0) throw new ZGQError('INVALID_ARGUMENT', `${what} has zero length; cosine distance is undefined for it`);
      const inv = 1 / Math.sqrt(norm);
      for (let j = 0; j < dim; j++) q[j] *= inv;
    }
    if (scope.empty) return;
    built.searcher.allow = scope.allow;
    const got = scope.exact
      ? built.searcher.runListed(k, scope.listPtr, scope.listCount, outIds, outDist, offset)
      : built.searcher.run(k, searchOpts, outIds, outDist, offset);
    const ids = built.ids;
    const metric = this.options.metric;
    for (let i = offset; i < offset + got; i++) {
      outIds[i] = ids[outIds[i]];
      outDist[i] = reportedDistance(metric, outDist[i]);
    }
  }
}

/** Sets of at most this many vectors train PQ with fewer Lloyd passes (see build). */
const PQ_SMALL_N = 20000;

/** Default nProbe and scan: one zone in this many, and at least DEFAULT_SEARCH's (16 up to 512 zones). */
const ZONES_PER_PROBE = 32;

/** Kernel distance -> reported distance: ip gives -dot; cosine runs as L2 on unit vectors, |a - b|² = 2 - 2 cos. */
function reportedDistance(metric: Metric, d: number): number {
  return metric === 'ip' ? 1 + d : metric === 'cosine' ? d / 2 : d;
}

/** Worker lanes for graph linking on the kernels' memory (lane 0 is the calling thread), or undefined for one thread. */
async function buildWorkers(kernels: Kernels, threadsAsked: number | undefined): Promise<BuildWorkers | undefined> {
  const threads = platform.threads(threadsAsked);
  if (threads <= 1) return undefined;
  const token = `zgq-build-${nextToken++}-${Math.random().toString(36).slice(2)}`;
  const memory = kernels.arena.memory;
  releaseWaitingLanes(); // workers waiting for more batches: linking needs their threads now
  const workers: BuildWorkers = {
    lanes: threads,
    run: (kind, ctx, from, to, lane, lanes) => platform.runTask({ kind, token, memory, module: kernelModule(), ctx, from, to, lane, lanes }, threads),
  };
  // an empty range does nothing but start the worker and bind its kernels to this memory, early
  for (let lane = 1; lane < threads; lane++) workers.run('buildBack', 0, 0, 0, 0, 1).catch(() => {});
  return workers;
}

function targetOf(built: Built, live: Uint8Array | null): FilterTarget {
  return { owner: built.version, ids: built.ids.subarray(0, built.layout.n), lookup: () => lookupOf(built), live };
}

function lookupOf(built: Built): IdLookup {
  built.lookup ??= new IdLookup(built.ids, built.layout.n, built.layout.capacity, built.deleted);
  return built.lookup;
}

/** Zones of the nodes appended in place. */
function tailOf(built: Built): Uint32Array {
  return built.tailZones.subarray(0, built.layout.n - built.zoned);
}

/** Adds of at most this many vectors go in place (when there is room); larger ones re-lay out. */
const APPEND_MAX = 256;

/** Room for in-place adds kept by a re-laid-out index. */
function headroom(n: number): number {
  return Math.max(APPEND_MAX, Math.ceil(n / 16));
}

/** Arena bitmaps sized for the index's capacity, made on first use: removed nodes and live nodes. */
function ensureRemovedBits(built: Built): { deleted: Uint8Array; live: Uint8Array } {
  const { n, capacity } = built.layout;
  const bytes = (capacity + 7) >> 3;
  const { arena } = built.kernels;
  if (!built.deleted) {
    built.deletedBitsPtr = arena.alloc(bytes);
    built.deleted = arena.u8(built.deletedBitsPtr, bytes).fill(0);
    built.liveBitsPtr = arena.alloc(bytes);
    const live = arena.u8(built.liveBitsPtr, bytes).fill(0);
    for (let i = 0; i < n; i++) setBit(live, i);
  }
  return { deleted: built.deleted, live: arena.u8(built.liveBitsPtr, bytes) };
}

/**
 * Append rows (unit length under cosine) with their ids at the end of the index, in place: zone,
 * codes and stored vector written, then linked into the graph one batch at a time on this thread.
 * An id already present is removed first (its node stays, marked, until the next layout).
 */
async function appendNodes(built: Built, rows: Float32Array, ids: Uint32Array, options: ResolvedOptions): Promise<void> {
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
  if (built.deleted) {
    const live = built.kernels.arena.u8(built.liveBitsPtr, (lay.capacity + 7) >> 3);
    for (let i = from; i < from + count; i++) setBit(live, i);
  }
  const { zones, linked } = appendInPlace(built.kernels, lay, rows, options, built.deletedCount > 0 ? built.deletedBitsPtr : 0);
  built.tailZones.set(zones, from - built.zoned);
  built.version = {};
  await linked;
}

/** Mark the nodes of `ids` removed (unknown and already removed ids are skipped); returns how many. */
function removeIds(built: Built, ids: ArrayLike<number>): number {
  const { deleted, live } = ensureRemovedBits(built);
  const lookup = lookupOf(built);
  let removed = 0;
  for (let i = 0; i < ids.length; i++) {
    const node = lookup.find(ids[i]);
    if (node < 0 || hasBit(deleted, node)) continue;
    setBit(deleted, node);
    live[node >> 3] &= ~(1 << (node & 7));
    removed++;
  }
  built.deletedCount += removed;
  return removed;
}

/**
 * Where a search with this filter looks: with no filter and nothing removed, everywhere; else
 * through a bitmap (the pool widened so it still holds about ef returnable candidates), or an
 * exact scan of the allowed nodes when that is cheaper. `slot` picks the filter scratch (search()
 * and batches each have their own, so a search during a batch cannot disturb it).
 */
/** The scope of searches with no filter on an index with nothing removed (ef: the caller's). */
const UNRESTRICTED: SearchScope = Object.freeze({ allow: 0, ef: 0, empty: false, exact: false, listPtr: 0, listCount: 0 });

function searchScope(built: Built, filter: SearchFilter | undefined, ef: number, slot: 'searchBits' | 'batchBits'): SearchScope {
  const n = built.layout.n;
  const live = n - built.deletedCount;
  const scope: SearchScope = { allow: 0, ef, empty: false, exact: false, listPtr: 0, listCount: 0 };
  if (live === 0) return { ...scope, empty: true };
  if (filter === undefined) {
    if (built.deletedCount === 0) return scope;
    return { ...scope, allow: built.liveBitsPtr, ef: Math.min(ef * MAX_WIDEN, Math.ceil((ef * n) / live)) };
  }
  const { arena } = built.kernels;
  const bytes = (n + 7) >> 3;
  const scratch = built.filterScratch;
  // sized for the capacity: appends fill the index up to it
  if (!scratch[slot]) scratch[slot] = arena.alloc((built.layout.capacity + 7) >> 3);
  const liveBits = built.deletedCount ? arena.u8(built.liveBitsPtr, bytes) : null;
  // (the live bitmap is capacity-sized; its first bytes cover the n nodes)
  const allowed = compileFilter(filter, targetOf(built, liveBits), arena.u8(scratch[slot], bytes));
  if (allowed === 0) return { ...scope, empty: true };
  const plan = planFiltered(ef, allowed, live);
  if (!plan.exact) return { ...scope, allow: scratch[slot], ef: plan.ef };
  if (!scratch.list) scratch.list = arena.alloc(built.layout.capacity * 4);
  const listCount = listAllowed(arena.u8(scratch[slot], bytes), n, arena.u32(scratch.list, n));
  return { ...scope, exact: true, listPtr: scratch.list, listCount };
}

/** Largest slice a lane claims at a time (smaller near the end of small batches). */
const CLAIM_STEP = 32;

/** Batches below this many queries per thread run on the calling thread. */
const MIN_QUERIES_PER_THREAD = 32;
/** Slices per lane a batch is cut into (at most CLAIM_STEP queries each): the last ones even out the lanes' ends. */
const CLAIMS_PER_LANE = 32;
let nextToken = 0;

/**
 * Search a validated batch: queries copied into the arena, then one searchRange call per slice,
 * on the calling thread or on worker threads sharing the memory. Returns internal ids and kernel
 * distances (copies).
 */
async function runBatch(
  built: Built, queries: Float32Array, nq: number, k: number, given: ResolvedSearchOptions, threadsAsked: number | undefined,
  scope: SearchScope,
): Promise<{ ids: Uint32Array; distances: Float32Array }> {
  const { arena, k: kern } = built.kernels;
  const dim = built.layout.dim;
  const batch = built.batch;
  const opts = scope.ef === given.ef ? given : { ...given, ef: scope.ef };
  if (scope.empty || scope.exact) {
    // nothing to search, or an exact scan of a few allowed nodes per query: on this thread
    const ids = new Uint32Array(nq * k).fill(NO_ID);
    const distances = new Float32Array(nq * k).fill(Infinity);
    if (scope.empty) return { ids, distances };
    const searcher = built.searcher;
    for (let q = 0; q < nq; q++) {
      searcher.queryBuffer(k, opts).set(queries.subarray(q * dim, (q + 1) * dim));
      searcher.runListed(k, scope.listPtr, scope.listCount, ids, distances, q * k);
    }
    return { ids, distances };
  }
  if (batch.capacity < nq * Math.max(dim, k)) {
    const capacity = Math.max(nq * Math.max(dim, k), batch.capacity * 2);
    batch.queries = arena.alloc(capacity * 4);
    batch.outIds = arena.alloc(capacity * 4);
    batch.outDist = arena.alloc(capacity * 4);
    batch.capacity = capacity;
  }
  arena.f32(batch.queries, nq * dim).set(queries.subarray(0, nq * dim));

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
  return { ids: arena.u32(batch.outIds, nq * k).slice(), distances: arena.f32(batch.outDist, nq * k).slice() };
}

/** Move validated arrays into a fresh arena (with room for `capacity` nodes) and set up a searcher over them. */
function installBuilt(meta: IndexMeta, arrays: IndexArrays, capacity = meta.n): Built {
  const { kernels, layout } = install(meta, arrays, capacity);
  const dataBytes = kernels.arena.used;
  const ids = new Uint32Array(layout.capacity);
  ids.set(arrays.ids);
  const tailZones = new Uint32Array(layout.capacity - meta.zoned);
  tailZones.set(arrays.tailZones);
  const built: Built = {
    kernels, layout, searcher: new Searcher(kernels, layout), ids, zoneStart: arrays.zoneStart.slice(), tailZones, zoned: meta.zoned,
    version: {}, dataBytes, workerSearchers: [], batch: { capacity: 0, queries: 0, outIds: 0, outDist: 0 },
    lanes: new BatchLanes(kernels.arena, `zgq-${nextToken++}-${Math.random().toString(36).slice(2)}`),
    deleted: null, deletedBitsPtr: 0, deletedCount: 0, liveBitsPtr: 0, lookup: null, filterScratch: { searchBits: 0, batchBits: 0, list: 0 },
  };
  const removed = arrays.deleted ? countBits(arrays.deleted, layout.n) : 0;
  if (removed > 0) {
    const { deleted, live } = ensureRemovedBits(built);
    deleted.set(arrays.deleted!);
    for (let i = 0; i < layout.n; i++) if (hasBit(deleted, i)) live[i >> 3] &= ~(1 << (i & 7));
    built.deletedCount = removed;
  }
  return built;
}

/** Bytes held, per-node arrays counted at their capacity (room kept for in-place adds included). */
function memoryStats(b: Built): MemoryStats {
  const lay = b.layout;
  const rows = lay.capacity;
  const vectors = rows * lay.dim * (lay.halfStorage ? 2 : 4) + (lay.rowNormsPtr ? rows * 4 : 0); // with their norms under half storage
  const codes = rows * lay.m + (lay.residual ? rows * 8 : 0); // codes, then node terms and zones
  const graph = rows * (lay.degree + 1) * 4;
  // plain + transposed, norms, and the 16-bit pairs where subspaces are not 4 long
  const codebooks = PQ_CENTROIDS * lay.dim * 8 + lay.m * PQ_CENTROIDS * 4 + (lay.codebooksQPtr ? pairedRows(lay.dim, lay.m) * PQ_CENTROIDS * 4 : 0);
  const zones = lay.nZones * (lay.dim * 4 + 8) + 4 + lay.nGroups * (lay.dim * 4 + 4) + (lay.nGroups ? 4 : 0);
  const ids = b.ids.byteLength;
  const scratch = Math.max(0, b.kernels.arena.used - b.dataBytes);
  return { vectors, codes, graph, codebooks, zones, ids, scratch, total: vectors + codes + graph + codebooks + zones + ids + scratch };
}

function checkThreads(threads: number | undefined): void {
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > 256)) {
    throw new ZGQError('INVALID_ARGUMENT', `threads must be an integer in [1, 256]; got ${String(threads)}`);
  }
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k <= 0 || k > 1 << 20) {
    throw new ZGQError('INVALID_ARGUMENT', `k must be an integer in [1, 1048576]; got ${String(k)}`);
  }
}

function checkFinite(x: Float32Array, dim: number, what: string): void {
  const i = firstNonFinite(x);
  if (i >= 0) throw new ZGQError('NOT_FINITE', `${what} ${Math.floor(i / dim)} has a non-finite value ${x[i]} at position ${i % dim}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return (value as object).constructor?.name ?? 'object';
}

function resolveIds(given: BuildOptions['ids'], n: number): Uint32Array {
  if (given === undefined) {
    const ids = new Uint32Array(n);
    for (let i = 0; i < n; i++) ids[i] = i;
    return ids;
  }
  if (given === null || typeof given !== 'object' || typeof given.length !== 'number') {
    throw new ZGQError('INVALID_ARGUMENT', `ids must be a Uint32Array or an array of integers; got ${describe(given)}`);
  }
  if (given.length !== n) throw new ZGQError('INVALID_ARGUMENT', `ids has ${given.length} entries for ${n} vectors`);
  const ids = new Uint32Array(n);
  const seen = new Set<number>();
  for (let i = 0; i < n; i++) {
    const id = given[i];
    if (!Number.isInteger(id) || id < 0 || id >= NO_ID) {
      throw new ZGQError('INVALID_ARGUMENT', `ids[${i}] must be an integer in [0, ${NO_ID - 1}]; got ${String(id)}`);
    }
    if (seen.has(id)) throw new ZGQError('DUPLICATE_ID', `id ${id} appears more than once (again at ids[${i}])`);
    seen.add(id);
    ids[i] = id;
  }
  return ids;
}

function normalizedCopy(x: Float32Array, dim: number, what = 'vector'): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i += dim) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += x[i + j] * x[i + j];
    if (norm === 0) throw new ZGQError('INVALID_ARGUMENT', `${what} ${i / dim} has zero length; cosine distance is undefined for it`);
    const inv = 1 / Math.sqrt(norm);
    for (let j = 0; j < dim; j++) out[i + j] = x[i + j] * inv;
  }
  return out;
}
