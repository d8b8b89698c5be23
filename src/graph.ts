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
  /** arena copies of the zone tables, used by selectZones */
  centroidsPtr: number;
  groupCentroidsPtr: number;
  groupStartPtr: number;
}

/** Longest stretch of synchronous work before the build yields to the event loop (ms). */
const YIELD_EVERY_MS = 50;

/**
 * Build the graph into a fresh adjacency region; returns its byte offset. Yields to the event
 * loop every few tens of milliseconds, so progress output, timers and servers keep running.
 */
export async function buildGraph(kernels: Kernels, input: GraphInputs, options: GraphBuildOptions): Promise<number> {
  const { arena, k: kern } = kernels;
  const { n, dim, metric, zones } = input;
  const R = options.degree;
  const L = Math.max(options.efConstruction, R);
  const adjacencyPtr = arena.alloc(n * (R + 1) * 4);
  arena.u32(adjacencyPtr, n * (R + 1)).fill(0);

  const mark = arena.mark();
  try {
    const visitedPtr = arena.alloc(n * 2);
    arena.u16(visitedPtr, n).fill(0);
    const probe = Math.max(1, Math.min(options.buildProbe, zones.nZones));
    const groupProbe = groupProbeFor(probe, zones.nGroups);
    const entriesPtr = arena.alloc(probe * 4);
    const zoneIdsPtr = arena.alloc(probe * 4);
    const zoneDistPtr = arena.alloc(probe * 4);
    const groupScratchPtr = arena.alloc(Math.max(1, groupProbe) * 8);
    const scratchPtr = arena.alloc(L * 8 + R * 4 + (R + 1) * 8);

    const isEntry = new Uint8Array(n);
    for (let z = 0; z < zones.nZones; z++) isEntry[zones.zoneEntry[z]] = 1;
    const rest =
      options.shape === 'unified' ? new Rng(options.seed).permutation(n)
      : options.shape === 'zone-rounds' ? zoneRounds(zones, n, new Rng(options.seed))
      : identity(n);
    const perZone = options.shape === 'per-zone';
    const zoneOf = new Uint32Array(n);
    for (let z = 0; z < zones.nZones; z++) zoneOf.fill(z, zones.zoneStart[z], zones.zoneStart[z + 1]);
    const order = new Uint32Array(n);
    let o = 0;
    for (let z = 0; z < zones.nZones; z++) order[o++] = zones.zoneEntry[z];
    for (let i = 0; i < n; i++) if (!isEntry[rest[i]]) order[o++] = rest[i];

    let epoch = 0;
    const progressEvery = Math.max(1, Math.floor(n / 100));
    let lastYield = performance.now();
    for (let i = 1; i < n; i++) {
      if ((i & 255) === 0 && performance.now() - lastYield > YIELD_EVERY_MS) {
        await new Promise<void>((resolve) => setTimeout(resolve, 0));
        lastYield = performance.now();
      }
      const node = order[i];
      let nEntries: number;
      let lo = 0;
      let hi = n;
      if (perZone) {
        // its own zone's graph only, entered at the zone medoid
        const z = zoneOf[node];
        lo = zones.zoneStart[z];
        hi = zones.zoneStart[z + 1];
        arena.u32(entriesPtr, 1)[0] = zones.zoneEntry[z];
        nEntries = node === zones.zoneEntry[z] ? 0 : 1;
      } else if (i < zones.nZones) {
        // medoids: the skeleton, entered at the first medoid
        arena.u32(entriesPtr, 1)[0] = order[0];
        nEntries = 1;
      } else {
        const q = input.vectorsPtr + node * dim * 4;
        const found = kern.selectZones(
          q, input.centroidsPtr, zones.nZones, dim, metric,
          input.groupCentroidsPtr, input.groupStartPtr, zones.nGroups, groupProbe,
          probe, zoneIdsPtr, zoneDistPtr, groupScratchPtr,
        );
        const zoneIds = arena.u32(zoneIdsPtr, found);
        const entries = arena.u32(entriesPtr, found);
        for (let e = 0; e < found; e++) entries[e] = zones.zoneEntry[zoneIds[e]];
        nEntries = found;
      }
      epoch++;
      if (epoch === 65536) {
        arena.u16(visitedPtr, n).fill(0);
        epoch = 1;
      }
      kern.insertNode(node, input.vectorsPtr, dim, metric, adjacencyPtr, R, entriesPtr, nEntries, L, options.alpha, visitedPtr, epoch, scratchPtr, lo, hi);
      if (options.onProgress && (i % progressEvery === 0 || i === n - 1)) options.onProgress(i + 1, n);
    }
  } finally {
    arena.release(mark);
  }
  return adjacencyPtr;
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
