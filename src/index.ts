/**
 * ZGQ: Zonal Graph Quantization, an approximate-nearest-neighbour index.
 *
 * Vectors are flat row-major Float32Arrays everywhere: vector i of a set with dimension dim is
 * `x[i * dim + j]`, j < dim. Caller ids are uint32; internal node ids (zone-contiguous) never leave
 * the index.
 */
import { ZGQError } from './errors.js';
import { Pacer, throwIfAborted } from './pace.js';
import { fitsHalf, fromContainer, fromShardedContainer, type IndexMeta, isSharded, metaOf, rowBytesOf, shardedContainer, shardTag, toSections, valueLimit } from './persist.js';
import type { PartlyRead } from './format.js';
import { type IndexArrays, viewArrays } from './layout.js';
import { NO_ID, setBit } from './ids.js';
import { compileFilter, listAllowed, PreparedFilter, type SearchFilter } from './filter.js';
import { relayout } from './mutate.js';
import { StagedRows, TRAIN_AT } from './staging.js';
import { decodeContainer, type DecodedContainer, encodeContainer, isOptionalTag, type Section } from './format.js';
import { type ParallelInfo, platform, type SaveOptions, type UpdateOptions, type WriteLease } from './platform.js';
import { type Metric, type ResolvedOptions, type ResolvedSearchOptions, resolveOptions, resolveSearch, type SearchOptions, type Traversal, type VectorStorage, type ZGQOptions } from './options.js';
import { checkDevice, type Device, type DeviceUse, gpuBatch, GpuResident } from './gpu/batch.js';
import { buildShards, MAX_SHARDS, routerOver, shardCount, Shards, type ZoneTable, zoneTableOf } from './shards.js';
import { HeapRows, type RowPlace, rowsOutside, type RowStore } from './rows.js';
import { addedRows, checkFinite, checkK, checkThreads, describe, describeValue, flatRows, gatherRows, type Vectors, normalizedCopy, resolveIds, searchableRows, outOfRange } from './validate.js';
import { APPEND_MAX, appendNodes, storedRow, buildWorkers, type Built, checkRelayoutBudget, headroom, installBuilt, lookupOf, memoryStats, type MemoryStats, removeIds, tailOf, targetOf } from './built.js';
import { runBatch } from './batch.js';
import { callerResults, scopeFor, searchOne } from './scope.js';
import { buildIndex, type BuildOptions } from './build.js';
import { InputRows } from './input.js';
import { calibrateSearch, checkRecall, tuneSearch, type TuneOptions, type TuneReport, type TuneTarget } from './tune.js';
import { Rng } from './random.js';

export { ZGQError, type ZGQErrorCode } from './errors.js';
export { NO_ID } from './ids.js';
export type { Vectors } from './validate.js';
export type { MemoryStats } from './built.js';
export type { GraphShape, Metric, SearchOptions, Traversal, VectorStorage, ZGQOptions } from './options.js';
export type { Device, DeviceUse } from './gpu/batch.js';
export { PreparedFilter, type SearchFilter } from './filter.js';
export type { ParallelInfo, SaveOptions, UpdateOptions } from './platform.js';
export type { TuneOptions, TuneReport, TuneTrial } from './tune.js';
export type { BuildOptions, BuildPhase } from './build.js';
export type { RowPlace } from './rows.js';
export { ZGQCollection, type CollectionDocument, type CollectionHit, type CollectionRecord, type CollectionStats, type CollectionUpdateOptions, type QueryOptions } from './collection.js';
export type { DocId } from './docs.js';
export type { Metadata, MetadataValue, Where, WhereOperators, WhereScalar } from './where.js';


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
  /**
   * Where the batch runs: 'cpu' (default); 'gpu', the GPU through WebGPU (in Node, the optional
   * package `webgpu`), a software adapter included; 'auto', a hardware GPU for batches of 256 or
   * more. On the GPU the zones are scanned with exact distances (nProbe sets the recall; the scan
   * traversals scan every row); what it cannot take (filters, k > 128, a sharded index, no GPU)
   * runs on the CPU, and `stats().device` says which ran and why.
   */
  device?: Device;
}

/**
 * The recall@10 an untuned index's search defaults are calibrated to reach at build on a sample of
 * its own vectors (see calibrateSearch): 0.96 there, so that queries from outside the index,
 * which the sample stands in for, reach 0.95.
 */
const CALIBRATED_RECALL = 0.96;
/** Indexes smaller than this keep the static defaults: too few vectors to measure recall on. */
const CALIBRATE_MIN = 100;

/** Copies of a container's optional sections (the index reads none of its own: see ZGQIndex.carry). */
function carriedOf(decoded: DecodedContainer): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [tag, bytes] of decoded.sections) if (isOptionalTag(tag)) out.set(tag, bytes.slice());
  return out;
}

/** Options of add: progress of linking the new vectors, and threads as for build. */
export interface AddOptions {
  /** Fraction of the new vectors linked into the graph, in [0, 1]. */
  onProgress?: (fraction: number) => void;
  /** Threads that link the new vectors (worker threads). Default: the CPUs available. */
  threads?: number;
  /** Stops the add at its next step with ZGQError 'ABORTED'; the index stays as it was (see BuildOptions.signal). */
  signal?: AbortSignal;
}

/** Options of load. */
export interface LoadOptions {
  /**
   * Where the re-ranking rows (the stored vectors, most of an index's bytes) live:
   * - 'memory' (default): in the index's WebAssembly memory with the rest; every operation.
   * - 'heap': in JS memory beside it, outside the 4 GiB of one WebAssembly memory; searches only.
   * - 'file': left in the file and read for each re-rank (Node; {@link ZGQIndex.open}); searches only.
   * Outside memory, searches walk the graph on PQ codes (traversal 'pq') and copy in the rows of
   * each query's candidates; batches run on the calling thread.
   */
  rows?: RowPlace;
}

/** Options of compact. */
export interface CompactOptions {
  /** Stops the compaction at its next step with ZGQError 'ABORTED'; the index stays as it was. */
  signal?: AbortSignal;
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
  /**
   * WebAssembly memories the index lies in: 1 for every index that fits one (4 GiB); an index too
   * large for one is split into shards over nearby vectors, searched through a router (see the README).
   */
  shards: number;
  /** Where the re-ranking rows live (LoadOptions.rows); memory.vectors counts them only in 'memory' and 'heap'. */
  rows: RowPlace;
  memory: MemoryStats;
  /** Where parallel build and batch search run here (in a browser: one thread unless cross-origin isolated). */
  parallel: ParallelInfo;
  /**
   * Where the last work that can run on the GPU ran (a searchBatch, or a build's zone assignment and
   * graph candidates: their `device` option) and, when the GPU was asked for and it ran on the CPU,
   * why; null before any.
   */
  device: DeviceUse | null;
}

/** Frees an index's rows on the GPU once the index is collected (the garbage collector does not see GPU memory). */
const gpuRows = new FinalizationRegistry<GpuResident>((resident) => resident.release());

/** A build, add or compact that was called and has not finished. */
class PendingMutation {
  /** Ids removed by calls made while it was pending, to remove again once it is done. */
  readonly removeAfter = new Set<number>();
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
  /** The index, when it is one shard (every index that fits one WebAssembly memory). */
  private built: Built | null = null;
  /** Where the last batch or build's zone assignment ran (their `device`), and why not on the GPU when asked (stats().device). */
  private deviceUse: DeviceUse | null = null;
  /** The index's rows on the GPU between batches (freed by close(), or when the index is collected). */
  private readonly gpu = new GpuResident();
  /** The index, when it is several shards (src/shards.ts); null otherwise. */
  private shards: Shards | null = null;
  /** The query of a sharded search, checked and prepared once for all its shards. */
  private shardQuery: Float32Array | null = null;
  private batchQueue: Promise<void> = Promise.resolve();
  /** build, add and compact run one at a time, in the order called, each on the index the previous one left. */
  private mutations: Promise<void> = Promise.resolve();
  /** Mutations called and not finished, oldest first. */
  private readonly pending: PendingMutation[] = [];
  /** remove() calls so far: a batch that sees this change while it runs checks its rows again. */
  private removals = 0;
  /** Vectors added before the index was trained (see src/staging.ts), or null. */
  private staged: StagedRows | null = null;
  /** Ids removed while an add or compact runs: removed again from its result. */
  private removedDuring: number[] | null = null;
  /** The last per-call search options seen, as given (fields copied) and resolved. */
  private lastOptions: ({ given: SearchOptions; defaults: ResolvedSearchOptions; resolved: ResolvedSearchOptions } & SearchOptions) | null = null;

  /** Search options the caller fixed; the others may follow the zone count at build. */
  private readonly fixedSearch: SearchOptions;
  /** Where the re-ranking rows live: outside 'memory', the index serves searches only. */
  private rowPlace: RowPlace = 'memory';
  /** The file an opened index reads its rows from, or null. */
  private openedFile: { close(): void } | null = null;
  /**
   * @internal Sections a layer over the index (ZGQCollection) keeps in the index's file, optional
   * ones (lowercase tags): written by save, update and toBytes after the index's own.
   */
  carry: (() => Section[]) | null = null;
  /** @internal Copies of the optional sections of the file or bytes the index was read from, which the index itself does not read. */
  carriedIn: ReadonlyMap<string, Uint8Array> = new Map();

  constructor(options: ZGQOptions) {
    this.options = resolveOptions(options);
    this.fixedSearch = { ...options.search };
    gpuRows.register(this, this.gpu);
  }

  get dim(): number {
    return this.options.dim;
  }

  /** Number of vectors searches can return (0 before build; removed vectors do not count). */
  get size(): number {
    return this.built ? this.built.removed.live : this.shards ? this.shards.live : (this.staged?.n ?? 0);
  }

  /** Whether the index is trained (built, loaded, or trained on what add staged). */
  private get trained(): boolean {
    return this.built !== null || this.shards !== null;
  }

  /** The index's shards: the one index, or each shard of a sharded one. */
  private partsOf(): Built[] {
    if (this.shards) return this.shards.parts;
    return [this.requireBuilt()];
  }

  /** Replace shard `part` with `next` (zones unchanged: the router stays as it is). */
  private setPart(part: number, next: Built): void {
    if (this.shards) this.shards.parts[part] = next;
    else this.built = next;
  }

  /**
   * Build the index over `vectors`: a Float32Array[n * dim], row-major (used as it is), or a
   * Float64Array, or an array of n rows (number[] or typed arrays of dim values), converted to
   * float32 once (a copy, 4 bytes per value). Replaces any previous content only once the new index
   * is complete.
   */
  async build(input: Vectors, options: BuildOptions = {}): Promise<void> {
    this.writable('build');
    const { dim, metric } = this.options;
    const vectors = flatRows(input, dim, 'vectors');
    if (vectors.length === 0) throw new ZGQError('EMPTY_INPUT', 'cannot build an index from 0 vectors');
    if (vectors.length % dim !== 0) {
      throw new ZGQError('DIMENSION_MISMATCH', `vectors has ${vectors.length} values, not a multiple of dim ${dim}`);
    }
    const n = vectors.length / dim;
    if (n >= 0x7fffffff) throw new ZGQError('INVALID_ARGUMENT', `at most 2^31 - 1 vectors per index; got ${n}`);
    checkFinite(vectors, dim, 'vector');
    const ids = resolveIds(options.ids, n);
    checkThreads(options.threads);
    checkDevice(options.device);
    if (options.shards !== undefined && (!Number.isInteger(options.shards) || options.shards < 1 || options.shards > MAX_SHARDS || options.shards > Math.max(1, n >> 1))) {
      throw new ZGQError('INVALID_ARGUMENT', `shards must be an integer in [1, ${Math.min(MAX_SHARDS, Math.max(1, n >> 1))}] for ${n} vectors; got ${describeValue(options.shards)}`);
    }
    const x = metric === 'cosine' ? normalizedCopy(vectors, dim) : vectors;
    // after the mutations called before it; what was staged is replaced with the rest
    const target = options.targetRecall === undefined ? undefined : checkRecall('targetRecall', options.targetRecall);
    const onProgress = options.onProgress;
    await this.enqueue(ids, async () => {
      // 'done' once the search defaults are set too
      await this.train(x, ids, { ...options, onProgress: onProgress && ((phase, f) => phase !== 'done' && onProgress(phase, f)) });
      this.staged = null;
      // the search defaults: tuned for targetRecall, else calibrated
      const tuning = { recall: target ?? CALIBRATED_RECALL, signal: options.signal, onProgress: (f: number) => onProgress?.('tune', f) };
      const calibrate = target === undefined && this.fixedSearch.ef === undefined && this.fixedSearch.traversal === undefined;
      if (this.size >= CALIBRATE_MIN && (target !== undefined || calibrate)) {
        onProgress?.('tune', 0);
        if (target !== undefined) this.options.search = (await tuneSearch(this.tuneTarget(), tuning)).search;
        else this.options.search = await calibrateSearch(this.tuneTarget(), tuning);
        onProgress?.('tune', 1);
      }
      onProgress?.('done', 1);
    }, options.signal, 'build');
  }

  /**
   * Find the fastest search options that reach recall@k `recall` on a sample of the index's own
   * vectors, each held out of its own results, against an exact scan of the stored rows; make them
   * the index's search defaults (saved with it, used by every search that does not set them); and
   * return what was measured. Tries the graph walk on PQ codes and on exact distances at growing
   * beam widths, and the full scan (src/tune.ts). Takes about a second at 100K x 128.
   * @throws ZGQError('INVALID_ARGUMENT') for a recall outside (0, 1] or a bad k or query count;
   * 'EMPTY_INPUT' for an index of fewer than k + 2 vectors; 'NOT_BUILT' before build.
   */
  async tune(options: TuneOptions): Promise<TuneReport> {
    this.writable('tune');
    const parts = [...this.partsOf()];
    const report = await tuneSearch(this.tuneTarget(), options);
    const now = this.partsOf();
    if (now.length !== parts.length || now.some((part, p) => part !== parts[p])) throw new ZGQError('CONFLICT', 'the index changed (build, add or compact) while tune ran; tune it again');
    this.options.search = report.search;
    return report;
  }

  /**
   * Train zones and codebooks on `x` (n rows, unit length under cosine) and build the graph
   * (src/build.ts); the new index replaces the current one once complete.
   */
  private async train(x: Float32Array, ids: Uint32Array, options: BuildOptions): Promise<void> {
    const shards = Math.max(shardCount(ids.length, this.options, platform.threads(options.threads)), options.shards ?? 1);
    if (shards > 1) {
      const built = await buildShards(x, ids, this.options, this.fixedSearch, options, shards);
      this.shards = built.shards;
      this.built = null;
      this.options.search = built.search;
      if (built.device) this.deviceUse = built.device;
    } else {
      const { built, search, device } = await buildIndex(new InputRows(x, this.options.dim), ids, this.options, this.fixedSearch, options);
      this.built = built;
      this.shards = null;
      this.options.search = search;
      if (device) this.deviceUse = device;
    }
    options.onProgress?.('done', 1);
  }

  /**
   * The k nearest indexed vectors to `query`, nearest first. When fewer than k exist (k larger
   * than the index), the remaining slots hold NO_ID and Infinity.
   */
  search(query: Float32Array | ArrayLike<number>, k: number, options?: SearchOptions): SearchResult {
    checkK(k);
    const built = this.built;
    if (this.shards && k > 0) {
      const q = (this.shardQuery ??= new Float32Array(this.options.dim));
      this.writeQuery(query, q);
      const result = { ids: new Uint32Array(k), distances: new Float32Array(k) };
      this.shards.search(q, k, this.resolveCached(options), options?.filter, this.options.seed, this.options.metric, result.ids, result.distances);
      return result;
    }
    if (!built || k === 0) {
      // not trained yet (or nothing asked for): an exact scan of the staged vectors
      const q = new Float32Array(this.options.dim);
      this.writeQuery(query, q);
      const ids = new Uint32Array(k);
      const distances = new Float32Array(k);
      this.staged ? this.staged.search(q, k, this.options.metric, options?.filter, ids, distances, 0) : (ids.fill(NO_ID), distances.fill(Infinity));
      return { ids, distances };
    }
    const ids = new Uint32Array(k).fill(NO_ID);
    const distances = new Float32Array(k).fill(Infinity);
    searchOne(built, k, this.resolveCached(options), options?.filter, this.options.seed, this.options.metric, (q) => this.writeQuery(query, q), ids, distances);
    return { ids, distances };
  }

  /**
   * Search nq queries (Float32Array[nq * dim], row-major). Returns flat arrays of nq * k slots,
   * row q at [q * k, (q + 1) * k).
   */
  async searchBatch(input: Vectors, k: number, options?: BatchSearchOptions): Promise<BatchSearchResult> {
    checkK(k);
    const threads = options?.threads;
    checkThreads(threads);
    const dim = this.options.dim;
    const queries = flatRows(input, dim, 'queries');
    if (queries.length % dim !== 0) {
      throw new ZGQError('DIMENSION_MISMATCH', `queries has ${queries.length} values, not a multiple of the index dim ${dim}`);
    }
    const nq = queries.length / dim;
    const invalid = options?.invalidQueries ?? 'throw';
    if (invalid !== 'throw' && invalid !== 'skip') {
      throw new ZGQError('INVALID_ARGUMENT', `invalidQueries must be 'throw' or 'skip'; got ${describeValue(invalid)}`);
    }
    const device = checkDevice(options?.device);
    const opts = this.servable(resolveSearch(options, this.options.search));
    if (invalid === 'skip') {
      const { rows, from, errors } = searchableRows(queries, dim, this.options.metric === 'cosine');
      if (errors.length === 0) return this.searchBatch(queries, k, { ...options, invalidQueries: 'throw' });
      const ids = new Uint32Array(nq * k).fill(NO_ID);
      const distances = new Float32Array(nq * k).fill(Infinity);
      if (from.length === 0) {
        this.deviceUse = { op: 'searchBatch', ran: 'cpu', adapter: null, reason: device === 'cpu' ? null : 'no query could be searched' };
        return { ids, distances, nq, k, errors };
      }
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
    if (!this.trained || k === 0) {
      this.deviceUse = { op: 'searchBatch', ran: 'cpu', adapter: null, reason: device === 'cpu' ? null : !this.trained ? 'the index is not trained yet (an exact scan of the staged vectors)' : 'k = 0' };
      const ids = new Uint32Array(nq * k).fill(NO_ID);
      const distances = new Float32Array(nq * k).fill(Infinity);
      if (this.staged) for (let q = 0; q < nq; q++) this.staged.search(rows.subarray(q * dim, (q + 1) * dim), k, this.options.metric, filter, ids, distances, q * k);
      return { ids, distances, nq, k, errors: [] };
    }
    // batches share the index's batch buffers and worker contexts: one batch at a time
    const pacer = new Pacer(options?.signal, 'searchBatch');
    const removalsBefore = this.removals;
    const run = this.batchQueue.then(() => this.runBatchOn(rows, nq, k, opts, threads, filter, pacer, device));
    this.batchQueue = run.then(() => undefined, () => undefined);
    const { ids, distances } = await run;
    // removals made while the batch gave the event loop its turns: rows that hold a removed id are
    // searched again, so no id removed before the batch returns comes back in it
    if (this.removals !== removalsBefore) {
      for (let q = 0; q < nq; q++) {
        const row = ids.subarray(q * k, (q + 1) * k);
        if (row.every((id) => id === NO_ID || this.has(id))) continue;
        const again = this.search(queries.subarray(q * dim, (q + 1) * dim), k, options);
        row.set(again.ids);
        distances.set(again.distances, q * k);
      }
    }
    return { ids, distances, nq, k, errors: [] };
  }

  /**
   * A validated batch (rows prepared) on the index's one shard, or routed to its shards and merged:
   * caller ids and reported distances.
   */
  private async runBatchOn(
    rows: Float32Array, nq: number, k: number, opts: ResolvedSearchOptions, threads: number | undefined, filter: SearchFilter | undefined, pacer: Pacer,
    device: Device,
  ): Promise<{ ids: Uint32Array; distances: Float32Array }> {
    const { metric, seed } = this.options;
    this.deviceUse = device === 'cpu' ? { op: 'searchBatch', ran: 'cpu', adapter: null, reason: null } : null;
    if (this.shards) {
      this.deviceUse ??= { op: 'searchBatch', ran: 'cpu', adapter: null, reason: 'a sharded index searches on the CPU' };
      return this.shards.searchBatch(rows, nq, k, opts, threads, filter, seed, metric, pacer);
    }
    const built = this.requireBuilt();
    if (device !== 'cpu') {
      const gpu = await gpuBatch(built, this.gpu, rows, nq, k, opts, filter !== undefined, device, pacer);
      if ('ids' in gpu) {
        this.deviceUse = { op: 'searchBatch', ran: 'gpu', adapter: gpu.adapter, reason: null };
        callerResults(built, gpu.ids, gpu.distances, metric);
        return gpu;
      }
      this.deviceUse = { op: 'searchBatch', ran: 'cpu', adapter: gpu.adapter, reason: gpu.reason };
    }
    const result = await runBatch(built, rows, nq, k, opts, threads, scopeFor(built, filter, opts, k, 'batchBits', seed), pacer);
    callerResults(built, result.ids, result.distances, metric);
    return result;
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
    this.writable('save');
    const key = platform.fileKey(path);
    const snapshot = await this.snapshot();
    await platform.withLock(path, options.wait, (lease) => this.writeHeld(path, key, snapshot, lease));
  }

  /**
   * Header and sections as they are now, copied: removals and in-place adds may change the index
   * while a file is written, and the sections are views of its memory.
   */
  private async snapshot(): Promise<{ meta: Record<string, unknown>; sections: ReturnType<typeof toSections>['sections'] }> {
    // what was called before the save is in it, awaited or not (a failed call changed nothing);
    // with nothing pending the snapshot is taken at once, before later calls change the index
    if (this.pending.length) await this.mutations;
    // vectors staged before training: trained on them now, so that what is saved can be searched
    if (!this.trained && this.staged?.n) await this.trainStaged();
    // a sharded index's sections are its shards' containers, encoded: copies already
    if (this.shards) return this.containerParts();
    const { meta, sections } = this.containerParts();
    return { meta, sections: sections.map((s) => ({ tag: s.tag, bytes: s.bytes.slice() })) };
  }

  /** Header and sections of the index's container: views of its memory for one shard, the shards' encoded containers for several. */
  private containerParts(): { meta: Record<string, unknown>; sections: Section[] } {
    if (!this.carry && this.carriedIn.size) {
      // a collection's file changed as a plain index: its documents would be lost, or disagree with it
      const tags = [...this.carriedIn.keys()].map((t) => `'${t}'`).join(', ');
      throw new ZGQError(
        'INVALID_ARGUMENT',
        this.carriedIn.has('docs')
          ? "this index was read from a collection's file (section 'docs'): writing it as a plain index would drop the documents; change it with ZGQCollection or zgq collection"
          : `this index was read from a file that also holds ${tags}, which this zgq does not write: writing it would drop them`,
      );
    }
    const parts = this.partsOf().map((part) => toSections(part.kernels, part.layout, part.ids, part.removed.bits, tailOf(part), this.options));
    const carried = this.carry?.() ?? [];
    if (!this.shards) return { meta: parts[0].meta as unknown as Record<string, unknown>, sections: [...parts[0].sections, ...carried] };
    const container = shardedContainer(parts, this.options, platform.crc32);
    return { meta: container.meta, sections: [...container.sections, ...carried] };
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
   * With `options.rows` 'heap' or 'file' the index's re-ranking rows live outside its WebAssembly
   * memory and it serves searches only (see LoadOptions; 'file' is {@link ZGQIndex.open}).
   *
   * @throws ZGQError `INVALID_ARGUMENT` when `path` is not a non-empty string or the options are
   *   invalid; `IO` when it cannot be read; `CORRUPT_FILE` for damaged or foreign files;
   *   `UNSUPPORTED_VERSION` for files that need a newer zgq; `UNSUPPORTED_PLATFORM` for rows 'file'
   *   in a browser.
   */
  static async load(path: string, options: LoadOptions = {}): Promise<ZGQIndex> {
    if (options === null || typeof options !== 'object') throw new ZGQError('INVALID_ARGUMENT', `load options must be an object such as { rows: 'heap' }; got ${describe(options)}`);
    const rows = options.rows ?? 'memory';
    if (rows !== 'memory' && rows !== 'heap' && rows !== 'file') throw new ZGQError('INVALID_ARGUMENT', `rows must be 'memory', 'heap' or 'file'; got ${describeValue(rows)}`);
    const key = platform.fileKey(path);
    if (rows === 'file') {
      if (!platform.openIndex) throw new ZGQError('UNSUPPORTED_PLATFORM', `rows 'file' reads the index file for each search, which only Node can; in a browser load it with rows 'memory' or 'heap'`);
      const opened = await platform.openIndex(path);
      try {
        const index = ZGQIndex.fromDecoded(opened.container, path, (meta, _arrays, rowsAt) => opened.rows(rowsAt!, meta.n, rowBytesOf(meta)), opened.container);
        index.openedFile = opened;
        return index.servingOutside('file');
      } catch (e) {
        opened.close();
        throw e;
      }
    }
    const decoded = await platform.readIndex(path);
    const heap = rows === 'heap'
      ? (meta: IndexMeta, { vectors }: IndexArrays) => new HeapRows(new Uint8Array(vectors.buffer, vectors.byteOffset, vectors.byteLength), rowBytesOf(meta))
      : undefined;
    const index = ZGQIndex.fromDecoded(decoded, path, heap);
    index.fileStamps.set(key, decoded.stamp);
    return heap ? index.servingOutside('heap') : index;
  }

  /**
   * Serve searches from the index at `path` without loading its re-ranking rows (Node): everything
   * else is read and checked as `load` does, the rows stay in the file and each search reads the
   * rows of its candidates (a few dozen positional reads, the OS page cache as the cache), so the
   * process holds a fraction of the index and the first query comes sooner. The index is read-only
   * (add, remove, compact, build, tune and save fail with READ_ONLY), searches walk on PQ codes
   * (traversal 'pq'), batches run on the calling thread. Call `close()` when done. The rows'
   * checksum is not verified (that would read them all); `load` verifies it.
   */
  static open(path: string): Promise<ZGQIndex> {
    return ZGQIndex.load(path, { rows: 'file' });
  }

  /**
   * Release the file an index from {@link ZGQIndex.open} reads its rows from; its searches fail with
   * IO after. Does nothing for other indexes.
   */
  close(): void {
    this.openedFile?.close();
    this.openedFile = null;
    this.gpu.release();
  }

  /**
   * Mark the index as serving with its rows outside its memory: read-only, and search defaults of a
   * traversal that needs the rows in memory (the exact walk, the scans) become the PQ walk over the
   * same zones, its pool as large as what it re-ranks (k * rerank at k = 10, the k defaults are
   * calibrated for) so that re-ranking has its candidates.
   */
  private servingOutside(place: RowPlace): this {
    this.rowPlace = place;
    const s = this.options.search;
    if (s.traversal !== 'pq') this.options.search = { ...s, traversal: 'pq', ef: Math.max(s.ef, 10 * s.rerank) };
    return this;
  }

  /** `opts`, unless they name a traversal that needs the rows in memory while they live outside it. */
  private servable(opts: ResolvedSearchOptions): ResolvedSearchOptions {
    if (opts.traversal !== 'pq' && this.rowPlace !== 'memory') {
      throw new ZGQError('INVALID_ARGUMENT', `traversal '${opts.traversal}' reads the stored rows of every node it visits, and this index keeps them in ${this.rowPlace === 'file' ? 'its file' : 'JS memory'}: use traversal 'pq' (the default here)`);
    }
    return opts;
  }

  /** Refuse `what` when the rows live outside the index's memory. */
  private writable(what: string): void {
    if (this.rowPlace !== 'memory') throw rowsOutside(this.rowPlace, what);
  }

  /** @internal ZGQError READ_ONLY when the rows live outside the index's memory (for changes a layer over it makes alone). */
  checkWritable(what: string): void {
    this.writable(what);
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
    platform.fileKey(path);
    if (typeof fn !== 'function') throw new ZGQError('INVALID_ARGUMENT', `update: fn must be a function that changes the index; got ${describe(fn)}`);
    const fresh = options.create === undefined ? undefined : new ZGQIndex(options.create);
    return ZGQIndex.updateAs(path, options.wait, fresh, (index) => index, fn);
  }

  /**
   * @internal update for a layer over the index (ZGQCollection): under the path's writers' lock,
   * the file's index (or `fresh`, when there is no file) as `wrap` makes it, changed by fn and saved.
   */
  static async updateAs<T>(path: string, wait: number | undefined, fresh: ZGQIndex | undefined, wrap: (index: ZGQIndex) => T, fn: (layer: T) => void | Promise<void>): Promise<T> {
    const key = platform.fileKey(path);
    return platform.withLock(path, wait, async (lease) => {
      const index = fresh && (await platform.fileStamp(path)) === null ? fresh : await ZGQIndex.load(path);
      const layer = wrap(index);
      await fn(layer);
      await index.writeHeld(path, key, await index.snapshot(), lease);
      return layer;
    });
  }

  /**
   * The index in the file format of `save` (same header, sections and checksums), as one new
   * Uint8Array (a copy: later changes to the index do not show in it).
   */
  toBytes(): Uint8Array {
    this.writable('toBytes');
    const { meta, sections } = this.containerParts();
    return encodeContainer(meta, sections, platform.crc32);
  }

  /** @internal toBytes after the pending mutations, trained on what is staged as save is (ZGQCollection.toBytes). */
  async toBytesSettled(): Promise<Uint8Array> {
    this.writable('toBytes');
    const { meta, sections } = await this.snapshot();
    return encodeContainer(meta, sections, platform.crc32);
  }

  /**
   * @internal Each shard as an index file of its own (the bytes of `toBytes` for an index of one
   * shard), with its zone table and live vectors, after the pending mutations; and the search
   * defaults that decide which shards a search reaches (zgq/cluster publishes them).
   */
  async shardFiles(): Promise<{ shards: { bytes: Uint8Array; zones: ZoneTable; size: number }[]; routing: { nProbe: number; traversal: Traversal } }> {
    this.writable('publish');
    const { meta, sections } = await this.snapshot();
    const parts = this.partsOf();
    const { nProbe, traversal } = this.resolveCached(undefined);
    const routing = { nProbe, traversal };
    if (!this.shards) return { shards: [{ bytes: encodeContainer(meta, sections, platform.crc32), zones: zoneTableOf(parts[0]), size: parts[0].removed.live }], routing };
    const shards = parts.map((part, p) => ({ bytes: sections.find((s) => s.tag === shardTag(p))!.bytes, zones: zoneTableOf(part), size: part.removed.live }));
    return { shards, routing };
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

  /**
   * An index from a decoded container; `rowsOf` keeps each shard's rows outside its memory (rowsAt:
   * where they lie in the file, when `partly` left them there).
   */
  private static fromDecoded(
    decoded: DecodedContainer, name: string, rowsOf?: (meta: IndexMeta, arrays: IndexArrays, rowsAt: number | undefined) => RowStore, partly?: PartlyRead,
  ): ZGQIndex {
    const install = ({ meta, arrays, rowsAt }: { meta: IndexMeta; arrays: IndexArrays; rowsAt?: number }) =>
      installBuilt(meta, arrays, meta.n, rowsOf ? rowsOf(meta, arrays, rowsAt) : null);
    if (isSharded(decoded)) {
      const shards = fromShardedContainer(decoded, name, platform.crc32, partly);
      const index = new ZGQIndex(shards[0].meta.options);
      const parts = shards.map(install);
      index.shards = new Shards(parts, routerOver(parts));
      index.carriedIn = carriedOf(decoded);
      return index;
    }
    const shard = fromContainer(decoded, name, partly?.left);
    const index = new ZGQIndex(shard.meta.options);
    index.built = install(shard);
    index.carriedIn = carriedOf(decoded);
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
  async add(input: Vectors, ids: Uint32Array | ArrayLike<number>, options: AddOptions = {}): Promise<void> {
    this.writable('add');
    const { dim, metric } = this.options;
    const { vectors, ids: newIds, count } = addedRows(input, ids, dim);
    checkThreads(options.threads);
    if (count === 0) return;
    // a copy the caller cannot change while the add waits its turn (flatRows made one already for other inputs)
    const rows = metric === 'cosine' ? normalizedCopy(vectors, dim) : vectors === input ? vectors.slice() : vectors;
    const pacer = new Pacer(options.signal, 'add');
    await this.enqueue(newIds, async () => {
      if (!this.trained) {
        // not trained yet: staged, and trained on everything staged once there is enough
        const staged = this.staged ?? new StagedRows(dim);
        // trained on a copy: a failed or aborted training leaves the staged rows as they were
        const next = staged.n + count >= TRAIN_AT ? staged.clone() : staged;
        next.add(rows, newIds);
        if (next.n >= TRAIN_AT) {
          const all = next.take();
          await this.trainOnStaged(all.rows, all.ids, { threads: options.threads, signal: options.signal });
        } else {
          this.staged = next;
        }
        options.onProgress?.(1);
        return;
      }
      const shards = this.shards;
      if (!shards) {
        await this.addToPart(0, rows, newIds, options, pacer, (f) => options.onProgress?.(f));
        return;
      }
      // each vector joins the shard owning the zone nearest to it
      const target = new Uint8Array(count);
      for (let i = 0; i < count; i++) {
        shards.router.query().set(rows.subarray(i * dim, (i + 1) * dim));
        target[i] = shards.router.nearestShard();
      }
      let done = 0;
      for (let p = 0; p < shards.parts.length; p++) {
        const picked: number[] = [];
        for (let i = 0; i < count; i++) if (target[i] === p) picked.push(i);
        if (picked.length === 0) continue;
        const partRows = gatherRows(rows, dim, picked);
        const before = done;
        const partIds = Uint32Array.from(picked, (i) => newIds[i]);
        await this.addToPart(p, partRows, partIds, options, pacer, (f) => options.onProgress?.((before + f * picked.length) / count));
        // an id another shard held is replaced: removed there once the new vector is in (the shard
        // it joined replaced its own)
        shards.parts.forEach((other, o) => o !== p && removeIds(other, partIds));
        done += picked.length;
      }
    }, options.signal, 'add');
  }

  /** Add validated rows (unit length under cosine) under their ids to shard `part`: in place when they fit, else by laying it out afresh. */
  private addToPart(part: number, rows: Float32Array, newIds: Uint32Array, options: AddOptions, pacer: Pacer, progress: (fraction: number) => void): Promise<void> {
    const { dim } = this.options;
    const count = newIds.length;
    return this.relayoutOr(async (built) => {
      const lay = built.layout;
      const inPlace = count <= APPEND_MAX && lay.capacity - lay.n >= count && this.options.graph !== 'per-zone' && (!lay.halfStorage || fitsHalf(rows, dim));
      if (inPlace) {
        // no batch may read the graph while it changes; the append itself never yields
        await this.exclusive(() => appendNodes(built, rows, newIds, this.options));
        progress(1);
        return null;
      }
      const deleted = new Uint8Array((lay.n + 7) >> 3);
      const removedBits = built.removed.bits;
      if (removedBits) deleted.set(removedBits.subarray(0, deleted.length));
      const lookup = lookupOf(built);
      let replaced = 0;
      for (let i = 0; i < count; i++) {
        const node = lookup.find(newIds[i]);
        if (node >= 0) {
          setBit(deleted, node);
          replaced++;
        }
      }
      const live = built.removed.live;
      checkRelayoutBudget(lay, live + count, built.removed.count + replaced > 0, this.options, options.threads, `adding ${count} vectors to an index of ${live}`);
      return relayout(metaOf(lay, this.options, lay.n - built.zoned), viewArrays(built.kernels, lay, built.ids, deleted, tailOf(built)), {
        vectors: rows, ids: newIds, workers: (kernels) => buildWorkers(kernels, options.threads), pace: () => pacer.step(),
        onProgress: (fraction) => {
          throwIfAborted(options.signal, 'add');
          progress(fraction);
        },
      });
    }, options.signal, 'add', part);
  }

  /**
   * Train on a copy of the staged rows; ids removed meanwhile (from the staged rows, which searches
   * still use) are removed from the trained index before it replaces them.
   */
  private async trainOnStaged(rows: Float32Array, ids: Uint32Array, options: BuildOptions): Promise<void> {
    this.removedDuring = [];
    try {
      await this.train(rows, ids, options);
      if (this.removedDuring.length) for (const part of this.partsOf()) removeIds(part, this.removedDuring);
      this.staged = null;
    } finally {
      this.removedDuring = null;
    }
  }

  /** Train on the staged vectors now, after the mutations called before (nothing when trained or empty by then). */
  private trainStaged(): Promise<void> {
    return this.enqueue(null, async () => {
      if (this.trained || !this.staged?.n) return;
      const all = this.staged.take();
      await this.trainOnStaged(all.rows, all.ids, {});
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
    this.writable('remove');
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
        if (!last || last.removeAfter.has(id)) continue;
        last.removeAfter.add(id);
        if (!this.has(id)) pendingOnly++;
      }
    }
    if (this.removedDuring) for (let i = 0; i < ids.length; i++) this.removedDuring.push(ids[i]);
    this.removals++;
    if (!this.trained) return (this.staged?.remove(ids) ?? 0) + pendingOnly;
    let removed = pendingOnly;
    for (const part of this.partsOf()) removed += removeIds(part, ids);
    return removed;
  }

  /**
   * Resolve a filter (Set, array of ids or predicate) against the index once, for many searches:
   * each search then copies a bitmap (n / 8 bytes) instead of looking up every id. Removals made
   * later still apply; after add() or compact(), prepare it again (until then it is resolved anew
   * on every use).
   */
  prepareFilter(filter: Exclude<SearchFilter, PreparedFilter>): PreparedFilter {
    const built = this.built;
    // not trained yet, or sharded (a bitmap per shard): resolved from its source on each use
    if (!built) return new PreparedFilter(filter, {}, new Uint8Array(0));
    const bits = new Uint8Array((built.layout.n + 7) >> 3);
    compileFilter(filter, targetOf(built, null), bits);
    return new PreparedFilter(filter, built.version, bits);
  }

  /**
   * The stored vector of `id` (a new Float32Array), or undefined when the index does not hold it.
   * It is the vector as stored: unit length under 'cosine', and rounded to binary16 under float16
   * storage (within 2^-11 of its length, see the README).
   */
  get(id: number): Float32Array | undefined {
    if (!Number.isInteger(id) || !this.has(id)) return undefined;
    if (!this.trained) return this.staged?.row(id);
    const { part, node } = this.locate(id)!;
    return storedRow(part, node);
  }

  /** Whether `id` is in the index (added and not removed). */
  has(id: number): boolean {
    if (!Number.isInteger(id)) return false;
    if (!this.trained) return this.staged?.has(id) ?? false;
    const at = this.locate(id);
    return at !== null && !at.part.removed.has(at.node);
  }

  /** The shard and node of caller id `id` (removed or not), or null. */
  private locate(id: number): { part: Built; node: number } | null {
    if (this.shards) return this.shards.find(id);
    const built = this.requireBuilt();
    const node = lookupOf(built).find(id);
    return node >= 0 ? { part: built, node } : null;
  }

  /**
   * Drop removed vectors for good: every vector that linked to one is relinked to their
   * neighbours (robust prune), then the index is laid out afresh without them. add() does the same
   * on the way. Searches run on the previous index meanwhile. With every vector removed there is
   * nothing to keep, and the index stays as it is.
   */
  async compact(options: CompactOptions = {}): Promise<void> {
    this.writable('compact');
    const pacer = new Pacer(options.signal, 'compact');
    const compactPart = (built: Built) => {
      if (built.removed.count === 0 || built.removed.live === 0) return null;
      const lay = built.layout;
      checkRelayoutBudget(lay, built.removed.live, true, this.options, 1, `compacting an index of ${built.removed.live} vectors`);
      return relayout(metaOf(lay, this.options, lay.n - built.zoned), viewArrays(built.kernels, lay, built.ids, built.removed.bits, tailOf(built)), {
        vectors: new Float32Array(0), ids: new Uint32Array(0), pace: () => pacer.step(),
      });
    };
    // shard by shard: each is laid out afresh on its own (a sharded index's shards share nothing)
    await this.enqueue(null, async () => {
      for (let p = 0; p < this.partsOf().length; p++) await this.relayoutOr(async (built) => compactPart(built), options.signal, 'compact', p);
    }, options.signal, 'compact', false);
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
        if (!this.trained && !untrained) return;
        await run();
        if (op.removeAfter.size) {
          const ids = [...op.removeAfter];
          if (this.trained) for (const part of this.partsOf()) removeIds(part, ids);
          else this.staged?.remove(ids);
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
    change: (built: Built) => Promise<{ meta: IndexMeta; arrays: IndexArrays } | null>, signal: AbortSignal | undefined, what: string, part = 0,
  ): Promise<void> {
    const built = this.partsOf()[part];
    this.removedDuring = [];
    try {
      const result = await change(built);
      if (!result) return;
      // the last moment an abort can still leave the index as it was
      throwIfAborted(signal, what);
      // changed indexes keep room to grow in place
      const next = installBuilt(result.meta, result.arrays, result.meta.n + headroom(result.meta.n));
      if (this.removedDuring.length) removeIds(next, this.removedDuring);
      this.setPart(part, next);
      this.options.storage = result.meta.storage;
    } finally {
      this.removedDuring = null;
    }
  }

  /** Zone count and sizes, graph degree, and memory bytes per component. */
  stats(): IndexStats {
    const parts = this.partsOf();
    const first = parts[0].layout;
    let n = 0;
    let zoned = 0;
    let capacity = 0;
    let zones = 0;
    let groups = 0;
    let edges = 0;
    let live = 0;
    let deleted = 0;
    const sizes = { min: Infinity, max: 0, mean: 0 };
    let memory: MemoryStats | null = null;
    for (const b of parts) {
      const lay = b.layout;
      for (let z = 0; z < lay.nZones; z++) {
        const s = b.zoneStart[z + 1] - b.zoneStart[z];
        sizes.min = Math.min(sizes.min, s);
        sizes.max = Math.max(sizes.max, s);
      }
      const adjacency = b.kernels.arena.u32(lay.adjacencyPtr, lay.n * (lay.degree + 1));
      for (let i = 0; i < lay.n; i++) edges += adjacency[i * (lay.degree + 1)];
      n += lay.n;
      zoned += b.zoned;
      capacity += lay.capacity;
      zones += lay.nZones;
      groups += lay.nGroups;
      live += b.removed.live;
      deleted += b.removed.count;
      const bytes = memoryStats(b);
      if (!memory) memory = bytes;
      else for (const key of Object.keys(bytes) as (keyof MemoryStats)[]) memory[key] += bytes[key];
    }
    sizes.mean = n / zones;
    if (this.shards) {
      memory!.zones += this.shards.router.bytes;
      memory!.total += this.shards.router.bytes;
    }
    return {
      size: live, deleted, appended: n - zoned, capacity, dim: first.dim, metric: this.options.metric, zones, zoneGroups: groups, zoneSizes: sizes,
      pqSubspaces: first.m, residual: first.residual, storage: first.halfStorage ? 'float16' : 'float32', degree: first.degree, meanDegree: edges / n, memory: memory!,
      shards: parts.length, rows: this.rowPlace, parallel: platform.parallel(), device: this.deviceUse,
    };
  }

  /** The index as src/tune.ts sees it: its defaults, and searches of stored vectors kept out of their own walks. */
  private tuneTarget(): TuneTarget {
    const dim = this.options.dim;
    const parts = [...this.partsOf()];
    return {
      size: this.size,
      seed: this.options.seed,
      defaults: this.options.search,
      sample: (count, seed) => {
        // live nodes of every shard, numbered shard after shard
        const live = parts.map((part) => {
          const { n } = part.layout;
          if (part.removed.count === 0) return null;
          const list = new Uint32Array(part.removed.live);
          listAllowed(part.removed.liveView(n)!, n, list);
          return list;
        });
        const sizes = parts.map((part, p) => live[p]?.length ?? part.layout.n);
        const picks = new Rng(seed).sample(sizes.reduce((a, b) => a + b, 0), count);
        const partOf = new Uint32Array(count);
        const nodes = Uint32Array.from(picks, (at, i) => {
          let p = 0;
          while (at >= sizes[p]) at -= sizes[p++];
          partOf[i] = p;
          return live[p]?.[at] ?? at;
        });
        const rows = new Float32Array(count * dim);
        nodes.forEach((node, i) => rows.set(storedRow(parts[partOf[i]], node), i * dim));
        return {
          ids: Uint32Array.from(nodes, (node, i) => parts[partOf[i]].ids[node]),
          search: (q, k, o) => {
            const searcher = parts[partOf[q]].searcher;
            searcher.skip = nodes[q] + 1;
            try {
              return this.search(rows.subarray(q * dim, (q + 1) * dim), k, o);
            } finally {
              searcher.skip = 0;
            }
          },
        };
      },
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
    const resolved = this.servable(resolveSearch(given, this.options.search));
    if (given !== undefined) {
      this.lastOptions = {
        given, defaults: this.options.search, resolved,
        ef: given.ef, nProbe: given.nProbe, rerank: given.rerank, scan: given.scan, scanRatio: given.scanRatio, traversal: given.traversal,
      };
    }
    return resolved;
  }

  /**
   * Check `source` as a query and write it into `q` (dim floats) as float32, unit length under
   * cosine. Values are checked as searched, in float32: a number[] or Float64Array 1e39 is Infinity
   * there, 1e-50 is 0.
   */
  private writeQuery(source: Float32Array | ArrayLike<number>, q: Float32Array): void {
    const dim = this.options.dim;
    if (source === null || typeof source !== 'object' || typeof (source as ArrayLike<number>).length !== 'number') {
      throw new ZGQError('INVALID_ARGUMENT', `query must be a Float32Array of dim values; got ${describe(source)}`);
    }
    if (source.length !== dim) throw new ZGQError('DIMENSION_MISMATCH', `query has ${source.length} values; the index dim is ${dim}`);
    const limit = valueLimit(dim);
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const v = source[j];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ZGQError('NOT_FINITE', `query has a non-finite value ${describeValue(v)} at position ${j}`);
      q[j] = v;
      if (!(q[j] <= limit && q[j] >= -limit)) throw outOfRange('query', v, j, dim);
      norm += q[j] * q[j];
    }
    if (this.options.metric === 'cosine') {
      if (norm === 0) throw new ZGQError('INVALID_ARGUMENT', 'query has zero length; cosine distance is undefined for it');
      const inv = 1 / Math.sqrt(norm);
      for (let j = 0; j < dim; j++) q[j] *= inv;
    }
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
}
