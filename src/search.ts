/**
 * Query path: selectZones -> entry points (zone medoids) -> beam search on PQ distances -> exact
 * re-rank of the best k * rerank candidates -> top k. One Searcher per thread: it owns the scratch
 * (visited tags, lookup table, candidate pool) so the query loop allocates nothing.
 */
import type { Kernels } from './kernels/wasm.js';
import { LUT_IP, LUT_L2, LUT_RESIDUAL_L2, METRIC_L2 } from './kernels/wasm.js';
import { PQ_CENTROIDS } from './pq.js';
import { groupProbeFor } from './zones.js';
import type { ResolvedSearchOptions } from './options.js';

/** Where an index's arrays live in the arena, and their shapes. Shared by builder, searchers, io. */
export interface IndexLayout {
  n: number;
  dim: number;
  /** Kernel metric code (METRIC_L2 or METRIC_IP; cosine is IP on normalised vectors). */
  metric: number;
  /** PQ subspaces m. */
  m: number;
  /** Graph degree bound R. */
  degree: number;
  nZones: number;
  nGroups: number;
  residual: boolean;
  /** Re-ranking vectors are binary16 (Uint16Array[n * dim]) rather than float32. */
  halfStorage: boolean;
  /** Float32Array[n * dim] or Uint16Array[n * dim] (halfStorage): vectors in internal (zone-contiguous) order, for re-ranking. */
  vectorsPtr: number;
  /** Uint8Array[n * m]: PQ codes. */
  codesPtr: number;
  /** Uint32Array[n * (R + 1)]: see src/graph.ts. */
  adjacencyPtr: number;
  /** Float32Array[256 * dim]: see src/pq.ts. */
  codebooksPtr: number;
  /** Float32Array[256 * dim] and Float32Array[m * 256]: see transposeCodebooks in src/pq.ts. */
  codebooksTPtr: number;
  codebookNormsPtr: number;
  /** Float32Array[nZones * dim]. */
  centroidsPtr: number;
  /** Uint32Array[nZones + 1]. */
  zoneStartPtr: number;
  /** Uint32Array[nZones]: medoid (entry node) per zone. */
  zoneEntryPtr: number;
  /** Float32Array[nGroups * dim] (0 when nGroups = 0). */
  groupCentroidsPtr: number;
  /** Uint32Array[nGroups + 1] (0 when nGroups = 0). */
  groupStartPtr: number;
  /** Residual PQ only: Uint32Array[n] zone of each node, and Float32Array[n] per-node term. */
  zoneOfPtr: number;
  vecTermPtr: number;
}

export class Searcher {
  private readonly kernels: Kernels;
  private readonly layout: IndexLayout;
  private readonly queryPtr: number;
  private readonly lutPtr: number;
  private readonly visitedPtr: number;
  private readonly zoneTermPtr: number;
  private epoch = 0;
  private poolCapacity = 0;
  private poolDistPtr = 0;
  private poolIdsPtr = 0;
  private probeCapacity = 0;
  private zoneIdsPtr = 0;
  private zoneDistPtr = 0;
  private entriesPtr = 0;
  private groupScratchPtr = 0;
  private outCapacity = 0;
  private outIdsPtr = 0;
  private outDistPtr = 0;
  /** Exact zone scan instead of the two-level tree (tests compare the two). */
  exactZones = false;

  constructor(kernels: Kernels, layout: IndexLayout) {
    this.kernels = kernels;
    this.layout = layout;
    const { arena } = kernels;
    this.queryPtr = arena.alloc(layout.dim * 4);
    this.lutPtr = arena.alloc(layout.m * PQ_CENTROIDS * 4);
    this.visitedPtr = arena.alloc(layout.n * 2);
    arena.u16(this.visitedPtr, layout.n).fill(0);
    this.zoneTermPtr = layout.residual ? arena.alloc(layout.nZones * 4) : 0;
  }

  /** The query buffer (dim floats) inside the arena: write the query here, then call `run`. */
  queryView(): Float32Array {
    return this.kernels.arena.f32(this.queryPtr, this.layout.dim);
  }

  private ensure(pool: number, probe: number, k: number): void {
    const { arena } = this.kernels;
    if (pool > this.poolCapacity) {
      this.poolCapacity = Math.max(pool, this.poolCapacity * 2);
      this.poolDistPtr = arena.alloc(this.poolCapacity * 4);
      this.poolIdsPtr = arena.alloc(this.poolCapacity * 4);
    }
    if (probe > this.probeCapacity) {
      this.probeCapacity = Math.max(probe, this.probeCapacity * 2);
      this.zoneIdsPtr = arena.alloc(this.probeCapacity * 4);
      this.zoneDistPtr = arena.alloc(this.probeCapacity * 4);
      this.entriesPtr = arena.alloc(this.probeCapacity * 4);
      this.groupScratchPtr = arena.alloc((this.probeCapacity + 4) * 8);
    }
    if (k > this.outCapacity) {
      this.outCapacity = Math.max(k, this.outCapacity * 2);
      this.outIdsPtr = arena.alloc(this.outCapacity * 4);
      this.outDistPtr = arena.alloc(this.outCapacity * 4);
    }
  }

  /**
   * How many of the selected zones (nearest first) to scan in full: at most opts.scan, and only
   * zones about as near as the nearest one (squared distance within scanRatio times the nearest's),
   * so a query deep inside one zone scans that zone and a query near a border or far from all data
   * scans the several zones its neighbours may be in. Inner product has no such scale: the fixed count.
   */
  private zonesToScan(found: number, opts: ResolvedSearchOptions): number {
    const limit = Math.min(opts.scan, found);
    if (limit <= 1 || this.layout.metric !== METRIC_L2) return limit;
    const d = this.kernels.arena.f32(this.zoneDistPtr, limit);
    const bound = d[0] * opts.scanRatio;
    let count = 1;
    while (count < limit && d[count] <= bound) count++;
    return count;
  }

  /**
   * Search the query in the query buffer. Writes up to k internal ids and kernel distances
   * (squared L2, or -dot) into outIds / outDist at `offset`, nearest first; returns how many.
   */
  run(k: number, opts: ResolvedSearchOptions, outIds: Uint32Array, outDist: Float32Array, offset: number): number {
    const L = Math.max(opts.ef, k);
    const lay = this.layout;
    const nProbe = Math.min(opts.nProbe, lay.nZones);
    this.ensure(L, nProbe, k);
    const { arena, k: kern } = this.kernels;

    const nGroups = this.exactZones ? 0 : lay.nGroups;
    const groupProbe = groupProbeFor(nProbe, nGroups);
    const found = kern.selectZones(
      this.queryPtr, lay.centroidsPtr, lay.nZones, lay.dim, lay.metric,
      lay.groupCentroidsPtr, lay.groupStartPtr, nGroups, groupProbe,
      nProbe, this.zoneIdsPtr, this.zoneDistPtr, this.groupScratchPtr,
    );
    const zoneIds = arena.u32(this.zoneIdsPtr, found);
    const zoneEntry = arena.u32(lay.zoneEntryPtr, lay.nZones);
    const entries = arena.u32(this.entriesPtr, found);
    for (let i = 0; i < found; i++) entries[i] = zoneEntry[zoneIds[i]];

    const lutMode = lay.metric === METRIC_L2 ? (lay.residual ? LUT_RESIDUAL_L2 : LUT_L2) : LUT_IP;
    kern.pqLut(this.queryPtr, lay.codebooksTPtr, lay.codebookNormsPtr, lay.dim, lay.m, lutMode, this.lutPtr);
    if (lay.residual) arena.f32(this.zoneTermPtr, lay.nZones).fill(NaN);

    this.epoch++;
    if (this.epoch === 65536) {
      arena.u16(this.visitedPtr, lay.n).fill(0);
      this.epoch = 1;
    }
    const pool = kern.searchPq(
      this.lutPtr, lay.codesPtr, lay.m, lay.adjacencyPtr, lay.degree,
      this.entriesPtr, found, L, this.visitedPtr, this.epoch,
      this.poolDistPtr, this.poolIdsPtr,
      lay.residual ? lay.zoneOfPtr : 0, this.zoneTermPtr, lay.vecTermPtr, this.queryPtr, lay.centroidsPtr, lay.dim, lay.metric,
      this.zoneIdsPtr, this.zonesToScan(found, opts), lay.zoneStartPtr,
    );
    const candidates = Math.min(pool, Math.max(k, k * opts.rerank));
    const got = kern.rerank(this.queryPtr, lay.vectorsPtr, lay.dim, lay.metric, lay.halfStorage ? 1 : 0, this.poolIdsPtr, candidates, k, this.outIdsPtr, this.outDistPtr);
    outIds.set(arena.u32(this.outIdsPtr, got), offset);
    outDist.set(arena.f32(this.outDistPtr, got), offset);
    return got;
  }
}
