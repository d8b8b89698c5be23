/**
 * The navigable graph: one flat proximity graph over all nodes (HNSW's base layer without the
 * upper layers: zone medoids play the role of HNSW's upper layers as entry points).
 *
 * Adjacency with fixed degree R (the papers' M0; `degree` in the options).
 * Layout: Uint32Array[n * (R + 1)]; row i starts at i * (R + 1) = [count, nbr_0 .. nbr_{R-1}].
 * Invariants: count <= R; nbr_j < n for j < count; no self links; no repeated neighbour.
 *
 * Construction inserts nodes one at a time (assembly/graph.ts `insertNode`): zone medoids first, so
 * every zone has an entry point from the start, then all other nodes in rounds over the zones
 * (default; zone after zone alone lowers recall, a random order alone is slow: see the README).
 * Each insertion searches from the medoids of the `buildProbe` zones nearest the node.
 */
import type { Kernels } from './kernels/wasm.js';
import { Rng } from './random.js';
import type { GraphShape } from './options.js';
import { groupProbeFor, type ZoneLayout } from './zones.js';

export interface GraphBuildOptions {
  /** Out-degree bound R. */
  degree: number;
  /** Beam width L during construction (efConstruction). */
  efConstruction: number;
  /** Robust-prune relaxation (1 = HNSW heuristic; > 1 keeps longer edges, as in Vamana). */
  alpha: number;
  /** Zones whose medoids seed each insertion's search. */
  buildProbe: number;
  /**
   * Graph shape. 'zone-rounds': one graph, zone medoids first, then rounds over the zones (see
   * zoneRounds). 'unified': one graph, medoids first, then a seeded random order. 'zone-order': one
   * graph inserted zone by zone. 'per-zone': an independent graph per zone (edges never leave a
   * zone). See README "Design decisions" for what each measured.
   */
  shape: GraphShape;
  seed: number;
  /**
   * false: the nodes join a built graph (no medoid skeleton; batches double from one so that each
   * node also finds those added shortly before it). Default true.
   */
  fresh?: boolean;
  /** Longest stretch of work on this thread before yielding to the event loop (ms). Default 50; Infinity never yields. */
  yieldEveryMs?: number;
  /** Called with the number of nodes inserted so far. */
  onProgress?: (done: number, total: number) => void;
}

/** Pointers the graph build reads from the arena. */
export interface GraphInputs {
  vectorsPtr: number;
  n: number;
  dim: number;
  metric: number;
  zones: ZoneLayout;
  /** Rows at vectorsPtr are binary16 (an index's stored vectors) rather than float32. */
  half?: boolean;
  /** Bitmap of deleted nodes (bit set), which searches cross but new nodes never link to; 0: none. */
  deletedPtr?: number;
  /** arena copies of the zone tables, used by selectZones */
  centroidsPtr: number;
  groupCentroidsPtr: number;
  groupStartPtr: number;
}

/** Longest stretch of synchronous work before the build yields to the event loop (ms). */
const YIELD_EVERY_MS = 50;
/** Batches grow with the graph: done / BATCH_DIVISOR nodes at a time, at most MAX_BATCH. */
const BATCH_DIVISOR = 32;
const MAX_BATCH = 4096;
/** Batches smaller than this run on the calling thread (a worker round trip would cost more). */
const MIN_PARALLEL_BATCH = 64;

/**
 * Fields of a build context block (u32 each) read by assembly/graph.ts buildOut / buildBack.
 * Keep in step with class BuildContext there (same order).
 */
const BCTX = {
  vectors: 0, dim: 1, metric: 2, adjacency: 3, degree: 4, L: 5, alpha: 6, centroids: 7, nZones: 8,
  groupCentroids: 9, groupStart: 10, nGroups: 11, groupProbe: 12, probe: 13, zoneEntry: 14,
  zoneStart: 15, zoneOf: 16, perZone: 17, order: 18, n: 19, visited: 20, epoch: 21, scratch: 22,
  entries: 23, zoneIds: 24, zoneDist: 25, groupScratch: 26, half: 27, deleted: 28,
} as const;
const BCTX_FIELDS = 29;

/** Bytes of a lane's link scratch (assembly/graph.ts linkOut): pool, neighbour list, two f32 rows. */
export function linkScratchBytes(L: number, R: number, dim: number): number {
  return L * 8 + (R + 1) * 8 + dim * 8;
}

/** Runs build slices on worker threads (src/parallel.ts); absent: everything on this thread. */
export interface BuildWorkers {
  lanes: number;
  /** Run `kind` for order[from..to) with the lane's context; lane/lanes for buildBack. */
  run(kind: 'buildOut' | 'buildBack', ctx: number, from: number, to: number, lane: number, lanes: number): Promise<void>;
}

/**
 * Build the graph into a fresh adjacency region; returns its byte offset.
 *
 * Nodes are inserted in batches that grow with the graph (a thirty-second of the nodes inserted so
 * far, at most 4096). Within a batch, every node first searches the graph as it stood before the
 * batch and writes its own out-links (buildOut, in parallel across lanes), then back-links are
 * added (buildBack), each lane owning the targets with id % lanes == lane and adding their links in
 * batch order. Neither phase depends on the lane count, so the same seed and data give the same
 * graph on any number of threads. Yields to the event loop between batches.
 */
export async function buildGraph(
  kernels: Kernels, input: GraphInputs, options: GraphBuildOptions, workers?: BuildWorkers,
): Promise<number> {
  const { arena } = kernels;
  const { n, zones } = input;
  const R = options.degree;
  const adjacencyPtr = arena.alloc(n * (R + 1) * 4);
  arena.u32(adjacencyPtr, n * (R + 1)).fill(0);
  await linkNodes(kernels, input, adjacencyPtr, insertionOrder(zones, n, options), 0, options, workers);
  return adjacencyPtr;
}

/**
 * Insert the nodes listed in `order` into the graph at adjacencyPtr, whose other `linked` nodes are
 * already in place. A fresh build (options.fresh) first links the zone medoids one at a time.
 * Same batching, parallelism and determinism as buildGraph.
 */
export async function linkNodes(
  kernels: Kernels, input: GraphInputs, adjacencyPtr: number, order: Uint32Array, linked: number,
  options: GraphBuildOptions, workers?: BuildWorkers,
): Promise<void> {
  const { arena, k: kern } = kernels;
  const { n, dim, metric, zones } = input;
  const R = options.degree;
  const L = Math.max(options.efConstruction, R);
  const total = order.length;
  if (total === 0) return;
  const fresh = options.fresh !== false;

  const mark = arena.mark();
  try {
    const probe = Math.max(1, Math.min(options.buildProbe, zones.nZones));
    const groupProbe = groupProbeFor(probe, zones.nGroups);
    const perZone = options.shape === 'per-zone';
    const orderPtr = arena.allocFrom(order);
    // zone of each node: read only by per-zone graphs
    const zoneOf = new Uint32Array(perZone ? n : 1);
    if (perZone) for (let z = 0; z < zones.nZones; z++) zoneOf.fill(z, zones.zoneStart[z], zones.zoneStart[z + 1]);
    const shared = {
      [BCTX.vectors]: input.vectorsPtr, [BCTX.dim]: dim, [BCTX.metric]: metric, [BCTX.adjacency]: adjacencyPtr,
      [BCTX.degree]: R, [BCTX.L]: L, [BCTX.alpha]: new Uint32Array(Float32Array.of(options.alpha).buffer)[0],
      [BCTX.centroids]: input.centroidsPtr, [BCTX.nZones]: zones.nZones, [BCTX.groupCentroids]: input.groupCentroidsPtr,
      [BCTX.groupStart]: input.groupStartPtr, [BCTX.nGroups]: zones.nGroups, [BCTX.groupProbe]: groupProbe,
      [BCTX.probe]: probe, [BCTX.zoneEntry]: arena.allocFrom(zones.zoneEntry), [BCTX.zoneStart]: arena.allocFrom(zones.zoneStart),
      [BCTX.zoneOf]: arena.allocFrom(zoneOf), [BCTX.perZone]: perZone ? 1 : 0, [BCTX.order]: orderPtr, [BCTX.n]: n, [BCTX.half]: input.half ? 1 : 0, [BCTX.deleted]: input.deletedPtr ?? 0,
    } as Record<number, number>;
    const lanes = workers?.lanes ?? 1;
    const contexts: number[] = [];
    for (let lane = 0; lane < lanes; lane++) {
      const ctx = arena.alloc(BCTX_FIELDS * 4);
      const visited = arena.alloc(n * 2);
      arena.u16(visited, n).fill(0);
      const fields = {
        ...shared, [BCTX.visited]: visited, [BCTX.epoch]: 0,
        [BCTX.scratch]: arena.alloc(linkScratchBytes(L, R, dim)), [BCTX.entries]: arena.alloc(probe * 4),
        [BCTX.zoneIds]: arena.alloc(probe * 4), [BCTX.zoneDist]: arena.alloc(probe * 4),
        [BCTX.groupScratch]: arena.alloc(Math.max(1, groupProbe) * 8),
      };
      const view = arena.u32(ctx, BCTX_FIELDS);
      for (const [field, value] of Object.entries(fields)) view[Number(field)] = value;
      contexts.push(ctx);
    }

    // the skeleton of a fresh build: zone medoids, one at a time, entered at the first medoid
    // (per-zone graphs start each zone at its medoid with no links)
    const first = !fresh || perZone ? 0 : zones.nZones;
    const ctx0 = contexts[0];
    const scratch0 = arena.u32(ctx0, BCTX_FIELDS)[BCTX.scratch];
    const entries0 = arena.u32(ctx0, BCTX_FIELDS)[BCTX.entries];
    const visited0 = arena.u32(ctx0, BCTX_FIELDS)[BCTX.visited];
    let epoch = 0;
    for (let i = 1; i < first; i++) {
      arena.u32(entries0, 1)[0] = order[0];
      if (++epoch === 65536) {
        arena.u16(visited0, n).fill(0);
        epoch = 1;
      }
      const half = input.half ? 1 : 0;
      kern.linkOut(order[i], input.vectorsPtr, dim, metric, adjacencyPtr, R, entries0, 1, L, options.alpha, visited0, epoch, scratch0, 0, n, half, 0);
      kern.linkBack(order[i], input.vectorsPtr, dim, metric, adjacencyPtr, R, L, options.alpha, scratch0, 0, 1, half);
    }
    arena.u32(ctx0, BCTX_FIELDS)[BCTX.epoch] = epoch;

    let done = fresh ? Math.max(1, first) : 0;
    let lastYield = performance.now();
    while (done < total) {
      let size = Math.min(total - done, MAX_BATCH, Math.max(1, Math.floor((linked + done) / BATCH_DIVISOR)));
      if (!fresh) size = Math.min(size, Math.max(1, done));
      const from = done;
      const to = done + size;
      if (!workers || size < MIN_PARALLEL_BATCH) {
        kern.buildOut(ctx0, from, to);
        kern.buildBack(ctx0, from, to, 0, 1);
        if (performance.now() - lastYield > (options.yieldEveryMs ?? YIELD_EVERY_MS)) {
          await new Promise<void>((resolve) => setTimeout(resolve, 0));
          lastYield = performance.now();
        }
      } else {
        // lane 0 runs on this thread while the workers run the others
        const step = Math.ceil(size / lanes);
        const outs = contexts.slice(1).map((ctx, i) =>
          workers.run('buildOut', ctx, Math.min(to, from + (i + 1) * step), Math.min(to, from + (i + 2) * step), i + 1, lanes));
        kern.buildOut(ctx0, from, Math.min(to, from + step));
        await Promise.all(outs);
        const backs = contexts.slice(1).map((ctx, i) => workers.run('buildBack', ctx, from, to, i + 1, lanes));
        kern.buildBack(ctx0, from, to, 0, lanes);
        await Promise.all(backs);
      }
      done = to;
      options.onProgress?.(done, total);
    }
  } finally {
    arena.release(mark);
  }
}


/** Zone medoids first (every zone has an entry point from the start), then the shape's order. */
function insertionOrder(zones: ZoneLayout, n: number, options: GraphBuildOptions): Uint32Array {
  const isEntry = new Uint8Array(n);
  for (let z = 0; z < zones.nZones; z++) isEntry[zones.zoneEntry[z]] = 1;
  const rest =
    options.shape === 'unified' ? new Rng(options.seed).permutation(n)
    : options.shape === 'zone-rounds' ? zoneRounds(zones, n, new Rng(options.seed))
    : identity(n);
  const order = new Uint32Array(n);
  let o = 0;
  for (let z = 0; z < zones.nZones; z++) order[o++] = zones.zoneEntry[z];
  for (let i = 0; i < n; i++) if (!isEntry[rest[i]]) order[o++] = rest[i];
  return order;
}

function identity(n: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

/** Rounds over the zones: each round inserts the next slice of every zone's (shuffled) members. */
const ROUNDS = 8;

/**
 * Insertion order that grows every zone evenly, like a random order, while consecutive insertions
 * stay in one zone (its vectors and links stay in cache): round r takes, zone after zone, the
 * members whose shuffled rank within their zone falls in slice r of ROUNDS.
 */
function zoneRounds(zones: ZoneLayout, n: number, rng: Rng): Uint32Array {
  const order = new Uint32Array(n);
  const shuffled: Uint32Array[] = [];
  for (let z = 0; z < zones.nZones; z++) {
    const from = zones.zoneStart[z];
    const members = rng.permutation(zones.zoneStart[z + 1] - from);
    for (let i = 0; i < members.length; i++) members[i] += from;
    shuffled.push(members);
  }
  let o = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const members of shuffled) {
      const a = Math.floor((r * members.length) / ROUNDS);
      const b = Math.floor(((r + 1) * members.length) / ROUNDS);
      for (let i = a; i < b; i++) order[o++] = members[i];
    }
  }
  return order;
}
