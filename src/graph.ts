/**
 * The navigable graph: one flat proximity graph over all nodes (HNSW's base layer without the
 * upper layers: zone medoids play the role of HNSW's upper layers as entry points).
 *
 * Adjacency with fixed degree R (the papers' M0; `degree` in the options).
 * Layout: Uint32Array[n * (R + 1)]; row i starts at i * (R + 1) = [count, nbr_0 .. nbr_{R-1}].
 * Invariants: count <= R; nbr_j < n for j < count; no self links; no repeated neighbour. (While a
 * fresh build links, rows are wider, with room past R: see buildGraph.)
 *
 * Construction inserts nodes one at a time (assembly/graph.ts linkOut, linkBack): zone medoids first, so
 * every zone has an entry point from the start, then all other nodes in rounds over the zones
 * (default; zone after zone alone lowers recall, a random order alone is slow: see the README).
 * Each insertion searches from the medoids of the `buildProbe` zones nearest the node.
 *
 * Reachability: after a build or a layout (relayout add, compaction) a walk from any one zone's
 * entry point reaches every node (per-zone graphs: every node of its zone); after an in-place add,
 * a walk from the entry points reaches every live node. connectGraph restores this where pruning
 * cut a node off (issue 15).
 */
import type { Kernels } from './kernels/wasm.js';
import type { Arena } from './memory.js';
import { Rng } from './random.js';
import type { GraphShape } from './options.js';
import { countBits, hasBit } from './ids.js';
import { groupProbeFor, type ZoneLayout } from './zones.js';
import { Pacer, pacing, runPaced, runSteps, type Steps, yieldToEventLoop } from './pace.js';

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
   * A fresh build (buildGraph) lets lists hold up to ceil(slack * degree) links while nodes are
   * inserted, re-pruning a list back to degree when it overflows and trimming every list to degree
   * at the end (DiskANN's slack): a re-prune every few back-links instead of on each one to a full
   * list. Default graphBuild.slack (1.3); 1: none. Adds to a built graph link without slack.
   */
  slack?: number;
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
  /**
   * How linking ends (connectGraph): 'all' walks the whole graph for nodes the entry points do not
   * reach (default); 'changed' checks only the linked nodes and those that lost an in-link, for
   * small adds to a graph whose nodes were all reachable (one lane: no workers).
   */
  connect?: 'all' | 'changed';
  /** Longest stretch of work on this thread before yielding to the event loop (ms). Default pacing.everyMs (50); Infinity never yields. */
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

/**
 * Default GraphBuildOptions.slack. On data where every list fills (random-100k: mean out-degree
 * 32.0 of 32) re-pruning on each back-link cost more than the searches, and the graph came out
 * worse (BENCHMARKS.md "Performance work"). Benchmarks set it to compare builds in one process.
 * @internal
 */
export const graphBuild = { slack: 1.3 };

/** Links each row has room for while a fresh build links its graph (see GraphBuildOptions.slack). */
export function linkCapacity(degree: number, slack = graphBuild.slack): number {
  return Math.max(degree, Math.ceil(degree * slack));
}

/** Batches grow with the graph: done / BATCH_DIVISOR nodes at a time, at most MAX_BATCH. */
const BATCH_DIVISOR = 32;
const MAX_BATCH = 4096;
/** Batches smaller than this run on the calling thread (a worker round trip would cost more). */
const MIN_PARALLEL_BATCH = 64;
/** Nodes the calling thread links per kernel call within a batch (a few milliseconds), with a turn of the event loop between calls when one is due. */
const LINK_PIECE = 64;
/** Nodes the calling thread trims per kernel call (a fraction of a list each on most data). */
const TRIM_PIECE = 1024;
/** Rows narrowed per kernel call (tens of megabytes moved), in order. */
const NARROW_PIECE = 1 << 18;
/** Most a pool is widened past efConstruction for the removed nodes it holds (as filtered searches widen ef). */
const MAX_WIDEN = 16;
/** Walks over the whole graph connectGraph makes at most (a repair that re-prunes can cut another node off). */
const MAX_CONNECT_ROUNDS = 8;
/** connectGraph's search for a usable neighbour widens its pool at most this many times before it takes the nearest usable entry. */
const WIDEN_AT_MOST = 8;
/** connectGraph tries the prune rule on at most this many candidates before it forces a link to the nearest. */
const TRY_AMONG = 32;
/** connectGraph links from the nearest of this many candidates that has room before it re-prunes a full list. */
const ROOM_AMONG = 8;
/** connectGraph checks a node first from the entries of this many zones nearest it, with this beam, then from all. */
const CHECK_PROBE = 2;
const CHECK_BEAM = 16;

/**
 * Fields of a build context block (u32 each) read by assembly/graph.ts buildOut / buildBack.
 * Keep in step with class BuildContext there (same order; test/context-blocks.test.ts compares the two).
 */
export const BCTX = {
  vectors: 0, dim: 1, metric: 2, adjacency: 3, degree: 4, L: 5, alpha: 6, centroids: 7, nZones: 8,
  groupCentroids: 9, groupStart: 10, nGroups: 11, groupProbe: 12, probe: 13, zoneEntry: 14,
  zoneStart: 15, zoneOf: 16, perZone: 17, order: 18, n: 19, visited: 20, epoch: 21, scratch: 22,
  entries: 23, zoneIds: 24, zoneDist: 25, groupScratch: 26, half: 27, deleted: 28, dropped: 29, capacity: 30,
  candidates: 31, candidateDist: 32, candidateWidth: 33, candidateFirst: 34, outLists: 35,
} as const;
const BCTX_FIELDS = 36;

/** A build context block in the arena holding `fields` (alpha as float32 bits, the rest as u32); its offset. */
export function allocBuildContext(arena: Arena, fields: Record<keyof typeof BCTX, number>): number {
  const ctx = arena.alloc(BCTX_FIELDS * 4);
  const view = arena.u32(ctx, BCTX_FIELDS);
  for (const [field, offset] of Object.entries(BCTX)) view[offset] = fields[field as keyof typeof BCTX];
  arena.f32(ctx + BCTX.alpha * 4, 1)[0] = fields.alpha;
  return ctx;
}

/** Bytes of a lane's link scratch (assembly/graph.ts linkOut): pool, neighbour list, two f32 rows. */
export function linkScratchBytes(L: number, capacity: number, dim: number): number {
  return L * 8 + (capacity + 1) * 8 + dim * 8;
}

/** The build kernels a worker runs (assembly/graph.ts). */
export type BuildKernel = 'buildOut' | 'buildBack' | 'trimLists' | 'pruneCandidates' | 'reverseLinks';

/** Runs build slices on worker threads (src/parallel.ts); absent: everything on this thread. */
export interface BuildWorkers {
  lanes: number;
  /** Run `kind` for order[from..to) (trimLists, pruneCandidates, reverseLinks: nodes [from, to)) with the lane's context; lane/lanes for buildBack and reverseLinks. */
  run(kind: BuildKernel, ctx: number, from: number, to: number, lane: number, lanes: number): Promise<void>;
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
 *
 * Lists have room for options.slack * degree links while linking (see GraphBuildOptions.slack):
 * the region is laid out at that width, narrowed to degree + 1 words per row at the end, and its
 * tail handed back to the arena (the adjacency is the arena's last allocation by then).
 */
export async function buildGraph(
  kernels: Kernels, input: GraphInputs, options: GraphBuildOptions, workers?: BuildWorkers,
): Promise<number> {
  const { arena } = kernels;
  const { n, zones } = input;
  const R = options.degree;
  const capacity = linkCapacity(R, options.slack);
  const adjacencyPtr = arena.alloc(n * (capacity + 1) * 4);
  arena.u32(adjacencyPtr, n * (capacity + 1)).fill(0);
  await linkNodes(kernels, input, adjacencyPtr, insertionOrder(zones, n, options), 0, options, workers, capacity);
  // linkNodes hands back what it took after the adjacency, so its unused tail is the arena's top
  if (arena.mark() === adjacencyPtr + n * (capacity + 1) * 4) arena.release(adjacencyPtr + n * (R + 1) * 4);
  return adjacencyPtr;
}

/**
 * Insert the nodes listed in `order` into the graph at adjacencyPtr, whose other `linked` nodes are
 * already in place, then link any of the linked + order.length nodes in use that the zone entry
 * points do not reach (connectGraph). A fresh build (options.fresh) first links the zone medoids one
 * at a time. Same batching, parallelism and determinism as buildGraph.
 *
 * Rows hold `capacity` links (stride capacity + 1 words) while linking; above degree, the lists are
 * trimmed to degree and the rows narrowed to degree + 1 words before connectGraph, in place.
 */
export async function linkNodes(
  kernels: Kernels, input: GraphInputs, adjacencyPtr: number, order: Uint32Array, linked: number,
  options: GraphBuildOptions, workers?: BuildWorkers, capacity = options.degree,
): Promise<void> {
  const { arena, k: kern } = kernels;
  const { n, dim, metric, zones } = input;
  const R = options.degree;
  const total = order.length;
  if (total === 0) return;
  const fresh = options.fresh !== false;
  const L = widenedPool(arena, input, linked + total, Math.max(options.efConstruction, R));

  const mark = arena.mark();
  try {
    const probe = Math.max(1, Math.min(options.buildProbe, zones.nZones));
    const groupProbe = groupProbeFor(probe, zones.nGroups);
    const perZone = options.shape === 'per-zone';
    const orderPtr = arena.allocFrom(order);
    // zone of each node: read only by per-zone graphs
    const zoneOf = new Uint32Array(perZone ? n : 1);
    if (perZone) for (let z = 0; z < zones.nZones; z++) zoneOf.fill(z, zones.zoneStart[z], zones.zoneStart[z + 1]);
    const lanes = workers?.lanes ?? 1;
    // 'changed': back-links note the nodes they drop (one lane), for connectGraph to check
    const noting = options.connect === 'changed' && lanes === 1;
    const droppedCapacity = Math.min(total * R * R, 1 << 20);
    const droppedPtr = noting ? arena.alloc((2 + droppedCapacity) * 4) : 0;
    if (noting) arena.u32(droppedPtr, 2).set([0, droppedCapacity]);
    const contexts = laneContexts(arena, input, lanes, {
      adjacency: adjacencyPtr, degree: R, L, alpha: options.alpha, groupProbe, probe, zoneOf: arena.allocFrom(zoneOf),
      perZone: perZone ? 1 : 0, order: orderPtr, dropped: droppedPtr, capacity,
    });

    // the skeleton of a fresh build: zone medoids, one at a time, entered at the first medoid
    // (per-zone graphs start each zone at its medoid with no links)
    const first = !fresh || perZone ? 0 : zones.nZones;
    const ctx0 = contexts[0];
    const scratch0 = arena.u32(ctx0, BCTX_FIELDS)[BCTX.scratch];
    const entries0 = arena.u32(ctx0, BCTX_FIELDS)[BCTX.entries];
    const visited0 = arena.u32(ctx0, BCTX_FIELDS)[BCTX.visited];
    const pause = pauser(options);
    let epoch = 0;
    for (let i = 1; i < first; i++) {
      if (i % LINK_PIECE === 0) await pause();
      arena.u32(entries0, 1)[0] = order[0];
      if (++epoch === 65536) {
        arena.u16(visited0, n).fill(0);
        epoch = 1;
      }
      const half = input.half ? 1 : 0;
      kern.linkOut(order[i], input.vectorsPtr, dim, metric, adjacencyPtr, R, capacity, entries0, 1, L, options.alpha, visited0, epoch, scratch0, 0, n, half, 0);
      kern.linkBack(order[i], input.vectorsPtr, dim, metric, adjacencyPtr, R, capacity, L, options.alpha, scratch0, 0, 1, half);
    }
    arena.u32(ctx0, BCTX_FIELDS)[BCTX.epoch] = epoch;

    let done = fresh ? Math.max(1, first) : 0;
    while (done < total) {
      let size = Math.min(total - done, MAX_BATCH, Math.max(1, Math.floor((linked + done) / BATCH_DIVISOR)));
      if (!fresh) size = Math.min(size, Math.max(1, done));
      const from = done;
      const to = done + size;
      // The calling thread's share of a batch runs in pieces with turns of the event loop between
      // them. The pieces give the same graph as one call: within a batch no node reaches another
      // before the back-links, so out-links may be found in any split of [from, to), and back-links
      // are split by target (nb % lanes), each target's list changing in the same order.
      if (!workers || size < MIN_PARALLEL_BATCH) {
        for (let a = from; a < to; a += LINK_PIECE) {
          kern.buildOut(ctx0, a, Math.min(to, a + LINK_PIECE));
          await pause();
        }
        const pieces = Math.ceil(size / LINK_PIECE);
        for (let p = 0; p < pieces; p++) {
          kern.buildBack(ctx0, from, to, p, pieces);
          await pause();
        }
      } else {
        // lane 0 runs on this thread while the workers run the others
        const step = Math.ceil(size / lanes);
        const outs = contexts.slice(1).map((ctx, i) =>
          workers.run('buildOut', ctx, Math.min(to, from + (i + 1) * step), Math.min(to, from + (i + 2) * step), i + 1, lanes));
        for (let a = from; a < Math.min(to, from + step); a += LINK_PIECE) {
          kern.buildOut(ctx0, a, Math.min(to, from + step, a + LINK_PIECE));
          await pause();
        }
        await Promise.all(outs);
        const backs = contexts.slice(1).map((ctx, i) => workers.run('buildBack', ctx, from, to, i + 1, lanes));
        // lane 0's targets (nb % lanes == 0) as sub-lanes of lanes * pieces: nb % (lanes * pieces) == p * lanes
        const pieces = Math.ceil(step / LINK_PIECE);
        for (let p = 0; p < pieces; p++) {
          kern.buildBack(ctx0, from, to, p * lanes, lanes * pieces);
          await pause();
        }
        await Promise.all(backs);
      }
      done = to;
      options.onProgress?.(done, total);
    }
    await trimAndNarrow(kernels, adjacencyPtr, linked + total, R, capacity, contexts, workers, pause);
    let changed: Uint32Array | undefined;
    if (noting) {
      const count = arena.u32(droppedPtr, 1)[0];
      // past its capacity the note is incomplete: walk the whole graph instead
      if (count <= droppedCapacity) {
        changed = new Uint32Array(total + count);
        changed.set(order);
        changed.set(arena.u32(droppedPtr + 8, count), total);
      }
    }
    // the check walks the whole graph after a build: paced like the linking above
    await runPaced(connectGraphSteps(kernels, input, adjacencyPtr, linked + total, options, changed), new Pacer(undefined, 'build', options.yieldEveryMs ?? pacing.everyMs));
  } finally {
    arena.release(mark);
  }
}

/** A turn of the event loop once one is due (called between pieces of work on this thread). */
function pauser(options: Pick<GraphBuildOptions, 'yieldEveryMs'>): () => Promise<void> {
  let lastYield = performance.now();
  return async () => {
    if (performance.now() - lastYield <= (options.yieldEveryMs ?? pacing.everyMs)) return;
    await yieldToEventLoop();
    lastYield = performance.now();
  };
}

/**
 * One build context block per lane (lane 0 is this thread) in the arena: the graph's inputs and
 * `fields`, and the lane's own visited marks and link scratch.
 */
function laneContexts(
  arena: Arena, input: GraphInputs, lanes: number,
  fields: Pick<Record<keyof typeof BCTX, number>, 'adjacency' | 'degree' | 'L' | 'alpha' | 'capacity' | 'probe' | 'groupProbe'> & Partial<Record<keyof typeof BCTX, number>>,
): number[] {
  const { n, dim, zones } = input;
  const shared = {
    vectors: input.vectorsPtr, dim, metric: input.metric,
    centroids: input.centroidsPtr, nZones: zones.nZones, groupCentroids: input.groupCentroidsPtr,
    groupStart: input.groupStartPtr, nGroups: zones.nGroups,
    zoneEntry: arena.allocFrom(zones.zoneEntry), zoneStart: arena.allocFrom(zones.zoneStart), zoneOf: 0,
    perZone: 0, order: 0, n, half: input.half ? 1 : 0, deleted: input.deletedPtr ?? 0, dropped: 0,
    candidates: 0, candidateDist: 0, candidateWidth: 0, candidateFirst: 0, outLists: 0,
    ...fields,
  };
  const contexts: number[] = [];
  for (let lane = 0; lane < lanes; lane++) {
    const visited = arena.alloc(n * 2);
    arena.u16(visited, n).fill(0);
    contexts.push(allocBuildContext(arena, {
      ...shared, visited, epoch: 0, scratch: arena.alloc(linkScratchBytes(fields.L, fields.capacity, dim)), entries: arena.alloc(fields.probe * 4),
      zoneIds: arena.alloc(fields.probe * 4), zoneDist: arena.alloc(fields.probe * 4), groupScratch: arena.alloc(Math.max(1, fields.groupProbe) * 8),
    }));
  }
  return contexts;
}

/** Lists over R (rows of `capacity` links) pruned back to R, each lane a range of nodes, then the rows narrowed to R + 1 words. */
async function trimAndNarrow(
  kernels: Kernels, adjacencyPtr: number, used: number, R: number, capacity: number, contexts: number[], workers: BuildWorkers | undefined,
  pause: () => Promise<void>,
): Promise<void> {
  if (capacity <= R) return;
  const kern = kernels.k;
  const lanes = contexts.length;
  const step = Math.ceil(used / lanes);
  const trims = workers && used >= MIN_PARALLEL_BATCH
    ? contexts.slice(1).map((ctx, i) => workers.run('trimLists', ctx, Math.min(used, (i + 1) * step), Math.min(used, (i + 2) * step), i + 1, lanes))
    : [];
  const mine = trims.length > 0 ? Math.min(used, step) : used;
  for (let a = 0; a < mine; a += TRIM_PIECE) {
    kern.trimLists(contexts[0], a, Math.min(mine, a + TRIM_PIECE));
    await pause();
  }
  await Promise.all(trims);
  for (let a = 0; a < used; a += NARROW_PIECE) {
    kern.narrowRows(adjacencyPtr, a, Math.min(used, a + NARROW_PIECE), capacity, R);
    await pause();
  }
}

/**
 * Each node's candidate neighbours, nodes [from, to) at a time: `width` node ids per node, nearest
 * first, NO_ID (0xffffffff) past the last; the node itself may be among them. Distances as the
 * kernels compute them (squared L2, or negated inner product).
 */
export interface CandidateSource {
  width: number;
  /** Nodes per call. */
  chunk: number;
  candidates(from: number, to: number): Promise<{ ids: Uint32Array; distances: Float32Array }>;
}

/** Nodes the calling thread reverses per kernel call, in order (a few milliseconds). */
const REVERSE_PIECE = 4096;

/**
 * Build the graph from candidate neighbours given for every node (a GPU's k nearest rows among the
 * node's nearest zones: src/gpu/neighbours.ts) instead of inserting nodes by searching: each node's
 * candidates robust-pruned into its out-links (pruneCandidates, lanes splitting the nodes, the next
 * chunk of candidates fetched meanwhile), then every out-link's reverse added in node order
 * (reverseLinks, lanes owning targets), lists with slack trimmed back to degree, and connectGraph.
 * The same candidates give the same graph on any number of threads. efConstruction and shape play
 * no part (one graph; zone medoids stay the entry points). Returns the adjacency's byte offset, as
 * buildGraph.
 */
export async function linkCandidates(
  kernels: Kernels, input: GraphInputs, options: GraphBuildOptions, source: CandidateSource, workers?: BuildWorkers,
): Promise<number> {
  const { arena, k: kern } = kernels;
  const { n } = input;
  const R = options.degree;
  const capacity = linkCapacity(R, options.slack);
  const adjacencyPtr = arena.alloc(n * (capacity + 1) * 4);
  arena.u32(adjacencyPtr, n * (capacity + 1)).fill(0);
  const mark = arena.mark();
  let pending: Promise<{ ids: Uint32Array; distances: Float32Array }> | null = null;
  // worker tasks in flight: waited for before the arena is released on an error or an abort
  let inFlight: Promise<void>[] = [];
  // a request fetched ahead may fail while this chunk is pruned: handled here, thrown where awaited
  const ahead = (from: number, to: number) => {
    const request = source.candidates(from, to);
    request.catch(() => {});
    return request;
  };
  try {
    const { width, chunk } = source;
    const lanes = workers?.lanes ?? 1;
    const candidates = arena.alloc(chunk * width * 4);
    const candidateDist = arena.alloc(chunk * width * 4);
    const outLists = arena.alloc(n * (R + 1) * 4);
    // the link scratch's pool holds one node's candidates
    const L = Math.max(options.efConstruction, R, width);
    const contexts = laneContexts(arena, input, lanes, {
      adjacency: adjacencyPtr, degree: R, L, alpha: options.alpha, capacity, probe: 1, groupProbe: 0,
      candidates, candidateDist, candidateWidth: width, outLists,
    });
    const pause = pauser(options);
    pending = n > 0 ? ahead(0, Math.min(n, chunk)) : null;
    for (let from = 0; from < n; from += chunk) {
      const to = Math.min(n, from + chunk);
      const got = await pending!;
      arena.u32(candidates, (to - from) * width).set(got.ids);
      arena.f32(candidateDist, (to - from) * width).set(got.distances);
      // the next chunk's candidates are computed while this one is pruned
      pending = to < n ? ahead(to, Math.min(n, to + chunk)) : null;
      for (const ctx of contexts) arena.u32(ctx, BCTX_FIELDS)[BCTX.candidateFirst] = from;
      const step = Math.ceil((to - from) / lanes);
      const prunes = inFlight = workers && to - from >= MIN_PARALLEL_BATCH
        ? contexts.slice(1).map((ctx, i) =>
          workers.run('pruneCandidates', ctx, Math.min(to, from + (i + 1) * step), Math.min(to, from + (i + 2) * step), i + 1, lanes))
        : [];
      const mine = prunes.length > 0 ? Math.min(to, from + step) : to;
      for (let a = from; a < mine; a += LINK_PIECE) {
        kern.pruneCandidates(contexts[0], a, Math.min(mine, a + LINK_PIECE));
        await pause();
      }
      await Promise.all(prunes);
      options.onProgress?.(to, 2 * n);
    }
    // reverse links: the workers each own their targets over all nodes; this thread its own in pieces
    const reverses = inFlight = workers && n >= MIN_PARALLEL_BATCH ? contexts.slice(1).map((ctx, i) => workers.run('reverseLinks', ctx, 0, n, i + 1, lanes)) : [];
    const shares = reverses.length + 1;
    for (let a = 0; a < n; a += REVERSE_PIECE) {
      kern.reverseLinks(contexts[0], a, Math.min(n, a + REVERSE_PIECE), 0, shares);
      options.onProgress?.(n + Math.min(n, a + REVERSE_PIECE), 2 * n);
      await pause();
    }
    await Promise.all(reverses);
    await trimAndNarrow(kernels, adjacencyPtr, n, R, capacity, contexts, workers, pause);
    await runPaced(connectGraphSteps(kernels, input, adjacencyPtr, n, options), new Pacer(undefined, 'build', options.yieldEveryMs ?? pacing.everyMs));
  } catch (err) {
    // stopped (an abort, the source failing): the workers finish their share before the memory they write is released
    await Promise.allSettled(inFlight);
    throw err;
  } finally {
    arena.release(mark);
  }
  if (arena.mark() === adjacencyPtr + n * (capacity + 1) * 4) arena.release(adjacencyPtr + n * (R + 1) * 4);
  return adjacencyPtr;
}

/**
 * Beam width for linking among removed nodes: they lead the search but are no neighbours, so the
 * pool is widened until about `L` of it can be live (at most MAX_WIDEN times; all `used` nodes at most).
 */
function widenedPool(arena: Kernels['arena'], input: GraphInputs, used: number, L: number): number {
  if (!input.deletedPtr) return L;
  const live = used - countBits(arena.u8(input.deletedPtr, (used + 7) >> 3), used);
  return Math.max(L, Math.min(used, L * MAX_WIDEN, Math.ceil((L * used) / Math.max(1, live))));
}

/**
 * Mark what a walk over the adjacency reaches from the nodes `from`: reached[i] = 1 (nodes already
 * marked are not walked again, so a second call extends the first). Removed nodes are walked
 * through, as searches cross them. adjacency: rows as in the header; queue: scratch Uint32Array[n].
 * Returns how many nodes were newly marked.
 */
export function markReachable(
  adjacency: Uint32Array, R: number, from: ArrayLike<number>, reached: Uint8Array, queue: Uint32Array,
): number {
  const stride = R + 1;
  let tail = 0;
  for (let i = 0; i < from.length; i++) {
    const s = from[i];
    if (reached[s]) continue;
    reached[s] = 1;
    queue[tail++] = s;
  }
  // breadth first: each node enters the queue once, so it never outgrows n
  for (let head = 0; head < tail; head++) {
    const row = queue[head] * stride;
    const end = row + 1 + adjacency[row];
    for (let j = row + 1; j < end; j++) {
      const v = adjacency[j];
      if (reached[v]) continue;
      reached[v] = 1;
      queue[tail++] = v;
    }
  }
  return tail;
}

/**
 * Live nodes in [0, n) that no walk from `entries` (the zone entry points) reaches, ascending: no
 * search can return them except through a zone scan. deleted: bitmap of removed nodes (bit set),
 * which the walk crosses but which are not reported; null: none.
 */
export function unreachableNodes(
  adjacency: Uint32Array, R: number, n: number, entries: ArrayLike<number>, deleted: Uint8Array | null,
): Uint32Array {
  const reached = new Uint8Array(n);
  markReachable(adjacency, R, entries, reached, new Uint32Array(n));
  return Uint32Array.from(unreachedLive(reached, deleted));
}

/**
 * Make every live node of [0, used) reachable from whichever zone entry points a search enters at.
 * Incremental insertion leaves nodes behind when later back-links prune away all of a node's
 * in-links (siftsmall: 1 node in 10,000; 100K clustered: 1 %; issue 15), and heavy removal followed
 * by compaction leaves islands (NSG's spanning step repairs the same).
 *
 * With `changed` absent (build, relayout) the whole graph is walked: every live node must be
 * reached from the root (the first zone's entry), and the root from every entry, so that any entry
 * reaches everything (per-zone graphs: each zone from its own entry). With `changed` (in-place
 * adds, where that walk would cost more than the add) only the listed nodes are checked, the new
 * ones and those that lost an in-link, each by an exact search for its own vector that must touch
 * it: if every live node was reachable before, a node reached before is still reached when each
 * node that lost an in-link is (follow its old path from the last dropped edge on it).
 *
 * Rule: an unreached node u gets an in-link from a node near it that the root reaches, found by
 * an exact search (from u's own reached neighbours when it has some, else from the entry points);
 * an entry that cannot reach the root gets an out-link to the nearest node that can. The link goes
 * to the nearest of the ROOM_AMONG nearest lists with room (no edge dropped); failing that, the
 * nearest list that keeps it when pruned back to R as linkBack does; failing that, the nearest list
 * drops its farthest neighbour for it. Removed nodes are crossed but get no link unless nothing live
 * is found. A re-prune drops edges, so the check repeats (at most MAX_CONNECT_ROUNDS times) until
 * nothing is dropped.
 *
 * Inputs: the rows at input.vectorsPtr, the zone entries, the removed bitmap (input.deletedPtr);
 * output: the adjacency at adjacencyPtr, changed in place. Scratch is taken from the arena and
 * released. Returns how many links were added.
 */
export function connectGraph(
  kernels: Kernels, input: GraphInputs, adjacencyPtr: number, used: number,
  options: Pick<GraphBuildOptions, 'degree' | 'efConstruction' | 'alpha' | 'shape'>, changed?: ArrayLike<number>,
): number {
  return runSteps(connectGraphSteps(kernels, input, adjacencyPtr, used, options, changed));
}

/** Nodes connectGraph checks between two of its steps. */
const CONNECT_STEP = 256;

/** connectGraph, yielding after each walk of the graph and every CONNECT_STEP nodes (see src/pace.ts). */
export function* connectGraphSteps(
  kernels: Kernels, input: GraphInputs, adjacencyPtr: number, used: number,
  options: Pick<GraphBuildOptions, 'degree' | 'efConstruction' | 'alpha' | 'shape'>, changed?: ArrayLike<number>,
): Steps<number> {
  const { arena, k: kern } = kernels;
  const { dim, metric, zones } = input;
  const R = options.degree;
  const stride = R + 1;
  const half = input.half ? 1 : 0;
  const rowBytes = dim * (half ? 2 : 4);
  const perZone = options.shape === 'per-zone';
  const entries = zones.zoneEntry.slice();
  if (entries.length === 0 || used === 0) return 0;
  // per-zone graphs never cross zones: each zone's entry is its own root
  const roots = perZone ? entries : entries.subarray(0, 1);
  const deleted = input.deletedPtr ? arena.u8(input.deletedPtr, (used + 7) >> 3).slice() : null;
  const adjacency = () => arena.u32(adjacencyPtr, used * stride);
  // whole-graph mode: what the root reaches, and what reaches the root
  const reached = new Uint8Array(changed ? 0 : used);
  const reaching = new Uint8Array(changed || perZone ? 0 : used);
  const queue = new Uint32Array(changed ? 0 : used);
  const live = (c: number) => !deleted || !hasBit(deleted, c);
  let reversed: ReturnType<typeof reverseEdges> = { start: new Uint32Array(0), sources: new Uint32Array(0) };

  /** Whole-graph mode: mark reached / reaching afresh; whether anything is left to link. */
  const walk = function* (): Steps<boolean> {
    reached.fill(0);
    markReachable(adjacency(), R, roots, reached, queue);
    let left = unreachedLive(reached, deleted).length > 0;
    if (!perZone) {
      yield;
      reversed = reverseEdges(adjacency(), R, used);
      yield;
      reaching.fill(0);
      markReaching(reversed, roots, reaching, queue);
      for (const e of entries) left ||= !reaching[e];
    }
    return left;
  };
  if (changed ? changed.length === 0 : !(yield* walk())) return 0;

  const mark = arena.mark();
  let links = 0;
  try {
    const baseL = widenedPool(arena, input, used, Math.max(options.efConstruction, R));
    let L = baseL;
    const allEntriesPtr = arena.allocFrom(entries);
    const entryIds = arena.alloc(entries.length * 4);
    const entryDist = arena.alloc(entries.length * 4);
    let poolDist = arena.alloc(L * 4);
    let poolIds = arena.alloc(L * 4);
    const visited = arena.alloc(used * 2);
    arena.u16(visited, used).fill(0);
    const entriesPtr = arena.allocFrom(entries);
    const seedsPtr = arena.alloc(Math.max(R, CHECK_PROBE) * 4);
    const probe = Math.min(CHECK_PROBE, entries.length);
    const groupProbe = groupProbeFor(probe, zones.nGroups);
    const zoneIds = arena.alloc(probe * 4);
    const zoneDist = arena.alloc(probe * 4);
    const groupScratch = arena.alloc(Math.max(1, groupProbe) * 8);
    const query = arena.alloc(dim * 4);
    const from = arena.alloc(dim * 4);
    const pruneRow = arena.alloc(dim * 4);
    const candIds = arena.alloc(stride * 4);
    const sortedIds = arena.alloc(stride * 4);
    const sortedDist = arena.alloc(stride * 4);
    const kept = arena.alloc(R * 4);
    const neighbours = arena.alloc(R * 4);
    let epoch = 0;
    // searches since the last dropped edge: a node they touched (visited tag > clean) is reached
    let clean = 0;
    // targets of the edges this repair drops
    let dropped: number[] = [];
    const drop = (c: number) => {
      dropped.push(c);
      clean = epoch;
    };

    /** Row `id` as float32 in the arena: its own address, or decoded into `into` (binary16 rows). */
    const rowAt = (id: number, into: number): number => {
      if (!half) return input.vectorsPtr + id * rowBytes;
      kern.decodeHalfBlock(input.vectorsPtr + id * rowBytes, into, dim);
      return into;
    };

    /** Neighbours of p, and u unless -1, sorted by distance to p into sortedIds / sortedDist; returns their count. */
    const sortedAround = (p: number, u: number): number => {
      const adj = adjacency();
      const count = adj[p * stride];
      const ids = arena.u32(candIds, count + 1);
      ids.set(adj.subarray(p * stride + 1, p * stride + 1 + count));
      if (u >= 0) ids[count] = u;
      const size = u >= 0 ? count + 1 : count;
      return kern.rerank(rowAt(p, from), input.vectorsPtr, dim, metric, half, candIds, size, size, size, sortedIds, sortedDist, 0);
    };

    /** The edge p -> u if p has room or p's pruned list keeps u (dropped edges noted); whether it was made. */
    const tryLink = (p: number, u: number): boolean => {
      const adj = adjacency();
      const count = adj[p * stride];
      if (count < R) {
        adj[p * stride + 1 + count] = u;
        adj[p * stride] = count + 1;
        return true;
      }
      const size = sortedAround(p, u);
      const keep = kern.robustPrune(input.vectorsPtr, dim, metric, sortedIds, sortedDist, size, R, options.alpha, kept, half, pruneRow);
      const keptIds = arena.u32(kept, keep);
      if (!keptIds.includes(u)) return false;
      const row = adjacency();
      for (const c of row.subarray(p * stride + 1, p * stride + 1 + count)) if (!keptIds.includes(c)) drop(c);
      row.set(keptIds, p * stride + 1);
      row[p * stride] = keep;
      return true;
    };

    /** The edge p -> u, p's farthest neighbour giving way when its list is full. */
    const forceLink = (p: number, u: number): void => {
      const size = sortedAround(p, -1);
      const row = adjacency();
      if (size < R) {
        row[p * stride + 1 + size] = u;
        row[p * stride] = size + 1;
        return;
      }
      row.set(arena.u32(sortedIds, size - 1), p * stride + 1);
      drop(arena.u32(sortedIds, size)[size - 1]);
      row[p * stride + size] = u;
    };

    /**
     * Whether a search for u's vector from the entries of the zones nearest it touches u (then u is
     * reached); most nodes pass here, at a fraction of a search from every entry.
     */
    const touchedNearby = (u: number): boolean => {
      if (arena.u16(visited, used)[u] > clean) return true;
      if (perZone) return false;
      const q = rowAt(u, query);
      const found = kern.selectZones(
        q, input.centroidsPtr, zones.nZones, dim, metric, input.groupCentroidsPtr, input.groupStartPtr, zones.nGroups, groupProbe,
        probe, zoneIds, zoneDist, groupScratch, 0, 0, 0,
      );
      const seeds = arena.u32(seedsPtr, found);
      const selected = arena.u32(zoneIds, found);
      for (let i = 0; i < found; i++) seeds[i] = entries[selected[i]];
      if (++epoch === 65536) {
        arena.u16(visited, used).fill(0);
        epoch = 1;
        clean = 0;
      }
      // a narrow beam: it only has to come near u (a miss falls back to the full search)
      kern.searchExact(q, input.vectorsPtr, dim, metric, adjacencyPtr, R, seedsPtr, found, Math.min(L, CHECK_BEAM), visited, epoch, poolDist, poolIds, 0, used, half, neighbours);
      return arena.u16(visited, used)[u] === epoch;
    };

    /**
     * Nodes near u's vector that `usable` admits, nearest first, from an exact search at the entry
     * points (per-zone graphs: u's zone's, within the zone), or at u's own neighbours that `usable`
     * admits when `fromNeighbours` and there are some (they lie near u: a short search); null when
     * the search touched u itself and `touch` asks for that check. Live nodes only, unless the
     * search finds none however wide.
     */
    const nearby = (u: number, usable: (c: number) => boolean, touch: boolean, fromNeighbours: boolean): Uint32Array | null => {
      if (touch && touchedNearby(u)) return null;
      let start = entriesPtr;
      let nEntries = entries.length;
      let lo = 0;
      let hi = used;
      if (perZone) {
        const z = zoneOfNode(zones.zoneStart, u);
        lo = zones.zoneStart[z];
        hi = zones.zoneStart[z + 1];
        arena.u32(entriesPtr, 1)[0] = entries[z];
        nEntries = 1;
      }
      if (fromNeighbours) {
        const adj = adjacency();
        const seeds = arena.u32(seedsPtr, R);
        let count = 0;
        for (let j = 1; j <= adj[u * stride]; j++) if (usable(adj[u * stride + j])) seeds[count++] = adj[u * stride + j];
        if (count > 0) {
          start = seedsPtr;
          nEntries = count;
        }
      }
      const q = rowAt(u, query);
      while (true) {
        if (++epoch === 65536) {
          arena.u16(visited, used).fill(0);
          epoch = 1;
          clean = 0;
        }
        const found = kern.searchExact(q, input.vectorsPtr, dim, metric, adjacencyPtr, R, start, nEntries, L, visited, epoch, poolDist, poolIds, lo, hi, half, neighbours);
        if (touch && arena.u16(visited, used)[u] === epoch) return null;
        kern.stripExpanded(poolIds, found);
        const pool = arena.u32(poolIds, found).filter((c) => c !== u && usable(c));
        const alive = deleted ? pool.filter(live) : pool;
        // nothing live in the pool: a wider pool (up to WIDEN_AT_MOST times; a pool as wide as the
        // graph costs its square), then settle for removed ones, or for none (see nearestEntry)
        const widest = Math.min(hi - lo, baseL * WIDEN_AT_MOST);
        if (alive.length > 0 || L >= widest) return alive.length > 0 ? alive : pool;
        L = widest;
        poolDist = arena.alloc(L * 4);
        poolIds = arena.alloc(L * 4);
      }
    };

    /**
     * The zone entry nearest to u's row that `usable` admits (the root when none does: it reaches
     * itself and is reached): the link of last resort when no search near u finds a usable node.
     */
    const nearestEntry = (u: number, usable: (c: number) => boolean): number => {
      const count = kern.rerank(rowAt(u, query), input.vectorsPtr, dim, metric, half, allEntriesPtr, entries.length, entries.length, entries.length, entryIds, entryDist, 0);
      for (const c of arena.u32(entryIds, count)) if (c !== u && usable(c) && live(c)) return c;
      return roots[0];
    };

    /** Give u an in-link from a node near it that `usable` admits; whether one was added. */
    const linkInto = (u: number, usable: (c: number) => boolean, touch: boolean): boolean => {
      let candidates = nearby(u, usable, touch, !touch);
      if (!candidates) return false;
      if (candidates.length === 0) {
        const p = nearestEntry(u, usable);
        if (p === u) return false;
        candidates = Uint32Array.of(p);
      }
      // a list with room takes u without dropping an edge (a drop may cut another node off)
      const adj = adjacency();
      for (let i = 0; i < Math.min(ROOM_AMONG, candidates.length); i++) {
        const p = candidates[i];
        if (adj[p * stride] < R) return tryLink(p, u);
      }
      for (let i = 0; i < Math.min(TRY_AMONG, candidates.length); i++) if (tryLink(candidates[i], u)) return true;
      forceLink(candidates[0], u);
      return true;
    };

    /** Give entry e an out-link to a node near it that reaches the root; whether one was added. */
    const linkOutOf = (e: number): boolean => {
      const reachesRoot = (c: number) => reaching[c] === 1;
      let candidates = nearby(e, reachesRoot, false, false);
      if (!candidates) return false;
      if (candidates.length === 0) candidates = Uint32Array.of(nearestEntry(e, reachesRoot));
      for (let i = 0; i < Math.min(TRY_AMONG, candidates.length); i++) if (tryLink(e, candidates[i])) return true;
      forceLink(e, candidates[0]);
      return true;
    };

    let pending: ArrayLike<number> = changed ? distinct(changed) : [];
    for (let round = 0; round < MAX_CONNECT_ROUNDS; round++) {
      if (changed) {
        // the listed nodes: linked from anything the entry points reach, unless a search touches them
        for (let i = 0; i < pending.length; i++) {
          if (linkInto(pending[i], () => true, true)) links++;
          if (i % CONNECT_STEP === CONNECT_STEP - 1) yield;
        }
        if (dropped.length === 0) break;
        pending = distinct(dropped);
      } else {
        if (round > 0) {
          yield;
          if (!(yield* walk())) break;
        }
        let checked = 0;
        for (const u of unreachedLive(reached, deleted)) {
          if (++checked % CONNECT_STEP === 0) yield;
          // an earlier link this round may have reached it already
          if (reached[u] || !linkInto(u, (c) => reached[c] === 1, false)) continue;
          links++;
          markReachable(adjacency(), R, [u], reached, queue);
        }
        if (!perZone) {
          yield;
          for (const e of entries) {
            if (reaching[e] || !linkOutOf(e)) continue;
            links++;
            // e reaches the root now, and so does whatever reaches e (over the edges of the walk)
            markReaching(reversed, [e], reaching, queue);
          }
        }
        if (dropped.length === 0) break;
      }
      dropped = [];
    }
  } finally {
    arena.release(mark);
  }
  return links;
}

/**
 * The adjacency's edges reversed, compressed: the sources of the edges into node v are
 * sources[start[v] .. start[v + 1]).
 */
function reverseEdges(adjacency: Uint32Array, R: number, n: number): { start: Uint32Array; sources: Uint32Array } {
  const stride = R + 1;
  const start = new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) {
    const row = i * stride;
    for (let j = row + 1; j <= row + adjacency[row]; j++) start[adjacency[j] + 1]++;
  }
  for (let v = 0; v < n; v++) start[v + 1] += start[v];
  const sources = new Uint32Array(start[n]);
  const fill = start.slice(0, n);
  for (let i = 0; i < n; i++) {
    const row = i * stride;
    for (let j = row + 1; j <= row + adjacency[row]; j++) sources[fill[adjacency[j]]++] = i;
  }
  return { start, sources };
}

/**
 * Mark what reaches the nodes `to`: reaching[i] = 1 when a walk from i gets to one of them (a walk
 * over the reversed edges; marked nodes are not walked again). queue: scratch Uint32Array[n].
 */
function markReaching(
  reversed: { start: Uint32Array; sources: Uint32Array }, to: ArrayLike<number>, reaching: Uint8Array, queue: Uint32Array,
): void {
  const { start, sources } = reversed;
  let tail = 0;
  for (let i = 0; i < to.length; i++) {
    if (reaching[to[i]]) continue;
    reaching[to[i]] = 1;
    queue[tail++] = to[i];
  }
  for (let head = 0; head < tail; head++) {
    const v = queue[head];
    for (let j = start[v]; j < start[v + 1]; j++) {
      const s = sources[j];
      if (reaching[s]) continue;
      reaching[s] = 1;
      queue[tail++] = s;
    }
  }
}

/** The distinct values of `ids`, first occurrences in order. */
function distinct(ids: ArrayLike<number>): Uint32Array {
  return Uint32Array.from(new Set(Array.from(ids)));
}

/** Nodes not reached and not removed, ascending. */
function unreachedLive(reached: Uint8Array, deleted: Uint8Array | null): number[] {
  const out: number[] = [];
  for (let i = 0; i < reached.length; i++) if (!reached[i] && !(deleted && hasBit(deleted, i))) out.push(i);
  return out;
}

/** Zone whose range [zoneStart[z], zoneStart[z + 1]) holds `node` (binary search). */
function zoneOfNode(zoneStart: Uint32Array, node: number): number {
  let lo = 0;
  let hi = zoneStart.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (zoneStart[mid] <= node) lo = mid;
    else hi = mid - 1;
  }
  return lo;
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
