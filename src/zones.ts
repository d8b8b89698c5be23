/**
 * Zones: k-means cells over the data. Internal node ids are renumbered so each zone is one
 * contiguous range (zone z owns [zoneStart[z], zoneStart[z + 1])), and zones are numbered so that
 * each group of the two-level selection tree is contiguous too (group g owns zones
 * [groupStart[g], groupStart[g + 1])). Each zone's entry point into the graph is its medoid: the
 * member nearest its centroid.
 */
import { InputRows } from './input.js';
import type { Kernels } from './kernels/wasm.js';
import { assignInArena, kmeans, kmeansSteps } from './kmeans.js';
import { runSteps, type Steps } from './pace.js';

/** Zone counts from which selection uses the two-level tree instead of scanning every centroid. */
export const TREE_MIN_ZONES = 64;

export interface ZoneLayout {
  nZones: number;
  /** Float32Array[nZones * dim]: zone centroids in zone order. */
  centroids: Float32Array;
  /** Uint32Array[nZones + 1]: internal id ranges per zone. */
  zoneStart: Uint32Array;
  /**
   * Uint32Array[nZones]: internal id of each zone's medoid (the graph entry point). A removed entry
   * stays the entry until the index is next laid out (searches cross removed nodes and its row is
   * kept, so all it reached stays reached; changing it in place could strand what only it reached);
   * a layout gives the zone its live member nearest the centroid, and src/graph.ts connectGraph
   * makes every node reachable from every entry again.
   */
  zoneEntry: Uint32Array;
  /** Groups of the selection tree; 0 when zones are few enough to scan. */
  nGroups: number;
  /** Float32Array[nGroups * dim]: group centroids. */
  groupCentroids: Float32Array;
  /** Uint32Array[nGroups + 1]: zone ranges per group. */
  groupStart: Uint32Array;
  /** Uint32Array[n]: internal id -> input row. */
  order: Uint32Array;
}

/** Groups of the selection tree to scan for nProbe zones: enough that the nProbe nearest zones are rarely missed. */
export function groupProbeFor(nProbe: number, nGroups: number): number {
  if (nGroups === 0) return 0;
  return Math.min(nGroups, Math.max(4, nProbe + 2));
}

/** Default zone count: about √n (at least 1). */
export function defaultZoneCount(n: number): number {
  return Math.max(1, Math.round(Math.sqrt(n)));
}

/**
 * Partition n rows of x into at most `zones` zones (empty ones are dropped), build the selection
 * tree over their centroids, and renumber rows zone-contiguously.
 */
export function buildZones(kernels: Kernels, x: Float32Array | InputRows, n: number, dim: number, zones: number, seed: number): ZoneLayout {
  return runSteps(buildZonesSteps(kernels, x, n, dim, zones, seed));
}

/** buildZones, yielding within its k-means and between assignment chunks (see src/pace.ts). */
export function* buildZonesSteps(kernels: Kernels, x: Float32Array | InputRows, n: number, dim: number, zones: number, seed: number): Steps<ZoneLayout> {
  const rawCentroids = yield* zoneCentroidsSteps(kernels, x, n, dim, zones, seed);
  const { nearest, dist } = yield* assignNearestSteps(kernels, x, n, dim, rawCentroids, rawCentroids.length / dim);
  return zonesFromAssignment(kernels, n, dim, rawCentroids, nearest, dist, seed);
}

/** The zones' centroids as k-means finds them (min(zones, n) of them), before any row is assigned. */
export function* zoneCentroidsSteps(kernels: Kernels, x: Float32Array | InputRows, n: number, dim: number, zones: number, seed: number): Steps<Float32Array> {
  const { centroids } = yield* kmeansSteps(kernels, x, n, dim, Math.min(zones, n), { seed });
  return centroids;
}

/**
 * The zone layout from the k-means centroids and each row's nearest of them (and its squared
 * distance): empty zones dropped, the two-level tree, zones numbered by group, rows in zone order.
 */
export function zonesFromAssignment(
  kernels: Kernels, n: number, dim: number, rawCentroids: Float32Array, zoneOfRow: Uint32Array, distOfRow: Float32Array, seed: number,
): ZoneLayout {
  const k = rawCentroids.length / dim;

  // drop empty zones
  const sizes = new Uint32Array(k);
  for (let i = 0; i < n; i++) sizes[zoneOfRow[i]]++;
  const live: number[] = [];
  for (let z = 0; z < k; z++) if (sizes[z] > 0) live.push(z);
  const nZones = live.length;
  const liveCentroids = new Float32Array(nZones * dim);
  live.forEach((z, i) => liveCentroids.set(rawCentroids.subarray(z * dim, z * dim + dim), i * dim));

  // two-level tree: group zones by k-means over their centroids
  let nGroups = 0;
  let zoneGroup: Uint32Array = new Uint32Array(nZones);
  let groupCentroidsRaw: Float32Array = new Float32Array(0);
  if (nZones >= TREE_MIN_ZONES) {
    const g = Math.round(Math.sqrt(nZones));
    groupCentroidsRaw = kmeans(kernels, liveCentroids, nZones, dim, g, { seed: seed + 1 }).centroids;
    zoneGroup = assignNearest(kernels, liveCentroids, nZones, dim, groupCentroidsRaw, g).nearest;
    nGroups = g;
  }

  // zone numbering: by group, then by k-means index (stable)
  const liveOrder = Array.from({ length: nZones }, (_, i) => i);
  liveOrder.sort((a, b) => zoneGroup[a] - zoneGroup[b] || a - b);
  const newZoneOfRaw = new Int32Array(k).fill(-1);
  liveOrder.forEach((liveIdx, newZ) => (newZoneOfRaw[live[liveIdx]] = newZ));
  const centroids = new Float32Array(nZones * dim);
  liveOrder.forEach((liveIdx, newZ) => centroids.set(liveCentroids.subarray(liveIdx * dim, liveIdx * dim + dim), newZ * dim));

  // groups: drop empty ones, ranges over the new zone numbering
  let groupStart = new Uint32Array(0);
  let groupCentroids = new Float32Array(0);
  if (nGroups > 0) {
    const groupsUsed: number[] = [];
    for (const liveIdx of liveOrder) {
      const grp = zoneGroup[liveIdx];
      if (groupsUsed[groupsUsed.length - 1] !== grp) groupsUsed.push(grp);
    }
    groupStart = new Uint32Array(groupsUsed.length + 1);
    groupCentroids = new Float32Array(groupsUsed.length * dim);
    let z = 0;
    groupsUsed.forEach((grp, gi) => {
      groupStart[gi] = z;
      groupCentroids.set(groupCentroidsRaw.subarray(grp * dim, grp * dim + dim), gi * dim);
      while (z < nZones && zoneGroup[liveOrder[z]] === grp) z++;
    });
    groupStart[groupsUsed.length] = nZones;
    nGroups = groupsUsed.length;
  }

  // counting sort of rows by zone (stable: input order within a zone)
  const zoneStart = new Uint32Array(nZones + 1);
  for (let i = 0; i < n; i++) zoneStart[newZoneOfRaw[zoneOfRow[i]] + 1]++;
  for (let z = 0; z < nZones; z++) zoneStart[z + 1] += zoneStart[z];
  const fill = zoneStart.slice(0, nZones);
  const order = new Uint32Array(n);
  const zoneEntry = new Uint32Array(nZones);
  const entryDist = new Float64Array(nZones).fill(Infinity);
  for (let i = 0; i < n; i++) {
    const z = newZoneOfRaw[zoneOfRow[i]];
    const internal = fill[z]++;
    order[internal] = i;
    if (distOfRow[i] < entryDist[z]) {
      entryDist[z] = distOfRow[i];
      zoneEntry[z] = internal;
    }
  }
  return { nZones, centroids, zoneStart, zoneEntry, nGroups, groupCentroids, groupStart, order };
}

/** Nearest centroid (squared L2) of every row, in chunks through the arena. Copies out. */
export function assignNearest(
  kernels: Kernels, x: Float32Array | InputRows, n: number, dim: number, centroids: Float32Array, k: number,
): { nearest: Uint32Array; dist: Float32Array } {
  return runSteps(assignNearestSteps(kernels, x, n, dim, centroids, k));
}

/** assignNearest, yielding after each chunk. */
export function* assignNearestSteps(
  kernels: Kernels, input: Float32Array | InputRows, n: number, dim: number, centroids: Float32Array, k: number,
): Steps<{ nearest: Uint32Array; dist: Float32Array }> {
  const x = input instanceof InputRows ? input : new InputRows(input, dim, null, n);
  const { arena } = kernels;
  const mark = arena.mark();
  try {
    const chunk = Math.max(1, Math.min(n, Math.floor((4 << 20) / (dim * 4))));
    const xPtr = arena.alloc(chunk * dim * 4);
    const nPtr = arena.alloc(chunk * 4);
    const dPtr = arena.alloc(chunk * 4);
    const nearest = new Uint32Array(n);
    const dist = new Float32Array(n);
    for (let start = 0; start < n; start += chunk) {
      const count = Math.min(chunk, n - start);
      x.copy(start, count, arena.f32(xPtr, count * dim));
      assignInArena(kernels, xPtr, count, dim, dim, centroids, k, nPtr, dPtr);
      nearest.set(arena.u32(nPtr, count), start);
      dist.set(arena.f32(dPtr, count), start);
      yield;
    }
    return { nearest, dist };
  } finally {
    arena.release(mark);
  }
}
