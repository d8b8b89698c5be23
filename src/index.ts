/**
 * ZGQ: Zonal Graph Quantization, an approximate-nearest-neighbour index.
 *
 * Vectors are flat row-major Float32Arrays everywhere: vector i of a set with dimension dim is
 * `x[i * dim + j]`, j < dim. Caller ids are uint32; internal node ids (zone-contiguous) never leave
 * the index.
 */
import { ZGQError } from './errors.js';
import { Arena, checkArenaBudget } from './memory.js';
import { type IndexBytes, indexBytes, installArenaBytes, type IndexShape, workArenaBytes } from './budget.js';
import { createKernels, kernelModule, type Kernels } from './kernels/wasm.js';
import { buildZonesSteps, defaultZoneCount } from './zones.js';
import { encodePQSteps, residuals, residualTerms, trainPQSteps, usesPairs } from './pq.js';
import { Pacer, runPaced, throwIfAborted } from './pace.js';
import { type BuildWorkers, buildGraph } from './graph.js';
import { type IndexLayout, Searcher } from './search.js';
import { firstOutOfRange, fitsHalf, fromContainer, install, type IndexArrays, type IndexMeta, metaOf, toHalf, toSections, valueLimit, viewArrays } from './persist.js';
import { countBits, hasBit, IdLookup, setBit } from './ids.js';
import { cameShort, compileFilter, filteredPool, type FilterTarget, listAllowed, PreparedFilter, scanFiltered, type SearchFilter } from './filter.js';
import { appendInPlace, relayout } from './mutate.js';
import { StagedRows, TRAIN_AT } from './staging.js';
import { decodeContainer, type DecodedContainer, encodeContainer } from './format.js';
import { type ParallelInfo, platform, type SaveOptions, type UpdateOptions, type WriteLease } from './platform.js';
import { BatchLanes, releaseWaitingLanes } from './lanes.js';
import {
  DEFAULT_SEARCH, kernelMetric, type Metric, type ResolvedOptions, type ResolvedSearchOptions, type VectorStorage, type SearchOptions, type ZGQOptions, resolveOptions, resolveSearch,
} from './options.js';

export { ZGQError, type ZGQErrorCode } from './errors.js';
export type { GraphShape, Metric, SearchOptions, Traversal, VectorStorage, ZGQOptions } from './options.js';
export { PreparedFilter, type SearchFilter } from './filter.js';
export type { ParallelInfo, SaveOptions, UpdateOptions } from './platform.js';

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
  /**
   * With `invalidQueries: 'skip'`: the queries that could not be searched (non-finite or
   * out-of-range values, zero length under cosine), each with its error; their rows hold NO_ID and
   * Infinity. Empty otherwise.
   */
  errors: { query: number; error: ZGQError }[];
}

/** Options of searchBatch: search options plus the thread count. */
export interface BatchSearchOptions extends SearchOptions {
  /**
   * Threads that search the batch (worker threads sharing the index's memory; nothing is copied
   * per worker). Default: the CPUs available to the process (in a browser: 1 unless the page is
   * cross-origin isolated, see `stats().parallel`). Small batches run on the calling thread.
   */
  threads?: number;
  /**
   * Stops the batch between two of its slices with ZGQError 'ABORTED'. A batch also gives the
   * event loop a turn at least every 50 ms.
   */
  signal?: AbortSignal;
  /**
   * A query the index cannot search: 'throw' (default) rejects the batch with the error of the
   * first such query, naming it; 'skip' answers the others and lists the skipped ones in `errors`.
   */
  invalidQueries?: 'throw' | 'skip';
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
  /**
   * Stops the build at its next step (within about 50 ms) with ZGQError 'ABORTED'; the index stays
   * as it was. The build also gives the event loop a turn at least every 50 ms.
   */
  signal?: AbortSignal;
}

export type BuildPhase = 'zones' | 'pq' | 'graph' | 'done';

/** Options of add: progress of linking the new vectors, and threads as for build. */
export interface AddOptions {
  /** Fraction of the new vectors linked into the graph, in [0, 1]. */
  onProgress?: (fraction: number) => void;
  /** Threads that link the new vectors (worker threads). Default: the CPUs available. */
  threads?: number;
  /** Stops the add at its next step with ZGQError 'ABORTED'; the index stays as it was (see BuildOptions.signal). */
  signal?: AbortSignal;
}

/** Options of compact. */
export interface CompactOptions {
  /** Stops the compaction at its next step with ZGQError 'ABORTED'; the index stays as it was. */
  signal?: AbortSignal;
}

/** Bytes held by each component of a built index (see IndexBytes), and its search scratch. */
export interface MemoryStats extends IndexBytes {
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
  /**
   * Filter scratch in the arena, made on first use: a bitmap each for search() and batches, a node
   * list; and a bitmap per depth for searches run from inside a filter predicate while the outer
   * filter is being compiled (depth: how many compiles of search() filters are under way).
   */
  filterScratch: { searchBits: number; batchBits: number; list: number; depth?: number; nested?: number[] };
}

/** Where one search may look: the allow bitmap and pool size, or an exact scan of listed nodes. */
interface SearchScope {
  /** Arena bitmap of returnable nodes, or 0 for all. */
  allow: number;
  /** How many nodes the bitmap admits (a walk that finds fewer than min(k, allowed) is followed by a scan). */
  allowed: number;
  ef: number;
  /** Nothing may be returned. */
  empty: boolean;
  /** Scan the listCount nodes at listPtr exactly instead of searching the graph. */
  exact: boolean;
  listPtr: number;
  listCount: number;
}

/** A build, add or compact that was called and has not finished. */
class PendingMutation {
  /** Ids removed by calls made while it was pending, to remove again once it is done. */
  readonly removeAfter: number[] = [];
  private readonly ids: Uint32Array | null;
  private idSet: Set<number> | null = null;

  constructor(ids: Uint32Array | null) {
    this.ids = ids;
  }

  /** Whether it adds `id` (the set is made on the first question: removals during a mutation are rare). */
  has(id: number): boolean {
    if (!this.ids) return false;
    this.idSet ??= new Set(this.ids);
    return this.idSet.has(id);
  }
}

export class ZGQIndex {
  readonly options: ResolvedOptions;
  private built: Built | null = null;
  private batchQueue: Promise<void> = Promise.resolve();
  /** build, add and compact run one at a time, in the order called, each on the index the previous one left. */
  private mutations: Promise<void> = Promise.resolve();
  /** Mutations called and not finished, oldest first. */
  private readonly pending: PendingMutation[] = [];
  /** Vectors added before the index was trained (see src/staging.ts), or null. */
  private staged: StagedRows | null = null;
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
    return this.built ? this.built.layout.n - this.built.deletedCount : (this.staged?.n ?? 0);
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
    checkThreads(options.threads);
    const x = metric === 'cosine' ? normalizedCopy(vectors, dim) : vectors;
    // after the mutations called before it; what was staged is replaced with the rest
    await this.enqueue(ids, async () => {
      await this.train(x, ids, options);
      this.staged = null;
    }, options.signal, 'build');
  }

  /**
   * Train zones and codebooks on `x` (n rows, unit length under cosine) and build the graph; the
   * new index replaces the current one once complete. Refused with OUT_OF_MEMORY before any work
   * when it cannot fit.
   */
  private async train(x: Float32Array, ids: Uint32Array, options: BuildOptions): Promise<void> {
    const { dim, metric } = this.options;
    const n = ids.length;
    const pacer = new Pacer(options.signal, 'build');
    const progress = options.onProgress ?? (() => {});
    const o = this.options;
    const m = o.pqSubspaces;
    const nZones = Math.min(o.zones ?? defaultZoneCount(n), n);
    // binary16 only where every vector fits it (see fitsHalf): known before the budget is checked,
    // and checked in slices that leave the event loop its turns
    let half = o.storage === 'float16';
    for (let r = 0; half && r < n; r += HALF_CHECK_ROWS) {
      half = fitsHalf(x.subarray(r * dim, Math.min(n, r + HALF_CHECK_ROWS) * dim), dim);
      await pacer.step();
    }
    const lanes = platform.threads(options.threads);
    const what = `building an index of ${n} vectors of dim ${dim}`;
    checkArenaBudget(workArenaBytes({ n, dim, m, degree: o.degree, efConstruction: o.efConstruction, nZones, lanes, half }), what);
    checkArenaBudget(installArenaBytes(shapeOf(n, dim, m, o, nZones, half)), what);

    // the build works in an arena of its own; the finished arrays move to a fresh, tight one
    const kernels = createKernels(new Arena());
    const { arena } = kernels;
    const metricCode = kernelMetric(metric);

    // graph workers (lane 0 is this thread): started now, so they are up when the graph needs them
    const workers = await buildWorkers(kernels, options.threads);

    progress('zones', 0);
    const zones = await runPaced(buildZonesSteps(kernels, x, n, dim, nZones, o.seed), pacer);
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
    const codebooks = await runPaced(trainPQSteps(kernels, pqInput, n, dim, m, { seed: o.seed + 1, iterations: pqIterations, seedPointsPerCentroid: 8 }), pacer);
    const codes = new Uint8Array(n * m);
    await runPaced(encodePQSteps(kernels, pqInput, n, dim, m, codebooks, codes), pacer);
    const vecTerm = o.residual ? residualTerms(codebooks, codes, zoneOf, zones.centroids, n, dim, m, metricCode) : new Float32Array(0);
    progress('pq', 1);

    progress('graph', 0);
    const adjacencyPtr = await buildGraph(
      kernels,
      { vectorsPtr, n, dim, metric: metricCode, zones, centroidsPtr, groupCentroidsPtr, groupStartPtr },
      {
        degree: o.degree, efConstruction: o.efConstruction, alpha: o.alpha, buildProbe: 2, shape: o.graph, seed: o.seed + 2,
        onProgress: (done, total) => {
          throwIfAborted(options.signal, 'build');
          progress('graph', done / total);
        },
      },
      workers,
    );
    await pacer.step();

    const storage = half ? 'float16' : 'float32';
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
    checkK(k);
    const built = this.built;
    if (!built || k === 0) {
      // not trained yet (or nothing asked for): an exact scan of the staged vectors
      const q = this.queryRow(query);
      const ids = new Uint32Array(k);
      const distances = new Float32Array(k);
      this.staged ? this.staged.search(q, k, this.options.metric, options?.filter, ids, distances, 0) : (ids.fill(NO_ID), distances.fill(Infinity));
      return { ids, distances };
    }
    const opts = this.resolveCached(options);
    const ids = new Uint32Array(k).fill(NO_ID);
    const distances = new Float32Array(k).fill(Infinity);
    const filter = options?.filter;
    const scope = filter === undefined && built.deletedCount === 0 ? UNRESTRICTED : searchScope(built, filter, Math.max(opts.ef, k), 'searchBits');
    this.searchInto(built, query, 0, k, opts, ids, distances, 0, 'query', scope);
    // a filtered walk that gave up or ran out of graph: the allowed nodes are scanned instead
    if (scope.allow && !scope.exact && cameShort(ids, 0, k, scope.allowed)) this.searchInto(built, query, 0, k, opts, ids, distances, 0, 'query', listedScope(built, scope));
    return { ids, distances };
  }

  /**
   * Search nq queries (Float32Array[nq * dim], row-major). Returns flat arrays of nq * k slots,
   * row q at [q * k, (q + 1) * k).
   */
  async searchBatch(queries: Float32Array, k: number, options?: BatchSearchOptions): Promise<BatchSearchResult> {
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
    const invalid = options?.invalidQueries ?? 'throw';
    if (invalid !== 'throw' && invalid !== 'skip') {
      throw new ZGQError('INVALID_ARGUMENT', `invalidQueries must be 'throw' or 'skip'; got ${describeValue(invalid)}`);
    }
    const opts = resolveSearch(options, this.options.search);
    if (invalid === 'skip') {
      const { rows, from, errors } = searchableRows(queries, dim, this.options.metric === 'cosine');
      if (errors.length === 0) return this.searchBatch(queries, k, { ...options, invalidQueries: 'throw' });
      const ids = new Uint32Array(nq * k).fill(NO_ID);
      const distances = new Float32Array(nq * k).fill(Infinity);
      if (from.length === 0) return { ids, distances, nq, k, errors };
      const part = await this.searchBatch(rows, k, { ...options, invalidQueries: 'throw' });
      for (let r = 0; r < from.length; r++) {
        ids.set(part.ids.subarray(r * k, (r + 1) * k), from[r] * k);
        distances.set(part.distances.subarray(r * k, (r + 1) * k), from[r] * k);
      }
      return { ids, distances, nq, k, errors };
    }
    checkFinite(queries, dim, 'query');
    const rows = this.options.metric === 'cosine' ? normalizedCopy(queries, dim, 'query') : queries;
    const filter = options?.filter;
    const built = this.built;
    if (!built || k === 0) {
      const ids = new Uint32Array(nq * k).fill(NO_ID);
      const distances = new Float32Array(nq * k).fill(Infinity);
      if (this.staged) for (let q = 0; q < nq; q++) this.staged.search(rows.subarray(q * dim, (q + 1) * dim), k, this.options.metric, filter, ids, distances, q * k);
      return { ids, distances, nq, k, errors: [] };
    }
    // batches share the index's batch buffers and worker contexts: one batch at a time
    const pacer = new Pacer(options?.signal, 'searchBatch');
    const run = this.batchQueue.then(() => runBatch(built, rows, nq, k, opts, threads, searchScope(built, filter, Math.max(opts.ef, k), 'batchBits'), pacer));
    this.batchQueue = run.then(() => undefined, () => undefined);
    const { ids, distances } = await run;
    const callerIds = built.ids;
    const metric = this.options.metric;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] === NO_ID) continue;
      ids[i] = callerIds[ids[i]];
      distances[i] = reportedDistance(metric, distances[i]);
    }
    return { ids, distances, nq, k, errors: [] };
  }

  /**
   * Stamp (format.ts containerStamp) of each file this index was loaded from or last saved to, by
   * platform.fileKey: save refuses to replace such a file once its stamp has changed (CONFLICT).
   */
  private readonly fileStamps = new Map<string, string>();

  /**
   * Write the index, as it is when save is called, to `path` atomically: a temporary file in the
   * same directory is written, flushed and renamed over `path`, so a crash never leaves a
   * half-written index in its place.
   *
   * Writers of one path exclude each other: save holds the path's writers' lock while it writes
   * (Node: the directory `<path>.lock`; a browser: a Web Lock), waiting up to `options.wait` ms
   * for another writer, and first removes the temporary files that killed saves of `path` left.
   * When this index was loaded from or saved to `path` and another writer has replaced the file
   * since, save refuses rather than discard that writer's changes (a deleted file is written
   * again). {@link ZGQIndex.update} loads, changes and saves under one lock.
   *
   * @throws ZGQError `INVALID_ARGUMENT` for a bad path or wait; `NOT_BUILT`; `LOCKED` naming the
   *   holder when the wait ends; `CONFLICT` when another writer replaced the file; `IO`.
   */
  async save(path: string, options: SaveOptions = {}): Promise<void> {
    const key = platform.fileKey(path);
    const snapshot = await this.snapshot();
    await platform.withLock(path, options.wait, (lease) => this.writeHeld(path, key, snapshot, lease));
  }

  /**
   * Header and sections as they are now, copied: removals and in-place adds may change the index
   * while a file is written, and the sections are views of its memory.
   */
  private async snapshot(): Promise<{ meta: Record<string, unknown>; sections: ReturnType<typeof toSections>['sections'] }> {
    // vectors staged before training: trained on them now, so that what is saved can be searched
    if (!this.built && this.staged?.n) await this.trainStaged();
    const built = this.requireBuilt();
    const { meta, sections } = toSections(built.kernels, built.layout, built.ids, built.deleted, tailOf(built), this.options);
    return { meta: meta as unknown as Record<string, unknown>, sections: sections.map((s) => ({ tag: s.tag, bytes: s.bytes.slice() })) };
  }

  /** Write `snapshot` to `path` under its writers' lock, unless another writer replaced the file since this index last read or wrote it. */
  private async writeHeld(path: string, key: string, snapshot: Awaited<ReturnType<ZGQIndex['snapshot']>>, lease: WriteLease): Promise<void> {
    const known = this.fileStamps.get(key);
    if (known !== undefined) {
      const now = await platform.fileStamp(path);
      if (now !== null && now !== known) {
        throw new ZGQError(
          'CONFLICT',
          `${path}: another writer replaced the file after this index was loaded from or saved to it (file stamp ${known}, now ${now}), ` +
            'so saving would discard its changes; load the file again and repeat the change (ZGQIndex.update does both under the writers\' lock)',
        );
      }
    }
    this.fileStamps.set(key, await platform.writeIndex(path, snapshot.meta, snapshot.sections, lease));
  }

  /**
   * Read an index written by `save`.
   *
   * @throws ZGQError `INVALID_ARGUMENT` when `path` is not a non-empty string; `IO` when it cannot
   *   be read; `CORRUPT_FILE` for damaged or foreign files; `UNSUPPORTED_VERSION` for files that
   *   need a newer zgq.
   */
  static async load(path: string): Promise<ZGQIndex> {
    const key = platform.fileKey(path);
    const decoded = await platform.readIndex(path);
    const index = ZGQIndex.fromDecoded(decoded, path);
    index.fileStamps.set(key, decoded.stamp);
    return index;
  }

  /**
   * Load the index at `path`, let `fn` change it, and save it back, all under the path's writers'
   * lock: concurrent updates of one file (other processes, other hosts on a shared file system,
   * other tabs) apply one after another, and none is lost. Waits up to `options.wait` ms for the
   * lock. `fn` must not save to `path` itself (it would wait for its own lock).
   *
   * With no file at `path`: given `options.create`, `fn` receives a new, empty index with those
   * options (to build or add to); otherwise ZGQError `IO` (not found). When `fn` throws, nothing is
   * written and its error is passed on.
   *
   * @returns the index as saved.
   * @throws ZGQError as for {@link ZGQIndex.load} and {@link ZGQIndex.save}; `INVALID_ARGUMENT`
   *   when `fn` is not a function or `options.create` is invalid; what `fn` throws.
   */
  static async update(path: string, fn: (index: ZGQIndex) => void | Promise<void>, options: UpdateOptions = {}): Promise<ZGQIndex> {
    const key = platform.fileKey(path);
    if (typeof fn !== 'function') throw new ZGQError('INVALID_ARGUMENT', `update: fn must be a function that changes the index; got ${describe(fn)}`);
    const fresh = options.create === undefined ? undefined : new ZGQIndex(options.create);
    return platform.withLock(path, options.wait, async (lease) => {
      const index = fresh && (await platform.fileStamp(path)) === null ? fresh : await ZGQIndex.load(path);
      await fn(index);
      await index.writeHeld(path, key, await index.snapshot(), lease);
      return index;
    });
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
    const pacer = new Pacer(options.signal, 'add');
    await this.enqueue(newIds, async () => {
      if (!this.built) {
        // not trained yet: staged, and trained on everything staged once there is enough
        const staged = this.staged ?? new StagedRows(dim);
        // trained on a copy: a failed or aborted training leaves the staged rows as they were
        const next = staged.n + count >= TRAIN_AT ? staged.clone() : staged;
        next.add(rows, newIds);
        if (next.n >= TRAIN_AT) {
          const all = next.take();
          await this.train(all.rows, all.ids, { threads: options.threads, signal: options.signal });
          this.staged = null;
        } else {
          this.staged = next;
        }
        options.onProgress?.(1);
        return;
      }
      await this.relayoutOr(async (built) => {
        const lay = built.layout;
        const inPlace = count <= APPEND_MAX && lay.capacity - lay.n >= count && this.options.graph !== 'per-zone' && (!lay.halfStorage || fitsHalf(rows, dim));
        if (inPlace) {
          // no batch may read the graph while it changes; the append itself never yields
          await this.exclusive(() => appendNodes(built, rows, newIds, this.options));
          options.onProgress?.(1);
          return null;
        }
        checkRelayoutBudget(lay, lay.n - built.deletedCount + count, this.options, options.threads, `adding ${count} vectors to an index of ${lay.n - built.deletedCount}`);
        const deleted = new Uint8Array((lay.n + 7) >> 3);
        if (built.deleted) deleted.set(built.deleted.subarray(0, deleted.length));
        const lookup = lookupOf(built);
        for (let i = 0; i < count; i++) {
          const node = lookup.find(newIds[i]);
          if (node >= 0) setBit(deleted, node);
        }
        return relayout(metaOf(lay, this.options, lay.n - built.zoned), viewArrays(built.kernels, lay, built.ids, deleted, tailOf(built)), {
          vectors: rows, ids: newIds, workers: (kernels) => buildWorkers(kernels, options.threads), pace: () => pacer.step(),
          onProgress: (fraction) => {
            throwIfAborted(options.signal, 'add');
            options.onProgress?.(fraction);
          },
        });
      }, options.signal, 'add');
    }, options.signal, 'add');
  }

  /** Train on the staged vectors now, after the mutations called before (nothing when trained or empty by then). */
  private trainStaged(): Promise<void> {
    return this.enqueue(null, async () => {
      if (this.built || !this.staged?.n) return;
      const all = this.staged.take();
      await this.train(all.rows, all.ids, {});
      this.staged = null;
    }, undefined, 'save');
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
   * lays the index out afresh. Ids not in the index are ignored. Mutations apply in the order they
   * are called: an id of an add or build called earlier and still running (not awaited) is removed
   * as soon as that call has added it. Returns how many were removed, those included.
   */
  remove(ids: ArrayLike<number>): number {
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw new ZGQError('INVALID_ARGUMENT', `ids must be a Uint32Array or an array of integers; got ${describe(ids)}`);
    }
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isInteger(ids[i]) || ids[i] < 0) throw new ZGQError('INVALID_ARGUMENT', `ids[${i}] must be a non-negative integer; got ${describeValue(ids[i])}`);
    }
    // ids that calls still pending will add: removed after the last of them
    let pendingOnly = 0;
    if (this.pending.length) {
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        let last: PendingMutation | undefined;
        for (const op of this.pending) if (op.has(id)) last = op;
        if (!last || last.removeAfter.includes(id)) continue;
        last.removeAfter.push(id);
        if (!this.has(id)) pendingOnly++;
      }
    }
    this.removedDuring?.push(...Array.from(ids));
    if (!this.built) return (this.staged?.remove(ids) ?? 0) + pendingOnly;
    return removeIds(this.built, ids) + pendingOnly;
  }

  /**
   * Resolve a filter (Set, array of ids or predicate) against the index once, for many searches:
   * each search then copies a bitmap (n / 8 bytes) instead of looking up every id. Removals made
   * later still apply; after add() or compact(), prepare it again (until then it is resolved anew
   * on every use).
   */
  prepareFilter(filter: Exclude<SearchFilter, PreparedFilter>): PreparedFilter {
    const built = this.built;
    // not trained yet: resolved from its source on each use
    if (!built) return new PreparedFilter(filter, {}, new Uint8Array(0));
    const bits = new Uint8Array((built.layout.n + 7) >> 3);
    compileFilter(filter, targetOf(built, null), bits);
    return new PreparedFilter(filter, built.version, bits);
  }

  /** Whether `id` is in the index (added and not removed). */
  has(id: number): boolean {
    const built = this.built;
    if (!Number.isInteger(id)) return false;
    if (!built) return this.staged?.has(id) ?? false;
    const node = lookupOf(built).find(id);
    return node >= 0 && !(built.deleted && hasBit(built.deleted, node));
  }

  /**
   * Drop removed vectors for good: every vector that linked to one is relinked to their
   * neighbours (robust prune), then the index is laid out afresh without them. add() does the same
   * on the way. Searches run on the previous index meanwhile. With every vector removed there is
   * nothing to keep, and the index stays as it is.
   */
  async compact(options: CompactOptions = {}): Promise<void> {
    const pacer = new Pacer(options.signal, 'compact');
    await this.enqueue(null, () => this.relayoutOr(async (built) => {
      if (built.deletedCount === 0 || built.deletedCount === built.layout.n) return null;
      const lay = built.layout;
      checkRelayoutBudget(lay, lay.n - built.deletedCount, this.options, undefined, `compacting an index of ${lay.n - built.deletedCount} vectors`);
      return relayout(metaOf(lay, this.options, lay.n - built.zoned), viewArrays(built.kernels, lay, built.ids, built.deleted, tailOf(built)), {
        vectors: new Float32Array(0), ids: new Uint32Array(0), pace: () => pacer.step(),
      });
    }, options.signal, 'compact'), options.signal, 'compact', false);
  }

  /**
   * Queue a mutation (build, add, compact) after those called before it. `ids`: the caller ids it
   * adds (removals called while it is pending are applied after it). Before training, a compact
   * has nothing to do.
   */
  private enqueue(ids: Uint32Array | null, run: () => Promise<void>, signal: AbortSignal | undefined, what: string, untrained = true): Promise<void> {
    const pacer = new Pacer(signal, what); // checks the signal now, and its type
    const op = new PendingMutation(ids);
    this.pending.push(op);
    const result = this.mutations.then(async () => {
      try {
        // aborted while it waited for the mutations before it
        await pacer.step();
        if (!this.built && !untrained) return;
        await run();
        if (op.removeAfter.length) {
          if (this.built) removeIds(this.built, op.removeAfter);
          else this.staged?.remove(op.removeAfter);
        }
      } finally {
        this.pending.splice(this.pending.indexOf(op), 1);
      }
    });
    this.mutations = result.catch(() => undefined);
    return result;
  }

  /** Run a change on the current index, install its result, and re-apply removals made meanwhile. */
  private async relayoutOr(
    change: (built: Built) => Promise<{ meta: IndexMeta; arrays: IndexArrays } | null>, signal: AbortSignal | undefined, what: string,
  ): Promise<void> {
    const built = this.requireBuilt();
    this.removedDuring = [];
    try {
      const result = await change(built);
      if (!result) return;
      // the last moment an abort can still leave the index as it was
      throwIfAborted(signal, what);
      // changed indexes keep room to grow in place
      const next = installBuilt(result.meta, result.arrays, result.meta.n + headroom(result.meta.n));
      if (this.removedDuring.length) removeIds(next, this.removedDuring);
      this.built = next;
      this.options.storage = result.meta.storage;
    } finally {
      this.removedDuring = null;
    }
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

  /** A validated query as float32 (unit length under cosine), for the exact scan of staged vectors. */
  private queryRow(query: Float32Array | ArrayLike<number>): Float32Array {
    const dim = this.options.dim;
    if (query === null || typeof query !== 'object' || typeof (query as ArrayLike<number>).length !== 'number') {
      throw new ZGQError('INVALID_ARGUMENT', `query must be a Float32Array of dim values; got ${describe(query)}`);
    }
    if (query.length !== dim) throw new ZGQError('DIMENSION_MISMATCH', `query has ${query.length} values; the index dim is ${dim}`);
    for (let j = 0; j < dim; j++) {
      if (typeof query[j] !== 'number') throw new ZGQError('NOT_FINITE', `query has a non-finite value ${describeValue(query[j])} at position ${j}`);
    }
    const q = Float32Array.from(query);
    checkFinite(q, dim, 'query');
    return this.options.metric === 'cosine' ? normalizedCopy(q, dim, 'query') : q;
  }

  private requireBuilt(): Built {
    if (!this.built) {
      const staged = this.staged?.n ?? 0;
      throw new ZGQError(
        'NOT_BUILT',
        staged
          ? `the index is not trained yet: ${staged} vectors are staged and it trains at ${TRAIN_AT} (or at save() or build())`
          : 'the index is empty: call build() or add() (or ZGQIndex.load) first',
      );
    }
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
    const limit = valueLimit(dim);
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const v = source[start + j];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new ZGQError('NOT_FINITE', `${what} has a non-finite value ${String(v)} at position ${j}`);
      }
      // checked as searched, in float32: a number[] or Float64Array 1e39 is Infinity there, 1e-50 is 0
      q[j] = v;
      if (!(q[j] <= limit && q[j] >= -limit)) throw outOfRange(what, v, j, dim);
      norm += q[j] * q[j];
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

/** Rows fitsHalf checks between two turns of the event loop (a few milliseconds at 768 dimensions). */
const HALF_CHECK_ROWS = 4096;

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

/** The scope of searches with no filter on an index with nothing removed (ef: the caller's). */
const UNRESTRICTED: SearchScope = Object.freeze({ allow: 0, allowed: 0, ef: 0, empty: false, exact: false, listPtr: 0, listCount: 0 });

/**
 * Where a search with this filter looks: with no filter and nothing removed, everywhere; else
 * through a bitmap of the returnable nodes (the walk goes on until its pool holds ef of them), or
 * an exact scan of them when the filter admits too few for a walk to pay (see src/filter.ts).
 * `slot` picks the filter scratch: search() and batches each have their own, so a search during a
 * batch cannot disturb it, and a search run from a filter predicate compiles into a bitmap of its
 * own depth, so it cannot disturb the filter that called it (issue 15).
 */
function searchScope(built: Built, filter: SearchFilter | undefined, ef: number, slot: 'searchBits' | 'batchBits'): SearchScope {
  const n = built.layout.n;
  const live = n - built.deletedCount;
  const scope: SearchScope = { allow: 0, allowed: live, ef, empty: false, exact: false, listPtr: 0, listCount: 0 };
  if (live === 0) return { ...scope, empty: true };
  let bits = built.liveBitsPtr;
  let allowed = live;
  if (filter !== undefined) {
    const { arena } = built.kernels;
    const bytes = (n + 7) >> 3;
    const scratch = built.filterScratch;
    const depth = scratch.depth ?? 0;
    bits = filterBits(built, slot, depth);
    // (the live bitmap is capacity-sized; its first bytes cover the n nodes)
    const liveBits = built.deletedCount ? arena.u8(built.liveBitsPtr, bytes) : null;
    if (slot === 'searchBits') scratch.depth = depth + 1;
    try {
      allowed = compileFilter(filter, targetOf(built, liveBits), arena.u8(bits, bytes));
    } finally {
      if (slot === 'searchBits') scratch.depth = depth;
    }
  } else if (built.deletedCount === 0) {
    return scope;
  }
  if (allowed === 0) return { ...scope, empty: true };
  // every node, none removed: the walk needs no bitmap
  if (allowed === n) return scope;
  const pool = filteredPool(ef, allowed, n);
  if (scanFiltered(pool, allowed, n, built.layout.dim)) return listedScope(built, { ...scope, allow: bits, allowed });
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
 * The scope as an exact scan of the nodes its bitmap admits. The node list is shared: it is filled
 * after any search nested in the filter has finished, and used before control returns.
 */
function listedScope(built: Built, scope: SearchScope): SearchScope {
  const { arena } = built.kernels;
  const { n, capacity } = built.layout;
  const scratch = built.filterScratch;
  scratch.list ||= arena.alloc(capacity * 4);
  const listCount = listAllowed(arena.u8(scope.allow, (n + 7) >> 3), n, arena.u32(scratch.list, n));
  return { ...scope, exact: true, listPtr: scratch.list, listCount };
}

/**
 * Scan exactly, on this thread, the allowed nodes for each query of a filtered batch whose walk came
 * back short (ids and distances: the batch's results, internal ids, rewritten in place).
 */
function scanShort(
  built: Built, queries: Float32Array, nq: number, k: number, opts: ResolvedSearchOptions, scope: SearchScope, ids: Uint32Array, distances: Float32Array,
): void {
  const dim = built.layout.dim;
  let listed: SearchScope | null = null;
  for (let q = 0; q < nq; q++) {
    if (!cameShort(ids, q * k, k, scope.allowed)) continue;
    listed ??= listedScope(built, scope);
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
let nextToken = 0;

/**
 * Search a validated batch: queries copied into the arena, then one searchRange call per slice,
 * on the calling thread or on worker threads sharing the memory. Returns internal ids and kernel
 * distances (copies).
 */
async function runBatch(
  built: Built, queries: Float32Array, nq: number, k: number, given: ResolvedSearchOptions, threadsAsked: number | undefined,
  scope: SearchScope, pacer: Pacer,
): Promise<{ ids: Uint32Array; distances: Float32Array }> {
  const { arena } = built.kernels;
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
      if (pacer.due) await pacer.step();
      searcher.queryBuffer(k, opts).set(queries.subarray(q * dim, (q + 1) * dim));
      searcher.runListed(k, scope.listPtr, scope.listCount, ids, distances, q * k);
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
const SLICE_MS = 25;
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

/** Move validated arrays into a fresh arena (with room for `capacity` nodes) and set up a searcher over them. */
function installBuilt(meta: IndexMeta, arrays: IndexArrays, capacity = meta.n): Built {
  checkArenaBudget(installArenaBytes(shapeOf(Math.max(capacity, meta.n), meta.dim, meta.m, meta.options, meta.nZones, meta.storage === 'float16')), `an index of ${meta.n} vectors of dim ${meta.dim}`);
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
  const { vectors, codes, graph, codebooks, zones } = indexBytes({
    capacity: lay.capacity, dim: lay.dim, m: lay.m, degree: lay.degree, nZones: lay.nZones, nGroups: lay.nGroups,
    half: lay.halfStorage, residual: lay.residual, rowNorms: lay.rowNormsPtr !== 0, paired: lay.codebooksQPtr !== 0,
  });
  const ids = b.ids.byteLength;
  const scratch = Math.max(0, b.kernels.arena.used - b.dataBytes);
  return { vectors, codes, graph, codebooks, zones, ids, scratch, total: vectors + codes + graph + codebooks + zones + ids + scratch };
}

/** Refuse a re-layout into `n` rows (with headroom) that cannot fit, before it starts. */
function checkRelayoutBudget(lay: IndexLayout, n: number, o: ResolvedOptions, threads: number | undefined, what: string): void {
  const half = lay.halfStorage;
  checkArenaBudget(workArenaBytes({
    n, dim: lay.dim, m: lay.m, degree: lay.degree, efConstruction: o.efConstruction, nZones: lay.nZones, lanes: platform.threads(threads), half,
    previous: { n: lay.n },
  }), what);
  checkArenaBudget(installArenaBytes(shapeOf(n + headroom(n), lay.dim, lay.m, o, lay.nZones, half)), what);
}

/** The shape of an index of n rows with these options, before it exists (its budget is checked first). */
function shapeOf(capacity: number, dim: number, m: number, o: ResolvedOptions, nZones: number, half: boolean): IndexShape {
  const nGroups = Math.ceil(Math.sqrt(nZones)); // at most: the two-level tree's groups
  return {
    capacity, dim, m, degree: o.degree, nZones, nGroups, half, residual: o.residual, rowNorms: half && o.metric === 'l2', paired: usesPairs(dim, m),
  };
}

function checkThreads(threads: number | undefined): void {
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > 256)) {
    throw new ZGQError('INVALID_ARGUMENT', `threads must be an integer in [1, 256]; got ${String(threads)}`);
  }
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 0 || k > 1 << 20) {
    throw new ZGQError('INVALID_ARGUMENT', `k must be an integer in [0, 1048576]; got ${describeValue(k)}`);
  }
}

/**
 * NOT_FINITE unless every value is finite and within ±valueLimit(dim) (src/persist.ts): beyond it,
 * squared distances overflow float32.
 */
function checkFinite(x: Float32Array, dim: number, what: string, firstRow = 0): void {
  const i = firstOutOfRange(x, dim);
  if (i < 0) return;
  const at = `${what} ${firstRow + Math.floor(i / dim)}`;
  if (!Number.isFinite(x[i])) throw new ZGQError('NOT_FINITE', `${at} has a non-finite value ${x[i]} at position ${i % dim}`);
  throw outOfRange(at, x[i], i % dim, dim);
}

function outOfRange(what: string, value: number, position: number, dim: number): ZGQError {
  return new ZGQError(
    'NOT_FINITE',
    `${what} has value ${value.toPrecision(7)} at position ${position}; values must lie within ±${valueLimit(dim).toPrecision(4)} at dim ${dim}, or squared distances overflow float32`,
  );
}

/** A value named with its type where the type is the problem: "5n (a bigint)", "'5' (a string)". */
function describeValue(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n (a bigint)`;
  if (typeof value === 'string') return `${JSON.stringify(value)} (a string)`;
  if (typeof value === 'number') return String(value);
  return `${String(value)} (${describe(value)})`;
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
      throw new ZGQError('INVALID_ARGUMENT', `ids[${i}] must be an integer in [0, ${NO_ID - 1}]; got ${describeValue(id)}`);
    }
    if (seen.has(id)) throw new ZGQError('DUPLICATE_ID', `id ${id} appears more than once (again at ids[${i}])`);
    seen.add(id);
    ids[i] = id;
  }
  return ids;
}

/** Rows scaled to unit length; the norm in float64, so rows of float32 subnormals keep their direction. */
/**
 * The queries a batch can search, as rows (unit length under cosine) with the batch position of
 * each, and the error of each one it cannot.
 */
function searchableRows(queries: Float32Array, dim: number, cosine: boolean): { rows: Float32Array; from: number[]; errors: { query: number; error: ZGQError }[] } {
  const nq = queries.length / dim;
  const from: number[] = [];
  const errors: { query: number; error: ZGQError }[] = [];
  for (let q = 0; q < nq; q++) {
    const row = queries.subarray(q * dim, (q + 1) * dim);
    try {
      checkFinite(row, dim, 'query', q);
      if (cosine) normalizedCopy(row, dim, 'query', q);
      from.push(q);
    } catch (error) {
      if (!(error instanceof ZGQError)) throw error;
      errors.push({ query: q, error });
    }
  }
  const rows = new Float32Array(from.length * dim);
  from.forEach((q, r) => rows.set(queries.subarray(q * dim, (q + 1) * dim), r * dim));
  return { rows, from, errors };
}

function normalizedCopy(x: Float32Array, dim: number, what = 'vector', firstRow = 0): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i += dim) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += x[i + j] * x[i + j];
    if (norm === 0) throw new ZGQError('INVALID_ARGUMENT', `${what} ${firstRow + i / dim} has zero length; cosine distance is undefined for it`);
    const inv = 1 / Math.sqrt(norm);
    for (let j = 0; j < dim; j++) out[i + j] = x[i + j] * inv;
  }
  return out;
}
