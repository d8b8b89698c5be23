/**
 * Changing a built index: new vectors join the zone whose centroid is nearest, are encoded with the
 * trained PQ and linked into the graph; deleted nodes are cut out of the graph (their in-neighbours
 * repaired) and dropped. Both end in a fresh zone-contiguous layout, so zone scans keep reading
 * memory in order and the index stays as fast as a built one. Zones and codebooks are those of the
 * build: see the README ("Changing an index") for when to rebuild instead.
 *
 * Everything happens on copies in a work arena; the caller installs the result, so a failure leaves
 * the index as it was.
 */
import { Arena } from './memory.js';
import { createKernels, type Kernels } from './kernels/wasm.js';
import { assignInArena } from './kmeans.js';
import { encodePQ, residuals, residualTerms } from './pq.js';
import { type BuildWorkers, linkNodes } from './graph.js';
import { fitsHalf, type IndexArrays, type IndexMeta, toHalf } from './persist.js';
import { hasBit } from './ids.js';
import { kernelMetric } from './options.js';
import type { ZoneLayout } from './zones.js';

/** What a relayout changes. */
export interface Change {
  /** Rows to add, Float32Array[count * dim] (unit length under cosine), and their caller ids. */
  vectors: Float32Array;
  ids: Uint32Array;
  /** Linking progress of the added rows, in [0, 1]. */
  onProgress?: (fraction: number) => void;
  /** Worker lanes for linking, given the work arena's kernels. */
  workers?: (kernels: Kernels) => Promise<BuildWorkers | undefined>;
}

const NONE = 0xffffffff;

/**
 * The index with `current.deleted` nodes removed and `change`'s rows added, in a fresh layout.
 * Returns the new header and arrays (plain copies, not views of any arena).
 */
export async function relayout(meta: IndexMeta, current: IndexArrays, change: Change): Promise<{ meta: IndexMeta; arrays: IndexArrays }> {
  const { dim, m, degree: R, nZones } = meta;
  const o = meta.options;
  const nOld = meta.n;
  const added = change.ids.length;
  const deleted = current.deleted;
  const kernels = createKernels(new Arena());
  const { arena, k: kern } = kernels;
  const metric = kernelMetric(o.metric);
  const L = Math.max(o.efConstruction, R);

  // every vector as float32 in the work arena: old rows in their order, then the added ones
  const allPtr = arena.alloc((nOld + added) * dim * 4);
  if (current.vectors instanceof Uint16Array) {
    const mark = arena.mark();
    kern.decodeHalfBlock(arena.allocFrom(current.vectors), allPtr, nOld * dim);
    arena.release(mark);
  } else {
    arena.f32(allPtr, nOld * dim).set(current.vectors);
  }
  arena.f32(allPtr + nOld * dim * 4, added * dim).set(change.vectors);

  // cut deleted nodes out of the graph while ids are still the old ones
  const oldAdjPtr = arena.allocFrom(current.adjacency);
  let live = nOld;
  if (deleted) {
    live = nOld - countBits(deleted, nOld);
    repair(kernels, allPtr, oldAdjPtr, deleted, nOld, dim, metric, R, L, o.alpha);
  }

  // zones of the added rows
  const addedZone = new Uint32Array(added);
  if (added > 0) {
    const mark = arena.mark();
    const nearestPtr = arena.alloc(added * 4);
    assignInArena(kernels, allPtr + nOld * dim * 4, added, dim, dim, current.centroids, nZones, nearestPtr, arena.alloc(added * 4));
    addedZone.set(arena.u32(nearestPtr, added));
    arena.release(mark);
  }

  // the new zone-contiguous order: each zone's surviving nodes, then its added rows; empty zones go
  const sizes = new Uint32Array(nZones);
  for (let z = 0; z < nZones; z++) {
    for (let i = current.zoneStart[z]; i < current.zoneStart[z + 1]; i++) if (!deleted || !hasBit(deleted, i)) sizes[z]++;
  }
  for (let j = 0; j < added; j++) sizes[addedZone[j]]++;
  const zoneMap = new Uint32Array(nZones).fill(NONE);
  let zones = 0;
  for (let z = 0; z < nZones; z++) if (sizes[z] > 0) zoneMap[z] = zones++;
  const zoneStart = new Uint32Array(zones + 1);
  for (let z = 0; z < nZones; z++) if (zoneMap[z] !== NONE) zoneStart[zoneMap[z] + 1] = zoneStart[zoneMap[z]] + sizes[z];
  const n = live + added;
  const cursor = zoneStart.slice(0, zones);
  const oldToNew = new Uint32Array(nOld).fill(NONE);
  for (let z = 0; z < nZones; z++) {
    for (let i = current.zoneStart[z]; i < current.zoneStart[z + 1]; i++) {
      if (!deleted || !hasBit(deleted, i)) oldToNew[i] = cursor[zoneMap[z]]++;
    }
  }
  const addedTo = new Uint32Array(added);
  for (let j = 0; j < added; j++) addedTo[j] = cursor[zoneMap[addedZone[j]]]++;

  // arrays in the new order
  const vectorsPtr = arena.alloc(n * dim * 4);
  const all = arena.f32(allPtr, (nOld + added) * dim);
  const vectors = arena.f32(vectorsPtr, n * dim);
  const ids = new Uint32Array(n);
  const codes = new Uint8Array(n * m);
  const vecTerm = new Float32Array(meta.residual ? n : 0);
  for (let i = 0; i < nOld; i++) {
    const t = oldToNew[i];
    if (t === NONE) continue;
    vectors.set(all.subarray(i * dim, (i + 1) * dim), t * dim);
    codes.set(current.codes.subarray(i * m, (i + 1) * m), t * m);
    ids[t] = current.ids[i];
    if (meta.residual) vecTerm[t] = current.vecTerm[i];
  }
  if (added > 0) {
    const rows = all.slice(nOld * dim);
    const pqInput = meta.residual ? residuals(rows, addedZone, current.centroids, dim) : rows;
    const addedCodes = new Uint8Array(added * m);
    encodePQ(kernels, pqInput, added, dim, m, current.codebooks, addedCodes);
    const terms = meta.residual ? residualTerms(current.codebooks, addedCodes, addedZone, current.centroids, added, dim, m, metric) : null;
    const dest = arena.f32(vectorsPtr, n * dim);
    for (let j = 0; j < added; j++) {
      const t = addedTo[j];
      dest.set(rows.subarray(j * dim, (j + 1) * dim), t * dim);
      codes.set(addedCodes.subarray(j * m, (j + 1) * m), t * m);
      ids[t] = change.ids[j];
      if (terms) vecTerm[t] = terms[j];
    }
  }
  const adjacencyPtr = arena.alloc(n * (R + 1) * 4);
  {
    const from = arena.u32(oldAdjPtr, nOld * (R + 1));
    const to = arena.u32(adjacencyPtr, n * (R + 1)).fill(0);
    for (let i = 0; i < nOld; i++) {
      const t = oldToNew[i];
      if (t === NONE) continue;
      let count = 0;
      for (let j = 1; j <= from[i * (R + 1)]; j++) {
        const nb = oldToNew[from[i * (R + 1) + j]];
        if (nb !== NONE) to[t * (R + 1) + 1 + count++] = nb;
      }
      to[t * (R + 1)] = count;
    }
  }

  // zone tables without the empty zones; a deleted medoid gives way to the member nearest the centroid
  const centroids = new Float32Array(zones * dim);
  const zoneEntry = new Uint32Array(zones);
  const view = arena.f32(vectorsPtr, n * dim);
  for (let z = 0; z < nZones; z++) {
    const nz = zoneMap[z];
    if (nz === NONE) continue;
    const c = current.centroids.subarray(z * dim, (z + 1) * dim);
    centroids.set(c, nz * dim);
    const entry = oldToNew[current.zoneEntry[z]];
    zoneEntry[nz] = entry !== NONE ? entry : nearestMember(view, c, zoneStart[nz], zoneStart[nz + 1], dim);
  }
  const groups = regroup(current.groupStart, meta.nGroups, zoneMap, current.groupCentroids, dim);

  if (added > 0) {
    const zoneLayout: ZoneLayout = {
      nZones: zones, centroids, zoneStart, zoneEntry, nGroups: groups.nGroups, groupCentroids: groups.groupCentroids,
      groupStart: groups.groupStart, order: new Uint32Array(0),
    };
    const workers = await change.workers?.(kernels);
    await linkNodes(
      kernels,
      {
        vectorsPtr, n, dim, metric, zones: zoneLayout, centroidsPtr: arena.allocFrom(centroids),
        groupCentroidsPtr: groups.nGroups ? arena.allocFrom(groups.groupCentroids) : 0,
        groupStartPtr: groups.nGroups ? arena.allocFrom(groups.groupStart) : 0,
      },
      adjacencyPtr, addedTo, live,
      {
        degree: R, efConstruction: o.efConstruction, alpha: o.alpha, buildProbe: 2, shape: o.graph, seed: o.seed + 2, fresh: false,
        onProgress: (done, total) => change.onProgress?.(done / total),
      },
      workers,
    );
  }

  const storage = meta.storage === 'float16' && fitsHalf(change.vectors) ? 'float16' : 'float32';
  return {
    meta: { ...meta, options: { ...o, storage }, n, nZones: zones, nGroups: groups.nGroups, storage },
    arrays: {
      vectors: storage === 'float16' ? toHalf(kernels, vectorsPtr, n * dim) : arena.f32(vectorsPtr, n * dim).slice(),
      codes,
      adjacency: arena.u32(adjacencyPtr, n * (R + 1)).slice(),
      codebooks: current.codebooks.slice(),
      centroids,
      zoneStart,
      zoneEntry,
      groupCentroids: groups.groupCentroids,
      groupStart: groups.groupStart,
      vecTerm,
      ids,
      deleted: null,
    },
  };
}

/** Number of set bits among the first n of a bitmap. */
export function countBits(bits: Uint8Array, n: number): number {
  let count = 0;
  for (let i = 0; i < n; i++) if (hasBit(bits, i)) count++;
  return count;
}

/** Repair (assembly/mutate.ts) every live node that links to a deleted one. */
function repair(
  kernels: Kernels, vectorsPtr: number, adjacencyPtr: number, deleted: Uint8Array, n: number,
  dim: number, metric: number, R: number, L: number, alpha: number,
): void {
  const { arena, k } = kernels;
  const adjacency = arena.u32(adjacencyPtr, n * (R + 1));
  const affected: number[] = [];
  for (let i = 0; i < n; i++) {
    if (hasBit(deleted, i)) continue;
    for (let j = 1; j <= adjacency[i * (R + 1)]; j++) {
      if (hasBit(deleted, adjacency[i * (R + 1) + j])) {
        affected.push(i);
        break;
      }
    }
  }
  if (affected.length === 0) return;
  const mark = arena.mark();
  try {
    const visited = arena.alloc(n * 2);
    arena.u16(visited, n).fill(0);
    k.repairNodes(
      vectorsPtr, dim, metric, adjacencyPtr, R, L, alpha, arena.allocFrom(deleted), arena.allocFrom(Uint32Array.from(affected)),
      affected.length, n, visited, arena.alloc(L * 8),
    );
  } finally {
    arena.release(mark);
  }
}

/** Row in [from, to) nearest to c (squared L2). */
function nearestMember(vectors: Float32Array, c: Float32Array, from: number, to: number, dim: number): number {
  let best = from;
  let bestD = Infinity;
  for (let i = from; i < to; i++) {
    let d = 0;
    for (let j = 0; j < dim; j++) d += (vectors[i * dim + j] - c[j]) ** 2;
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  }
  return best;
}

/** The selection tree after zones are dropped (zoneMap[z] = NONE): groups that lose every zone go. */
function regroup(
  groupStart: Uint32Array, nGroups: number, zoneMap: Uint32Array, groupCentroids: Float32Array, dim: number,
): { nGroups: number; groupStart: Uint32Array; groupCentroids: Float32Array } {
  if (nGroups === 0) return { nGroups: 0, groupStart: new Uint32Array(0), groupCentroids: new Float32Array(0) };
  const start = [0];
  const kept: number[] = [];
  let zones = 0;
  for (let g = 0; g < nGroups; g++) {
    for (let z = groupStart[g]; z < groupStart[g + 1]; z++) if (zoneMap[z] !== NONE) zones++;
    if (zones > start[start.length - 1]) {
      start.push(zones);
      kept.push(g);
    }
  }
  const centroids = new Float32Array(kept.length * dim);
  kept.forEach((g, i) => centroids.set(groupCentroids.subarray(g * dim, (g + 1) * dim), i * dim));
  return { nGroups: kept.length, groupStart: Uint32Array.from(start), groupCentroids: centroids };
}
