/**
 * Shards: an index too large for one WebAssembly memory (4 GiB) is a set of shards, each a
 * complete index (src/built.ts) in a memory of its own over one part of the vectors, behind a router.
 *
 * The parts are spatially coherent: the rows are cut into cells (k-means, 64 per shard), and whole
 * cells go to parts, each to the nearest of the parts' centres that still has room, the cells
 * nearest a centre by the clearest margin first, so that no part exceeds an even share by much
 * more than BALANCE. Each shard trains its own zones, codebooks and graph on its part (the build of
 * one index, src/build.ts), so its graph crosses zone borders inside it as any index's does. The
 * router holds every shard's zone centroids and zone groups side by side, as one index's two-level
 * tree: a search selects the nProbe zones nearest the query among them all, as one index would,
 * searches each shard owning one of them within ROUTE_RATIO of the nearest one's distance (with its
 * own zone selection inside it), and merges the results on their exact distances, which are
 * comparable across shards. Filtered searches and the scan traversals search every shard.
 *
 * An index whose build fits `shardBounds.maxBytes` is one shard, exactly the index it always was;
 * none of this runs for it.
 */
import { Arena } from './memory.js';
import { createKernels, type Kernels, METRIC_L2 } from './kernels/wasm.js';
import { installArenaBytes, workArenaBytes } from './budget.js';
import { linkCapacity } from './graph.js';
import { assignNearestSteps, defaultZoneCount, groupProbeFor } from './zones.js';
import { kmeansSteps } from './kmeans.js';
import { InputRows } from './input.js';
import { Pacer, runPaced } from './pace.js';
import { type Built, lookupOf, shapeOf } from './built.js';
import { buildIndex, type BuildOptions } from './build.js';
import type { DeviceUse } from './gpu/batch.js';
import { NO_ID } from './ids.js';
import { type Metric, type ResolvedOptions, type ResolvedSearchOptions, scansEveryVector, type SearchOptions } from './options.js';
import type { SearchFilter } from './filter.js';
import { callerResults, scopeFor, searchOne } from './scope.js';
import { runBatch } from './batch.js';
import { gatherRows } from './validate.js';

/**
 * Largest build arena (its high-water mark, src/budget.ts) one shard may need: larger builds are
 * split into shards. A quarter of the 4 GiB memory stays free for in-place adds and search
 * scratch. Tests lower it to shard small sets; nothing else changes it.
 * @internal
 */
export const shardBounds = { maxBytes: 3 * 1024 ** 3 };

/** Parts are cut to at most this factor of an even share of the rows (whole cells: see partitionRows). */
const BALANCE = 1.05;
/** The part size shardCount plans for: BALANCE, and a cell that fits no part going to the emptiest. */
const PLANNED_BALANCE = 1.1;

/** Most shards an index may have (section tags S000..S255; the router's zone map is 8-bit). */
export const MAX_SHARDS = 256;

/**
 * A shard is searched when one of its zones among the nProbe nearest to the query lies within this
 * factor of the squared distance of the nearest zone (farther ones hold few of the nearest
 * neighbours). On 100K x 128 clustered data in 4 shards it halved the shards searched per query at
 * the same recall, and on 100K x 768 embeddings (no distinct clusters) it kept the recall of
 * searching every shard with a selected zone within 0.001 at four fifths of the shards searched
 * (BENCHMARKS.md "Past one memory: shards"); a factor of 1.5 lost a point of recall there.
 */
export const ROUTE_RATIO = 2;

/**
 * The routing factor in use (ROUTE_RATIO; Infinity searches every shard with a selected zone):
 * bench/shard-routing.ts varies it; nothing else changes it.
 * @internal
 */
export const shardRouting = { ratio: ROUTE_RATIO };

/**
 * How many shards an index of n rows of `dim` needs: the fewest whose parts (at BALANCE) each
 * build and install within shardBounds.maxBytes. 1 for every index that fits one memory.
 */
export function shardCount(n: number, o: ResolvedOptions, lanes: number): number {
  const half = o.storage === 'float16';
  for (let shards = 1; shards < MAX_SHARDS; shards++) {
    const part = shards === 1 ? n : Math.ceil((n / shards) * PLANNED_BALANCE);
    const nZones = Math.min(o.zones === undefined ? defaultZoneCount(part) : Math.ceil((o.zones * part) / n), part);
    const work = workArenaBytes({
      n: part, dim: o.dim, m: o.pqSubspaces, degree: o.degree, efConstruction: o.efConstruction, nZones, lanes, half, linkCapacity: linkCapacity(o.degree),
    });
    const installed = installArenaBytes(shapeOf(part, o.dim, o.pqSubspaces, o, nZones, half));
    if (Math.max(work, installed) <= shardBounds.maxBytes) return shards;
  }
  // the budget check of each shard's build refuses what cannot fit even then
  return MAX_SHARDS;
}

/**
 * The largest shard bound (shardBounds.maxBytes) under which n rows with these options split into
 * at most `shards` shards: benchmarks set it to split sets small enough for one memory. Leaves
 * shardBounds as it found it.
 * @internal
 */
export function boundForShards(n: number, o: ResolvedOptions, lanes: number, shards: number): number {
  const before = shardBounds.maxBytes;
  let lo = 1 << 20;
  let hi = 4 * 1024 ** 3;
  try {
    while (hi - lo > 1 << 16) {
      const mid = Math.floor((lo + hi) / 2);
      shardBounds.maxBytes = mid;
      if (shardCount(n, o, lanes) > shards) lo = mid;
      else hi = mid;
    }
  } finally {
    shardBounds.maxBytes = before;
  }
  return hi;
}

/**
 * Each of n items (of `weight[i]` rows each) to one of `parts` parts, given its distance to each
 * (dist[i * parts + p]): to its nearest part with room for it (at most `capacity` rows each), items
 * whose nearest part is nearer than their second by the widest margin first (they lose most
 * elsewhere). An item no part has room for goes to the part with the most room left.
 */
export function balancedAssignment(dist: Float32Array, n: number, parts: number, capacity: number, weight?: Uint32Array): Uint8Array {
  const partOf = new Uint8Array(n);
  if (parts === 1) return partOf;
  const margin = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    let second = Infinity;
    for (let p = 0; p < parts; p++) {
      const d = dist[i * parts + p];
      if (d < best) {
        second = best;
        best = d;
      } else if (d < second) second = d;
    }
    margin[i] = second - best;
  }
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => margin[b] - margin[a] || a - b);
  const fill = new Float64Array(parts);
  for (const i of order) {
    const w = weight ? weight[i] : 1;
    let part = -1;
    let nearest = Infinity;
    for (let p = 0; p < parts; p++) {
      if (fill[p] + w <= capacity && dist[i * parts + p] < nearest) {
        nearest = dist[i * parts + p];
        part = p;
      }
    }
    if (part < 0) for (let p = 0; p < parts; p++) if (part < 0 || fill[p] < fill[part]) part = p;
    partOf[i] = part;
    fill[part] += w;
  }
  return partOf;
}

/** Cells per shard of the partition: whole cells move between shards, so the parts balance within about 1/CELLS_PER_SHARD. */
const CELLS_PER_SHARD = 64;

/**
 * The part of each row of x: the rows are cut into cells (k-means on a sample, CELLS_PER_SHARD per
 * part), and whole cells go to parts (k-means over the cell centroids with one centre per part, then
 * balancedAssignment of the cells weighted by their rows): a part's border follows cell borders, so
 * nearby rows stay together rather than being dealt out one by one near the border.
 */
async function partitionRows(kernels: Kernels, x: Float32Array, n: number, dim: number, parts: number, seed: number, pacer: Pacer): Promise<Uint8Array> {
  const cells = Math.min(n, CELLS_PER_SHARD * parts);
  const { centroids } = await runPaced(kmeansSteps(kernels, x, n, dim, cells, { seed }), pacer);
  const { nearest: cellOf } = await runPaced(assignNearestSteps(kernels, x, n, dim, centroids, cells), pacer);
  const rows = new Uint32Array(cells);
  for (let i = 0; i < n; i++) rows[cellOf[i]]++;
  const { centroids: centres } = await runPaced(kmeansSteps(kernels, centroids, cells, dim, parts, { seed: seed + 1 }), pacer);
  const dist = new Float32Array(cells * parts);
  for (let c = 0; c < cells; c++) {
    for (let p = 0; p < parts; p++) {
      let d = 0;
      for (let j = 0; j < dim; j++) d += (centroids[c * dim + j] - centres[p * dim + j]) ** 2;
      dist[c * parts + p] = d;
    }
  }
  const cellPart = balancedAssignment(dist, cells, parts, Math.ceil((n / parts) * BALANCE), rows);
  const partOf = new Uint8Array(n);
  for (let i = 0; i < n; i++) partOf[i] = cellPart[cellOf[i]];
  return partOf;
}

/** One shard's zones as a router needs them: centroids, and the groups of its selection tree. */
export interface ZoneTable {
  nZones: number;
  /** Float32Array[nZones * dim]. */
  centroids: Float32Array;
  /** Groups of the shard's selection tree (0: it has too few zones for groups). */
  nGroups: number;
  /** Float32Array[nGroups * dim]. */
  groupCentroids: Float32Array;
  /** Uint32Array[nGroups]: the first zone of each group, within this table. */
  groupStart: Uint32Array;
}

/** A shard's zone table, copied out of its memory. */
export function zoneTableOf(part: Built): ZoneTable {
  const lay = part.layout;
  const source = part.kernels.arena;
  return {
    nZones: lay.nZones,
    centroids: source.f32(lay.centroidsPtr, lay.nZones * lay.dim).slice(),
    nGroups: lay.nGroups,
    groupCentroids: lay.nGroups ? source.f32(lay.groupCentroidsPtr, lay.nGroups * lay.dim).slice() : new Float32Array(0),
    groupStart: lay.nGroups ? source.u32(lay.groupStartPtr, lay.nGroups).slice() : new Uint32Array(0),
  };
}

/** The router over these shards, held in this memory. */
export function routerOver(parts: Built[]): Router {
  return new Router(parts.map(zoneTableOf), parts[0].layout.dim, parts[0].layout.metric);
}

/**
 * Every shard's zone centroids and zone groups side by side in a small memory of its own, and the
 * shard owning each zone: selects zones for a query as one index would over them all. Built from
 * the shards' zone tables alone, so it can route for shards held elsewhere.
 */
export class Router {
  private readonly kernels: Kernels;
  readonly dim: number;
  private readonly metric: number;
  readonly nZones: number;
  /** Groups of the selection tree (0: every centroid is scanned: some shard has too few zones for groups). */
  private readonly nGroups: number;
  private readonly centroidsPtr: number;
  private readonly groupCentroidsPtr: number;
  private readonly groupStartPtr: number;
  private readonly queryPtr: number;
  /** Shard of each zone. */
  private readonly zoneShard: Uint8Array;
  private probeCap = 0;
  /** |c|² of each zone centroid under the inner-product metric (null under L2). */
  private readonly centroidNorms: Float32Array | null;
  /** |q|² of the query being routed under the inner-product metric. */
  private queryNorm = 0;
  private zonesPtr = 0;
  private distPtr = 0;
  private scratchPtr = 0;

  constructor(tables: ZoneTable[], dim: number, metric: number) {
    this.kernels = createKernels(new Arena());
    const { arena } = this.kernels;
    this.dim = dim;
    this.metric = metric;
    let nZones = 0;
    let nGroups = 0;
    for (const table of tables) {
      nZones += table.nZones;
      nGroups += table.nGroups;
    }
    const grouped = tables.every((table) => table.nGroups > 0);
    this.nZones = nZones;
    this.nGroups = grouped ? nGroups : 0;
    this.zoneShard = new Uint8Array(nZones);
    this.centroidsPtr = arena.alloc(nZones * dim * 4);
    this.groupCentroidsPtr = grouped ? arena.alloc(nGroups * dim * 4) : 0;
    this.groupStartPtr = grouped ? arena.alloc((nGroups + 1) * 4) : 0;
    this.queryPtr = arena.alloc(dim * 4);
    let zone = 0;
    let group = 0;
    tables.forEach((table, p) => {
      arena.f32(this.centroidsPtr + zone * dim * 4, table.nZones * dim).set(table.centroids);
      this.zoneShard.fill(p, zone, zone + table.nZones);
      if (grouped) {
        arena.f32(this.groupCentroidsPtr + group * dim * 4, table.nGroups * dim).set(table.groupCentroids);
        const into = arena.u32(this.groupStartPtr + group * 4, table.nGroups);
        for (let g = 0; g < table.nGroups; g++) into[g] = table.groupStart[g] + zone;
      }
      zone += table.nZones;
      group += table.nGroups;
    });
    if (grouped) arena.u32(this.groupStartPtr + nGroups * 4, 1)[0] = nZones;
    this.centroidNorms = metric === METRIC_L2 ? null : new Float32Array(nZones);
    if (this.centroidNorms) {
      const c = arena.f32(this.centroidsPtr, nZones * dim);
      for (let z = 0; z < nZones; z++) {
        let norm = 0;
        for (let j = 0; j < dim; j++) norm += c[z * dim + j] ** 2;
        this.centroidNorms[z] = norm;
      }
    }
  }

  /** Squared L2 distance from the query to zone z's centroid, given the kernel distance d to it (-q·c under inner product). */
  private squaredDistance(z: number, d: number): number {
    return this.centroidNorms ? this.queryNorm + this.centroidNorms[z] + 2 * d : d;
  }

  /** The query buffer (dim floats, a view: re-take it after a route). */
  query(): Float32Array {
    return this.kernels.arena.f32(this.queryPtr, this.dim);
  }

  /**
   * The nProbe zones nearest the query in the buffer (by the selection tree, as a search selects
   * them), nearest first: a view, valid until the next call.
   */
  nearestZones(nProbe: number): Uint32Array {
    const probe = Math.min(nProbe, this.nZones);
    const groupProbe = groupProbeFor(probe, this.nGroups);
    if (probe > this.probeCap) {
      const { arena } = this.kernels;
      this.zonesPtr = arena.alloc(probe * 4);
      this.distPtr = arena.alloc(probe * 4);
      this.scratchPtr = arena.alloc((groupProbe + 1) * 8);
      this.probeCap = probe;
    }
    const found = this.kernels.k.selectZones(
      this.queryPtr, this.centroidsPtr, this.nZones, this.dim, this.metric, this.groupCentroidsPtr, this.groupStartPtr, this.nGroups, groupProbe,
      probe, this.zonesPtr, this.distPtr, this.scratchPtr, 0, 0, 0,
    );
    return this.kernels.arena.u32(this.zonesPtr, found);
  }

  /**
   * The shards to search for the query in the buffer: those owning one of its nProbe nearest zones
   * within ROUTE_RATIO of the nearest one's squared distance; `chosen[s]` the number of such zones
   * shard s owns (cleared first, at most 255). Returns how many shards own one.
   */
  route(nProbe: number, chosen: Uint8Array): number {
    const zones = this.nearestZones(nProbe);
    const found = zones.length;
    chosen.fill(0);
    if (this.centroidNorms) {
      const q = this.query();
      this.queryNorm = 0;
      for (let j = 0; j < this.dim; j++) this.queryNorm += q[j] * q[j];
    }
    const dist = this.kernels.arena.f32(this.distPtr, found);
    const limit = found > 0 ? this.squaredDistance(zones[0], dist[0]) * shardRouting.ratio : 0;
    let count = 0;
    for (let i = 0; i < found; i++) {
      if (this.squaredDistance(zones[i], dist[i]) > limit) break;
      const shard = this.zoneShard[zones[i]];
      if (!chosen[shard]) count++;
      if (chosen[shard] < 255) chosen[shard]++;
    }
    return count;
  }

  /**
   * Per shard (of `shards`), the queries of the batch (nq rows of `queries`) routed to it, in order:
   * route() of each with nProbe; every query to every shard when `everywhere`.
   */
  routeBatch(queries: Float32Array, nq: number, nProbe: number, shards: number, everywhere: boolean): Uint32Array[] {
    if (everywhere) return Array.from({ length: shards }, () => Uint32Array.from({ length: nq }, (_, q) => q));
    const dim = this.dim;
    const chosen = new Uint8Array(Math.max(shards, MAX_SHARDS));
    const count = new Uint32Array(shards);
    const chosenOf = new Uint8Array(nq * shards);
    for (let q = 0; q < nq; q++) {
      this.query().set(queries.subarray(q * dim, (q + 1) * dim));
      this.route(nProbe, chosen);
      for (let p = 0; p < shards; p++) {
        if (!chosen[p]) continue;
        chosenOf[q * shards + p] = 1;
        count[p]++;
      }
    }
    const lists = Array.from(count, (c) => new Uint32Array(c));
    const fill = new Uint32Array(shards);
    for (let q = 0; q < nq; q++) for (let p = 0; p < shards; p++) if (chosenOf[q * shards + p]) lists[p][fill[p]++] = q;
    return lists;
  }

  /** The shard owning the zone nearest the query in the buffer (where an added vector goes). */
  nearestShard(): number {
    this.route(1, this.one);
    return this.one.findIndex((zones) => zones > 0);
  }

  private readonly one = new Uint8Array(MAX_SHARDS);

  /** Bytes held: zone centroids, groups and the zone map. */
  get bytes(): number {
    return this.nZones * (this.dim * 4 + 1) + this.nGroups * (this.dim * 4 + 4);
  }
}

/** A sharded index: its shards (each a complete index over its part) and the router in front. */
export class Shards {
  /** Results of one shard for one query, merged into the caller's. */
  private partIds = new Uint32Array(0);
  private partDist = new Float32Array(0);
  private readonly merger = new SortedMerge();
  /** Shards chosen for the query being searched. */
  private readonly chosen: Uint8Array;

  constructor(readonly parts: Built[], readonly router: Router) {
    this.chosen = new Uint8Array(Math.max(parts.length, MAX_SHARDS));
  }

  /** Vectors searches can return. */
  get live(): number {
    let live = 0;
    for (const part of this.parts) live += part.removed.live;
    return live;
  }

  /** The shard and node holding caller id `id` (removed or not), or null. */
  find(id: number): { part: Built; node: number } | null {
    for (const part of this.parts) {
      const node = lookupOf(part).find(id);
      if (node >= 0) return { part, node };
    }
    return null;
  }

  /**
   * The k nearest to the query `q` (dim floats, unit length under cosine) within the filter: caller
   * ids and reported distances into ids / distances (k slots, filled with NO_ID / Infinity first).
   */
  search(q: Float32Array, k: number, opts: ResolvedSearchOptions, filter: SearchFilter | undefined, seed: number, metric: Metric, ids: Uint32Array, distances: Float32Array): void {
    ids.fill(NO_ID);
    distances.fill(Infinity);
    if (this.partIds.length < k) {
      this.partIds = new Uint32Array(k);
      this.partDist = new Float32Array(k);
    }
    const everywhere = searchesEveryShard(filter, opts);
    if (!everywhere) {
      this.router.query().set(q);
      this.router.route(opts.nProbe, this.chosen);
    }
    const partIds = this.partIds.subarray(0, k);
    const partDist = this.partDist.subarray(0, k);
    const write = (into: Float32Array) => into.set(q);
    for (let p = 0; p < this.parts.length; p++) {
      if (!everywhere && !this.chosen[p]) continue;
      partIds.fill(NO_ID);
      partDist.fill(Infinity);
      searchOne(this.parts[p], k, opts, filter, seed, metric, write, partIds, partDist);
      this.merger.merge(ids, distances, 0, k, partIds, partDist, 0);
    }
  }

  /**
   * A batch of nq queries (rows of `queries`, unit length under cosine): each shard searches the
   * queries routed to it as one batch (on `threads`), and the results are merged; caller ids and
   * reported distances, row q at [q * k, (q + 1) * k).
   */
  async searchBatch(
    queries: Float32Array, nq: number, k: number, opts: ResolvedSearchOptions, threads: number | undefined, filter: SearchFilter | undefined,
    seed: number, metric: Metric, pacer: Pacer,
  ): Promise<{ ids: Uint32Array; distances: Float32Array }> {
    const ids = new Uint32Array(nq * k).fill(NO_ID);
    const distances = new Float32Array(nq * k).fill(Infinity);
    const lists = this.router.routeBatch(queries, nq, opts.nProbe, this.parts.length, searchesEveryShard(filter, opts));
    for (let p = 0; p < lists.length; p++) {
      const list = lists[p];
      if (list.length === 0) continue;
      const part = this.parts[p];
      const rows = list.length === nq ? queries : gatherRows(queries, this.router.dim, list);
      const got = await runBatch(part, rows, list.length, k, opts, threads, scopeFor(part, filter, opts, k, 'batchBits', seed), pacer);
      callerResults(part, got.ids, got.distances, metric);
      list.forEach((q, r) => this.merger.merge(ids, distances, q * k, k, got.ids, got.distances, r * k));
    }
    return { ids, distances };
  }
}

/** Merges sorted result lists of k slots (ids NO_ID past the last result) into sorted k slots. */
export class SortedMerge {
  private ids = new Uint32Array(0);
  private distances = new Float32Array(0);

  /**
   * Merge the sorted results (k slots at `from` of addIds / addDist) into the sorted k slots at `at`
   * of ids / distances.
   */
  merge(ids: Uint32Array, distances: Float32Array, at: number, k: number, addIds: Uint32Array, addDist: Float32Array, from: number): void {
    if (this.ids.length < k) {
      this.ids = new Uint32Array(k);
      this.distances = new Float32Array(k);
    }
    const outIds = this.ids;
    const outDist = this.distances;
    let a = at;
    let b = from;
    for (let i = 0; i < k; i++) {
      if (addIds[b] !== NO_ID && (ids[a] === NO_ID || addDist[b] < distances[a])) {
        outIds[i] = addIds[b];
        outDist[i] = addDist[b++];
      } else {
        outIds[i] = ids[a];
        outDist[i] = distances[a++];
      }
    }
    ids.set(outIds.subarray(0, k), at);
    distances.set(outDist.subarray(0, k), at);
  }
}

/** Build progress weights of one shard's phases (their share of its time, about). */
const PHASE_SHARE = { zones: 0.1, pq: 0.1, graph: 0.8 } as const;

/**
 * A sharded index over x (n rows, unit length under cosine) in `shards` parts: the partition, then
 * each shard's build one after another (each on `options.threads`). Progress: 'zones' while rows
 * are partitioned, then 'graph' across the shards' builds.
 */
export async function buildShards(
  x: Float32Array, ids: Uint32Array, o: ResolvedOptions, fixedSearch: SearchOptions, options: BuildOptions, shards: number,
): Promise<{ shards: Shards; search: ResolvedSearchOptions; device: DeviceUse | null }> {
  const { dim } = o;
  const n = ids.length;
  const pacer = new Pacer(options.signal, 'build');
  const progress = options.onProgress ?? (() => {});
  progress('zones', 0);
  const partOf = await partitionRows(createKernels(new Arena()), x, n, dim, shards, o.seed + 3, pacer);
  progress('zones', 1);
  const sizes = new Uint32Array(shards);
  for (let i = 0; i < n; i++) sizes[partOf[i]]++;
  const parts: Built[] = [];
  let search: ResolvedSearchOptions | null = null;
  let device: DeviceUse | null = null;
  let done = 0;
  progress('graph', 0);
  for (let p = 0; p < shards; p++) {
    const size = sizes[p];
    if (size === 0) continue;
    // the part's rows, read where they are (never gathered into a copy), and its ids
    const members = new Uint32Array(size);
    for (let i = 0, r = 0; i < n; i++) if (partOf[i] === p) members[r++] = i;
    const rows = new InputRows(x, dim, members);
    const partIds = Uint32Array.from(members, (i) => ids[i]);
    await pacer.step();
    const partOptions = { ...o, zones: o.zones === undefined ? undefined : Math.max(1, Math.round((o.zones * size) / n)) };
    const built = await buildIndex(rows, partIds, partOptions, fixedSearch, {
      threads: options.threads,
      signal: options.signal,
      device: options.device,
      onProgress: (phase, f) => {
        if (phase !== 'zones' && phase !== 'pq' && phase !== 'graph') return;
        const before = phase === 'zones' ? 0 : phase === 'pq' ? PHASE_SHARE.zones : PHASE_SHARE.zones + PHASE_SHARE.pq;
        progress('graph', (done + size * (before + PHASE_SHARE[phase] * f)) / n);
      },
    });
    parts.push(built.built);
    device = built.device ?? device;
    // the defaults follow the zone count: the shards' are alike, the widest kept
    search = search && search.nProbe >= built.search.nProbe ? search : built.search;
    done += size;
  }
  progress('graph', 1);
  return { shards: new Shards(parts, routerOver(parts)), search: search!, device };
}

/** Whether a search looks in every shard: a filter (its allowed vectors may lie anywhere) or a scan traversal. */
export function searchesEveryShard(filter: SearchFilter | undefined, opts: ResolvedSearchOptions): boolean {
  return filter !== undefined || scansEveryVector(opts.traversal);
}
