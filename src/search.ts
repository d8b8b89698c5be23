/**
 * Query path: selectZones -> entry points (zone medoids) -> beam search on PQ distances -> exact
 * re-rank of the best k * rerank candidates -> top k; or, with traversal 'exact', the beam search on
 * the stored rows' exact distances and no re-ranking. One Searcher per thread: it owns the scratch
 * (visited tags, lookup table, candidate pool) so the query loop allocates nothing.
 */
import type { Kernels } from './kernels/wasm.js';
import { PQ_CENTROIDS } from './pq.js';
import { groupProbeFor } from './zones.js';
import type { ResolvedSearchOptions, Traversal } from './options.js';
import type { IndexLayout } from './layout.js';
import type { RowStore } from './rows.js';
import { assert } from './errors.js';

/** Rows copied in and ranked at a time by an exact scan of listed nodes when rows live outside the arena. */
const LISTED_BLOCK = 1024;

/**
 * Fields of the per-thread context block (u32 each) read by assembly/query.ts `searchQuery`:
 * the index's arrays, then this thread's scratch. Keep in step with class SearchContext there
 * (same order; test/context-blocks.test.ts compares the two).
 */
export const CTX = {
  n: 0, dim: 1, metric: 2, m: 3, degree: 4, nZones: 5, nGroups: 6, residual: 7, half: 8,
  vectors: 9, codes: 10, adjacency: 11, codebooksT: 12, codebookNorms: 13, centroids: 14,
  zoneStart: 15, zoneEntry: 16, groupCentroids: 17, groupStart: 18, zoneOf: 19, vecTerm: 20,
  query: 21, lut: 22, visited: 23, epoch: 24, zoneTerm: 25, zoneTag: 26, poolDist: 27, poolIds: 28,
  zoneIds: 29, zoneDist: 30, entries: 31, groupScratch: 32, outIds: 33, outDist: 34, allow: 35, neighbours: 36,
  codebooksQ: 37, codebookQScale: 38, queryPairs: 39, exactWalk: 40, rowNorms: 41, queryScaled: 42, skip: 43,
} as const;
export const CTX_FIELDS = 44;

/** Capacities of a context's growable scratch. */
interface Capacity {
  pool: number;
  probe: number;
  k: number;
}

export class Searcher {
  private readonly kernels: Kernels;
  private readonly layout: IndexLayout;
  /** Byte offset of this searcher's context block. */
  readonly ctx: number;
  private readonly cap: Capacity = { pool: 0, probe: 0, k: 0 };
  private viewBuffer: ArrayBufferLike | null = null;
  private query!: Float32Array;
  private outIds!: Uint32Array;
  private outDist!: Float32Array;
  private exact = false;
  private exactWalk = false;
  private allowPtr = 0;
  /** Rows outside the arena (layout.vectorsPtr 0): re-ranked from copies in the staging buffer. */
  private readonly rows: RowStore | null;
  /** Arena buffer of `staged` rows the row store copies candidates into, and its view. */
  private staging = 0;
  private staged = 0;
  private stagingView!: Uint8Array;
  private poolIdsView!: Uint32Array;
  private poolIdsPtr = 0;
  /** Arena scratch of grouped batch slices (see groupedScratch). */
  private grouped = { ptr: 0, bytes: 0 };

  constructor(kernels: Kernels, layout: IndexLayout, rows: RowStore | null = null) {
    this.kernels = kernels;
    this.layout = layout;
    this.rows = rows;
    const { arena } = kernels;
    this.ctx = arena.alloc(CTX_FIELDS * 4);
    const c = arena.u32(this.ctx, CTX_FIELDS);
    c[CTX.n] = layout.capacity;
    c[CTX.skip] = 0;
    c[CTX.dim] = layout.dim;
    c[CTX.metric] = layout.metric;
    c[CTX.m] = layout.m;
    c[CTX.degree] = layout.degree;
    c[CTX.nZones] = layout.nZones;
    c[CTX.nGroups] = layout.nGroups;
    c[CTX.residual] = layout.residual ? 1 : 0;
    c[CTX.half] = layout.halfStorage ? 1 : 0;
    c[CTX.vectors] = layout.vectorsPtr;
    c[CTX.codes] = layout.codesPtr;
    c[CTX.adjacency] = layout.adjacencyPtr;
    c[CTX.codebooksT] = layout.codebooksTPtr;
    c[CTX.codebookNorms] = layout.codebookNormsPtr;
    c[CTX.codebooksQ] = layout.codebooksQPtr;
    arena.f32(this.ctx + CTX.codebookQScale * 4, 1)[0] = layout.codebookQScale;
    c[CTX.centroids] = layout.centroidsPtr;
    c[CTX.zoneStart] = layout.zoneStartPtr;
    c[CTX.zoneEntry] = layout.zoneEntryPtr;
    c[CTX.groupCentroids] = layout.groupCentroidsPtr;
    c[CTX.groupStart] = layout.groupStartPtr;
    c[CTX.zoneOf] = layout.zoneOfPtr;
    c[CTX.vecTerm] = layout.vecTermPtr;
    c[CTX.rowNorms] = layout.rowNormsPtr;
    const set = (field: number, value: number) => (arena.u32(this.ctx, CTX_FIELDS)[field] = value);
    set(CTX.query, arena.alloc(layout.dim * 4));
    set(CTX.lut, arena.alloc(layout.m * PQ_CENTROIDS * 4));
    // the query in 16-bit dimension pairs, one subspace at a time (with codebooksQ)
    set(CTX.queryPairs, layout.codebooksQPtr ? arena.alloc(((layout.dim + 1) >> 1) * 4) : 0);
    // the query scaled for half rows (see dotHalfScaled in assembly/half.ts)
    set(CTX.queryScaled, layout.halfStorage ? arena.alloc(layout.dim * 4) : 0);
    const visited = arena.alloc(layout.capacity * 2);
    arena.u16(visited, layout.capacity).fill(0);
    set(CTX.visited, visited);
    set(CTX.epoch, 0);
    set(CTX.neighbours, arena.alloc(Math.max(1, layout.degree) * 4));
    if (layout.residual) {
      set(CTX.zoneTerm, arena.alloc(layout.nZones * 4));
      const tags = arena.alloc(layout.nZones * 2);
      arena.u16(tags, layout.nZones).fill(0);
      set(CTX.zoneTag, tags);
    }
  }

  /**
   * Bitmap over nodes (bit i of byte i >> 3 set: node i may be returned), or 0 for every node.
   * Deleted nodes and filters restrict searches through it. A walk through a bitmap may give up
   * and return no result when the filter excludes the query's neighbourhood (see the top of
   * assembly/search.ts); the caller then scans the allowed nodes (runListed).
   */
  set allow(bitsPtr: number) {
    if (bitsPtr === this.allowPtr) return;
    this.allowPtr = bitsPtr;
    this.kernels.arena.u32(this.ctx, CTX_FIELDS)[CTX.allow] = bitsPtr;
  }

  /**
   * Exact search of the query in the query buffer over `count` nodes listed at idsPtr (u32); same
   * output contract as `run`.
   */
  runListed(k: number, idsPtr: number, count: number, outIds: Uint32Array, outDist: Float32Array, offset: number): number {
    this.ensure(1, 1, k);
    this.refreshViews();
    if (this.rows) return this.copyOut(this.rankListed(k, idsPtr, count), outIds, outDist, offset);
    return this.copyOut(this.kernels.k.searchListed(this.ctx, idsPtr, count, k), outIds, outDist, offset);
  }

  /** Rows outside the arena: the listed nodes' rows copied in and ranked a block at a time. */
  private rankListed(k: number, idsPtr: number, count: number): number {
    const block = LISTED_BLOCK;
    this.ensureStaging(Math.min(block, count));
    const { arena, k: kern } = this.kernels;
    let size = 0;
    for (let from = 0; from < count; from += block) {
      const n = Math.min(block, count - from);
      const ptr = idsPtr + from * 4;
      this.rows!.gather(arena.u32(ptr, n), n, this.stagingView);
      size = kern.rankStaged(this.ctx, this.staging, ptr, n, k, size);
    }
    return size;
  }

  /** Room for `count` rows in the staging buffer (rows outside the arena). */
  private ensureStaging(count: number): void {
    if (count <= this.staged) return;
    const size = Math.max(count, this.staged * 2);
    this.staging = this.kernels.arena.alloc(size * this.rows!.rowBytes);
    this.staged = size;
    this.viewBuffer = null;
    this.refreshViews();
  }

  /** The query buffer as the last queryBuffer() left it (dim floats inside the arena). */
  get queryView(): Float32Array {
    return this.query;
  }

  /**
   * The 'scan' traversal of the query in the query buffer: every node of [0, n) the allow bitmap
   * admits, compared exactly; same output contract as `run`.
   */
  runAll(k: number, n: number, outIds: Uint32Array, outDist: Float32Array, offset: number): number {
    assert(!this.rows, 'the scan traversal needs the rows in the arena');
    this.ensure(k, 1, k);
    this.refreshViews();
    return this.copyOut(this.kernels.k.searchAll(this.ctx, n, k), outIds, outDist, offset);
  }

  /**
   * A node the next searches neither return nor walk through (node + 1; 0 for none): tune's
   * queries are stored vectors, and a walk that reached its own node would find that node's
   * neighbours in its adjacency list for free, which no query from outside the index does.
   */
  set skip(nodePlusOne: number) {
    this.kernels.arena.u32(this.ctx, CTX_FIELDS)[CTX.skip] = nodePlusOne;
  }

  /** The first `got` results of the context's out buffers into the caller's arrays at `offset`. */
  private copyOut(got: number, outIds: Uint32Array, outDist: Float32Array, offset: number): number {
    for (let i = 0; i < got; i++) {
      outIds[offset + i] = this.outIds[i];
      outDist[offset + i] = this.outDist[i];
    }
    return got;
  }

  /** The graph walk's distances for the searches that follow (written to the context when it changes). */
  private setTraversal(traversal: Traversal): void {
    const exactWalk = traversal === 'exact';
    if (exactWalk === this.exactWalk) return;
    this.exactWalk = exactWalk;
    this.kernels.arena.u32(this.ctx, CTX_FIELDS)[CTX.exactWalk] = exactWalk ? 1 : 0;
  }

  /** Exact zone scan instead of the two-level tree (tests and benchmarks compare the two). */
  get exactZones(): boolean {
    return this.exact;
  }

  set exactZones(exact: boolean) {
    this.exact = exact;
    this.kernels.arena.u32(this.ctx, CTX_FIELDS)[CTX.nGroups] = exact ? 0 : this.layout.nGroups;
  }

  private field(f: number): number {
    return this.kernels.arena.u32(this.ctx, CTX_FIELDS)[f];
  }

  private ensure(pool: number, probe: number, k: number): void {
    const { arena } = this.kernels;
    const cap = this.cap;
    if (pool <= cap.pool && probe <= cap.probe && k <= cap.k) return;
    const set = (field: number, value: number) => (arena.u32(this.ctx, CTX_FIELDS)[field] = value);
    // capacities change only once their buffers exist: a refused allocation leaves the context as it was
    if (pool > cap.pool) {
      const size = Math.max(pool, cap.pool * 2);
      const dist = arena.alloc(size * 4);
      const ids = arena.alloc(size * 4);
      set(CTX.poolDist, dist);
      set(CTX.poolIds, ids);
      cap.pool = size;
    }
    if (probe > cap.probe) {
      const size = Math.max(probe, cap.probe * 2);
      const zoneIds = arena.alloc(size * 4);
      const zoneDist = arena.alloc(size * 4);
      const entries = arena.alloc(size * 4);
      const groupScratch = arena.alloc((groupProbeFor(size, this.layout.nGroups) + 1) * 8);
      set(CTX.zoneIds, zoneIds);
      set(CTX.zoneDist, zoneDist);
      set(CTX.entries, entries);
      set(CTX.groupScratch, groupScratch);
      cap.probe = size;
    }
    if (k > cap.k) {
      const size = Math.max(k, cap.k * 2);
      const outIds = arena.alloc(size * 4);
      const outDist = arena.alloc(size * 4);
      set(CTX.outIds, outIds);
      set(CTX.outDist, outDist);
      cap.k = size;
    }
    this.viewBuffer = null;
  }

  /** Views of the query and result buffers, re-made when the memory has grown or scratch moved. */
  private refreshViews(): void {
    const bytes = this.kernels.arena.bytes;
    if (this.viewBuffer === bytes.buffer) return;
    this.viewBuffer = bytes.buffer;
    this.query = this.kernels.arena.f32(this.field(CTX.query), this.layout.dim);
    this.outIds = this.kernels.arena.u32(this.field(CTX.outIds), this.cap.k);
    this.outDist = this.kernels.arena.f32(this.field(CTX.outDist), this.cap.k);
    if (this.rows) {
      this.stagingView = this.kernels.arena.u8(this.staging, this.staged * this.rows.rowBytes);
      this.poolIdsPtr = this.field(CTX.poolIds);
      this.poolIdsView = this.kernels.arena.u32(this.poolIdsPtr, this.cap.pool);
    }
  }

  /**
   * Prepare for a search with these options and return the query buffer (dim floats inside the
   * arena, a view): write the query there, then call `run` with the same k and options.
   */
  queryBuffer(k: number, opts: ResolvedSearchOptions): Float32Array {
    const nProbe = Math.min(opts.nProbe, this.layout.nZones);
    this.ensure(Math.max(opts.ef, k), nProbe, k);
    this.refreshViews();
    return this.query;
  }

  /**
   * The kernel arguments after the context for these options: [k, L, nProbe, groupProbe, scan,
   * scanRatio, rerankCount]; makes sure the context's scratch is large enough for them.
   */
  plan(k: number, opts: ResolvedSearchOptions): number[] {
    const lay = this.layout;
    const nProbe = Math.min(opts.nProbe, lay.nZones);
    const L = Math.max(opts.ef, k);
    this.ensure(L, nProbe, k);
    const nGroups = this.exact ? 0 : lay.nGroups;
    this.setTraversal(opts.traversal);
    return [k, L, nProbe, groupProbeFor(nProbe, nGroups), opts.scan, opts.scanRatio, Math.max(k, k * opts.rerank)];
  }

  /**
   * Scratch for searchGrouped slices of up to maxQueries queries at these nProbe and L (grown as
   * needed, kept between batches): its offset and size. OUT_OF_MEMORY when the arena has no room.
   */
  groupedScratch(maxQueries: number, nProbe: number, L: number): { ptr: number; bytes: number } {
    const bytes = this.kernels.k.groupedScratchBytes(this.layout.dim, this.layout.nZones, maxQueries, nProbe, L);
    if (bytes > this.grouped.bytes) {
      const size = Math.max(bytes, this.grouped.bytes * 2);
      this.grouped = { ptr: this.kernels.arena.alloc(size), bytes: size };
    }
    return this.grouped;
  }

  /**
   * Search the query in the query buffer. Writes up to k internal ids and kernel distances
   * (squared L2, or -dot) into outIds / outDist at `offset`, nearest first; returns how many.
   */
  run(k: number, opts: ResolvedSearchOptions, outIds: Uint32Array, outDist: Float32Array, offset: number): number {
    // plan()'s arguments, without its array: this runs once per query
    const nProbe = Math.min(opts.nProbe, this.layout.nZones);
    const L = Math.max(opts.ef, k);
    this.ensure(L, nProbe, k);
    this.refreshViews();
    this.setTraversal(opts.traversal);
    const groupProbe = groupProbeFor(nProbe, this.exact ? 0 : this.layout.nGroups);
    const rerankCount = Math.max(k, k * opts.rerank);
    if (this.rows) {
      // the PQ walk's candidates, their rows copied in from outside, ranked
      assert(!this.exactWalk, 'the exact walk needs the rows in the arena');
      const kern = this.kernels.k;
      const count = kern.searchCandidates(this.ctx, L, nProbe, groupProbe, opts.scan, opts.scanRatio, rerankCount);
      this.ensureStaging(count);
      this.rows.gather(this.poolIdsView, count, this.stagingView);
      return this.copyOut(kern.rankStaged(this.ctx, this.staging, this.poolIdsPtr, count, k, 0), outIds, outDist, offset);
    }
    const got = this.kernels.k.searchQuery(this.ctx, k, L, nProbe, groupProbe, opts.scan, opts.scanRatio, rerankCount);
    return this.copyOut(got, outIds, outDist, offset);
  }
}
