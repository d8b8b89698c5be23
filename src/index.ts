/**
 * ZGQ: Zonal Graph Quantization, an approximate-nearest-neighbour index.
 *
 * Vectors are flat row-major Float32Arrays everywhere: vector i of a set with dimension dim is
 * `x[i * dim + j]`, j < dim. Caller ids are uint32; internal node ids (zone-contiguous) never leave
 * the index.
 */
import { ZGQError } from './errors.js';
import { Pacer, throwIfAborted } from './pace.js';
import { fitsHalf, fromContainer, type IndexMeta, metaOf, toSections, valueLimit } from './persist.js';
import { type IndexArrays, viewArrays } from './layout.js';
import { NO_ID, setBit } from './ids.js';
import { cameShort, compileFilter, listAllowed, PreparedFilter, type SearchFilter } from './filter.js';
import { relayout } from './mutate.js';
import { StagedRows, TRAIN_AT } from './staging.js';
import { decodeContainer, type DecodedContainer, encodeContainer } from './format.js';
import { type ParallelInfo, platform, type SaveOptions, type UpdateOptions, type WriteLease } from './platform.js';
import { type Metric, type ResolvedOptions, type ResolvedSearchOptions, resolveOptions, resolveSearch, scansEveryVector, type SearchOptions, type VectorStorage, type ZGQOptions } from './options.js';
import { checkFinite, checkK, checkThreads, describe, describeValue, flatRows, type Vectors, normalizedCopy, resolveIds, searchableRows, outOfRange } from './validate.js';
import { APPEND_MAX, appendNodes, storedRow, buildWorkers, type Built, checkRelayoutBudget, headroom, installBuilt, lookupOf, memoryStats, type MemoryStats, removeIds, tailOf, targetOf } from './built.js';
import { runBatch } from './batch.js';
import { listedScope, scopeFor, type SearchScope, UNRESTRICTED } from './scope.js';
import { searchFast } from './fastscan.js';
import { buildIndex, type BuildOptions } from './build.js';
import { calibrateSearch, checkRecall, tuneSearch, type TuneOptions, type TuneReport, type TuneTarget } from './tune.js';
import { Rng } from './random.js';

export { ZGQError, type ZGQErrorCode } from './errors.js';
export { NO_ID } from './ids.js';
export type { Vectors } from './validate.js';
export type { MemoryStats } from './built.js';
export type { GraphShape, Metric, SearchOptions, Traversal, VectorStorage, ZGQOptions } from './options.js';
export { PreparedFilter, type SearchFilter } from './filter.js';
export type { ParallelInfo, SaveOptions, UpdateOptions } from './platform.js';
export type { TuneOptions, TuneReport, TuneTrial } from './tune.js';
export type { BuildOptions, BuildPhase } from './build.js';


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

/**
 * The recall@10 an untuned index's search defaults are calibrated to reach at build on a sample of
 * its own vectors (see calibrateSearch): 0.96 there, so that queries from outside the index,
 * which the sample stands in for, reach 0.95.
 */
const CALIBRATED_RECALL = 0.96;
/** Indexes smaller than this keep the static defaults: too few vectors to measure recall on. */
const CALIBRATE_MIN = 100;

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
  private built: Built | null = null;
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

  constructor(options: ZGQOptions) {
    this.options = resolveOptions(options);
    this.fixedSearch = { ...options.search };
  }

  get dim(): number {
    return this.options.dim;
  }

  /** Number of vectors searches can return (0 before build; removed vectors do not count). */
  get size(): number {
    return this.built ? this.built.removed.live : (this.staged?.n ?? 0);
  }

  /**
   * Build the index over `vectors`: a Float32Array[n * dim], row-major (used as it is), or a
   * Float64Array, or an array of n rows (number[] or typed arrays of dim values), converted to
   * float32 once (a copy, 4 bytes per value). Replaces any previous content only once the new index
   * is complete.
   */
  async build(input: Vectors, options: BuildOptions = {}): Promise<void> {
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
        if (target !== undefined) this.options.search = (await tuneSearch(this.tuneTarget(this.built!), tuning)).search;
        else this.options.search = await calibrateSearch(this.tuneTarget(this.built!), tuning);
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
    const built = this.requireBuilt();
    const report = await tuneSearch(this.tuneTarget(built), options);
    if (this.built !== built) throw new ZGQError('CONFLICT', 'the index changed (build, add or compact) while tune ran; tune it again');
    this.options.search = report.search;
    return report;
  }

  /**
   * Train zones and codebooks on `x` (n rows, unit length under cosine) and build the graph
   * (src/build.ts); the new index replaces the current one once complete.
   */
  private async train(x: Float32Array, ids: Uint32Array, options: BuildOptions): Promise<void> {
    const { built, search } = await buildIndex(x, ids, this.options, this.fixedSearch, options);
    this.built = built;
    this.options.search = search;
    options.onProgress?.('done', 1);
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
      const q = new Float32Array(this.options.dim);
      this.writeQuery(query, q);
      const ids = new Uint32Array(k);
      const distances = new Float32Array(k);
      this.staged ? this.staged.search(q, k, this.options.metric, options?.filter, ids, distances, 0) : (ids.fill(NO_ID), distances.fill(Infinity));
      return { ids, distances };
    }
    const opts = this.resolveCached(options);
    const ids = new Uint32Array(k).fill(NO_ID);
    const distances = new Float32Array(k).fill(Infinity);
    const filter = options?.filter;
    const scope = filter === undefined && built.removed.count === 0 && !scansEveryVector(opts.traversal)
      ? UNRESTRICTED
      : scopeFor(built, filter, opts, k, 'searchBits', this.options.seed);
    const searchOpts = scope === UNRESTRICTED || scope.ef === opts.ef ? opts : { ...opts, ef: scope.ef };
    this.writeQuery(query, built.searcher.queryBuffer(k, searchOpts));
    this.runScope(built, k, searchOpts, ids, distances, scope);
    // a filtered walk that gave up or ran out of graph: the allowed nodes are scanned instead (the
    // query is still in the buffer)
    if (scope.allow && !scope.exact && !scope.all && !scope.fast && cameShort(ids, 0, k, scope.allowed)) this.runScope(built, k, searchOpts, ids, distances, listedScope(built, scope, 'list'));
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
    const removalsBefore = this.removals;
    const run = this.batchQueue.then(() => runBatch(built, rows, nq, k, opts, threads, scopeFor(built, filter, opts, k, 'batchBits', this.options.seed), pacer));
    this.batchQueue = run.then(() => undefined, () => undefined);
    const { ids, distances } = await run;
    const callerIds = built.ids;
    const metric = this.options.metric;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] === NO_ID) continue;
      ids[i] = callerIds[ids[i]];
      distances[i] = reportedDistance(metric, distances[i]);
    }
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
    // what was called before the save is in it, awaited or not (a failed call changed nothing);
    // with nothing pending the snapshot is taken at once, before later calls change the index
    if (this.pending.length) await this.mutations;
    // vectors staged before training: trained on them now, so that what is saved can be searched
    if (!this.built && this.staged?.n) await this.trainStaged();
    const built = this.requireBuilt();
    const { meta, sections } = toSections(built.kernels, built.layout, built.ids, built.removed.bits, tailOf(built), this.options);
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
    const { meta, sections } = toSections(built.kernels, built.layout, built.ids, built.removed.bits, tailOf(built), this.options);
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
  async add(input: Vectors, ids: Uint32Array | ArrayLike<number>, options: AddOptions = {}): Promise<void> {
    const { dim, metric } = this.options;
    const vectors = flatRows(input, dim, 'vectors');
    if (vectors.length % dim !== 0) {
      throw new ZGQError('DIMENSION_MISMATCH', `vectors has ${vectors.length} values, not a multiple of the index dim ${dim}`);
    }
    const count = vectors.length / dim;
    if (ids === undefined) throw new ZGQError('INVALID_ARGUMENT', 'add needs the ids of the new vectors, one per vector');
    const newIds = resolveIds(ids, count);
    checkFinite(vectors, dim, 'vector');
    checkThreads(options.threads);
    if (count === 0) return;
    // a copy the caller cannot change while the add waits its turn (flatRows made one already for other inputs)
    const rows = metric === 'cosine' ? normalizedCopy(vectors, dim) : vectors === input ? vectors.slice() : vectors;
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
          await this.trainOnStaged(all.rows, all.ids, { threads: options.threads, signal: options.signal });
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
            options.onProgress?.(fraction);
          },
        });
      }, options.signal, 'add');
    }, options.signal, 'add');
  }

  /**
   * Train on a copy of the staged rows; ids removed meanwhile (from the staged rows, which searches
   * still use) are removed from the trained index before it replaces them.
   */
  private async trainOnStaged(rows: Float32Array, ids: Uint32Array, options: BuildOptions): Promise<void> {
    this.removedDuring = [];
    try {
      await this.train(rows, ids, options);
      if (this.removedDuring.length) removeIds(this.requireBuilt(), this.removedDuring);
      this.staged = null;
    } finally {
      this.removedDuring = null;
    }
  }

  /** Train on the staged vectors now, after the mutations called before (nothing when trained or empty by then). */
  private trainStaged(): Promise<void> {
    return this.enqueue(null, async () => {
      if (this.built || !this.staged?.n) return;
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

  /**
   * The stored vector of `id` (a new Float32Array), or undefined when the index does not hold it.
   * It is the vector as stored: unit length under 'cosine', and rounded to binary16 under float16
   * storage (within 2^-11 of its length, see the README).
   */
  get(id: number): Float32Array | undefined {
    if (!Number.isInteger(id) || !this.has(id)) return undefined;
    const built = this.built;
    if (!built) return this.staged?.row(id);
    return storedRow(built, lookupOf(built).find(id));
  }

  /** Whether `id` is in the index (added and not removed). */
  has(id: number): boolean {
    const built = this.built;
    if (!Number.isInteger(id)) return false;
    if (!built) return this.staged?.has(id) ?? false;
    const node = lookupOf(built).find(id);
    return node >= 0 && !built.removed.has(node);
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
      if (built.removed.count === 0 || built.removed.live === 0) return null;
      const lay = built.layout;
      checkRelayoutBudget(lay, built.removed.live, true, this.options, 1, `compacting an index of ${built.removed.live} vectors`);
      return relayout(metaOf(lay, this.options, lay.n - built.zoned), viewArrays(built.kernels, lay, built.ids, built.removed.bits, tailOf(built)), {
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
        if (op.removeAfter.size) {
          const ids = [...op.removeAfter];
          if (this.built) removeIds(this.built, ids);
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
      size: b.removed.live, deleted: b.removed.count, appended: lay.n - b.zoned, capacity: lay.capacity, dim: lay.dim, metric: this.options.metric, zones: lay.nZones, zoneGroups: lay.nGroups, zoneSizes: sizes,
      pqSubspaces: lay.m, residual: lay.residual, storage: lay.halfStorage ? 'float16' : 'float32', degree: lay.degree, meanDegree: edges / lay.n, memory,
      parallel: platform.parallel(),
    };
  }

  /** The index as src/tune.ts sees it: its defaults, and searches of stored vectors kept out of their own walks. */
  private tuneTarget(built: Built): TuneTarget {
    const dim = this.options.dim;
    return {
      size: this.size,
      seed: this.options.seed,
      defaults: this.options.search,
      sample: (count, seed) => {
        const { n } = built.layout;
        const rng = new Rng(seed);
        let nodes: Uint32Array;
        if (built.removed.count === 0) nodes = rng.sample(n, count);
        else {
          const live = new Uint32Array(built.removed.live);
          listAllowed(built.removed.liveView(n)!, n, live);
          nodes = Uint32Array.from(rng.sample(live.length, count), (p) => live[p]);
        }
        const rows = new Float32Array(count * dim);
        nodes.forEach((node, i) => rows.set(storedRow(built, node), i * dim));
        return {
          ids: Uint32Array.from(nodes, (node) => built.ids[node]),
          search: (q, k, o) => {
            built.searcher.skip = nodes[q] + 1;
            try {
              return this.search(rows.subarray(q * dim, (q + 1) * dim), k, o);
            } finally {
              built.searcher.skip = 0;
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
    const resolved = resolveSearch(given, this.options.search);
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

  /**
   * Search the query in the searcher's query buffer within `scope`: up to k caller ids and
   * reported distances written from the start of ids / distances, nearest first.
   */
  private runScope(built: Built, k: number, opts: ResolvedSearchOptions, ids: Uint32Array, distances: Float32Array, scope: SearchScope): void {
    if (scope.empty) return;
    built.searcher.allow = scope.allow;
    const got = scope.fast
      ? searchFast(built, built.fastScan!, k, opts.rerank, ids, distances, 0)
      : scope.all
      ? built.searcher.runAll(k, built.layout.n, ids, distances, 0)
      : scope.exact ? built.searcher.runListed(k, scope.listPtr, scope.listCount, ids, distances, 0) : built.searcher.run(k, opts, ids, distances, 0);
    const callerIds = built.ids;
    const metric = this.options.metric;
    for (let i = 0; i < got; i++) {
      ids[i] = callerIds[ids[i]];
      distances[i] = reportedDistance(metric, distances[i]);
    }
  }
}

/** Kernel distance -> reported distance: ip gives -dot; cosine runs as L2 on unit vectors, |a - b|² = 2 - 2 cos. */
function reportedDistance(metric: Metric, d: number): number {
  return metric === 'ip' ? 1 + d : metric === 'cosine' ? d / 2 : d;
}
