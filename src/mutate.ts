/**
 * Changing a built index: new vectors join the zone whose centroid is nearest, are encoded with the
 * trained PQ and linked into the graph; deleted nodes are cut out of the graph (their in-neighbours
 * repaired) and dropped. Zones and codebooks are those of the build: see the README ("Changing an
 * index") for when to rebuild instead.
 *
 * Two ways: `relayout` works on copies in a work arena and ends in a fresh zone-contiguous layout
 * (the caller installs it, so a failure leaves the index as it was); `appendInPlace` writes a few
 * rows into an installed index's spare capacity and links them there.
 */
import { Arena } from './memory.js';
import { createKernels, type Kernels, METRIC_L2 } from './kernels/wasm.js';
import { assignInArena } from './kmeans.js';
import { encodePQSteps, PQ_CENTROIDS, residualRows, residualTerms } from './pq.js';
import { runPaced, runSteps, type Steps } from './pace.js';
import { type BuildWorkers, connectGraph, linkNodes } from './graph.js';
import { fitsHalf, type IndexMeta, toHalf } from './persist.js';
import type { IndexArrays, IndexLayout } from './layout.js';
import { kernelMetric, type ResolvedOptions } from './options.js';
import { countBits, hasBit } from './ids.js';
import type { ZoneLayout } from './zones.js';

/** What a relayout changes. */
export interface Change {
  /** Rows to add, Float32Array[count * dim] (unit length under cosine), and their caller ids. */
  vectors: Float32Array;
  ids: Uint32Array;
  /** Linking progress of the added rows, in [0, 1]. */
  onProgress?: (fraction: number) => void;
  /** Called between the steps of the work (the caller's turn of the event loop and abort check). */
  pace?: () => Promise<void>;
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
  const { arena } = kernels;
  const metric = kernelMetric(o.metric);
  const L = Math.max(o.efConstruction, R);

  // the stored format after the change: binary16 unless some value does not fit it
  const half = current.vectors instanceof Uint16Array && fitsHalf(change.vectors, dim);
  const oldRows = half || current.vectors instanceof Float32Array ? current.vectors : decodeAll(kernels, current.vectors);

  // cut deleted nodes out of the graph while ids are still the old ones
  const oldAdjPtr = arena.allocFrom(current.adjacency);
  let live = nOld;
  if (deleted) {
    live = nOld - countBits(deleted, nOld);
    const mark = arena.mark();
    await repair(kernels, arena.allocFrom(oldRows), half, oldAdjPtr, deleted, nOld, dim, metric, R, L, o.alpha, change.pace);
    arena.release(mark);
  }

  // zones, codes and node terms of the added rows
  const q = await runPaced(quantizeRows(kernels, change.vectors, current.centroids, current.codebooks, dim, m, meta.residual, metric), change.pace && { step: change.pace });
  const addedZone = q.zones;

  // the new zone-contiguous order: each zone's surviving nodes (those laid out in it, then those
  // appended to it), then its added rows; empty zones go
  const zoned = current.zoneStart[nZones];
  const oldZone = new Uint32Array(nOld);
  for (let z = 0; z < nZones; z++) oldZone.fill(z, current.zoneStart[z], current.zoneStart[z + 1]);
  oldZone.set(current.tailZones, zoned);
  const sizes = new Uint32Array(nZones);
  for (let i = 0; i < nOld; i++) if (!deleted || !hasBit(deleted, i)) sizes[oldZone[i]]++;
  for (let j = 0; j < added; j++) sizes[addedZone[j]]++;
  const zoneMap = new Uint32Array(nZones).fill(NONE);
  let zones = 0;
  for (let z = 0; z < nZones; z++) if (sizes[z] > 0) zoneMap[z] = zones++;
  const zoneStart = new Uint32Array(zones + 1);
  for (let z = 0; z < nZones; z++) if (zoneMap[z] !== NONE) zoneStart[zoneMap[z] + 1] = zoneStart[zoneMap[z]] + sizes[z];
  const n = live + added;
  const cursor = zoneStart.slice(0, zones);
  const oldToNew = new Uint32Array(nOld).fill(NONE);
  for (let i = 0; i < nOld; i++) if (!deleted || !hasBit(deleted, i)) oldToNew[i] = cursor[zoneMap[oldZone[i]]]++;
  const addedTo = new Uint32Array(added);
  for (let j = 0; j < added; j++) addedTo[j] = cursor[zoneMap[addedZone[j]]]++;

  // arrays in the new order; the added rows stored like the others
  const vectors = half ? new Uint16Array(n * dim) : new Float32Array(n * dim);
  const ids = new Uint32Array(n);
  const codes = new Uint8Array(n * m);
  const vecTerm = new Float32Array(meta.residual ? n : 0);
  for (let i = 0; i < nOld; i++) {
    const t = oldToNew[i];
    if (t === NONE) continue;
    vectors.set(oldRows.subarray(i * dim, (i + 1) * dim), t * dim);
    codes.set(current.codes.subarray(i * m, (i + 1) * m), t * m);
    ids[t] = current.ids[i];
    if (meta.residual) vecTerm[t] = current.vecTerm[i];
  }
  if (added > 0) {
    const stored = half ? encodeRows(kernels, change.vectors) : change.vectors;
    for (let j = 0; j < added; j++) {
      const t = addedTo[j];
      vectors.set(stored.subarray(j * dim, (j + 1) * dim), t * dim);
      codes.set(q.codes.subarray(j * m, (j + 1) * m), t * m);
      ids[t] = change.ids[j];
      if (meta.residual) vecTerm[t] = q.terms[j];
    }
  }
  await change.pace?.();
  const vectorsPtr = arena.allocFrom(vectors);
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

  await change.pace?.();
  // zone tables without the empty zones; a deleted medoid gives way to the live member nearest the
  // centroid (connectGraph below makes the graph reachable from it)
  const centroids = new Float32Array(zones * dim);
  const zoneEntry = new Uint32Array(zones);
  for (let z = 0; z < nZones; z++) {
    const nz = zoneMap[z];
    if (nz === NONE) continue;
    const c = current.centroids.subarray(z * dim, (z + 1) * dim);
    centroids.set(c, nz * dim);
    const entry = oldToNew[current.zoneEntry[z]];
    zoneEntry[nz] = entry !== NONE ? entry : nearestMember(kernels, vectorsPtr, half, c, zoneStart[nz], zoneStart[nz + 1], dim);
  }
  const groups = regroup(current.groupStart, meta.nGroups, zoneMap, current.groupCentroids, dim);

  const zoneLayout: ZoneLayout = {
    nZones: zones, centroids, zoneStart, zoneEntry, nGroups: groups.nGroups, groupCentroids: groups.groupCentroids,
    groupStart: groups.groupStart, order: new Uint32Array(0),
  };
  const graphInput = {
    vectorsPtr, n, dim, metric, half, zones: zoneLayout, centroidsPtr: arena.allocFrom(centroids),
    groupCentroidsPtr: groups.nGroups ? arena.allocFrom(groups.groupCentroids) : 0,
    groupStartPtr: groups.nGroups ? arena.allocFrom(groups.groupStart) : 0,
  };
  const graphOptions = {
    degree: R, efConstruction: o.efConstruction, alpha: o.alpha, buildProbe: 2, shape: o.graph, seed: o.seed + 2, fresh: false,
    onProgress: (done: number, total: number) => change.onProgress?.(done / total),
  };
  if (added > 0) {
    // linking ends by reconnecting whatever the repair or the new links cut off (connectGraph)
    const workers = await change.workers?.(kernels);
    await linkNodes(kernels, graphInput, adjacencyPtr, addedTo, live, graphOptions, workers);
  } else {
    // the repair prunes, and heavy removal leaves islands: reconnect them
    connectGraph(kernels, graphInput, adjacencyPtr, n, graphOptions);
  }

  const storage = half ? 'float16' : 'float32';
  return {
    meta: { ...meta, options: { ...o, storage }, n, nZones: zones, nGroups: groups.nGroups, storage, zoned: n },
    arrays: {
      vectors,
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
      tailZones: new Uint32Array(0),
    },
  };
}

/** Repair (assembly/mutate.ts) every live node that links to a deleted one. */
/** Nodes repaired per kernel call (a few milliseconds). */
const REPAIR_SLICE = 2048;

async function repair(
  kernels: Kernels, vectorsPtr: number, half: boolean, adjacencyPtr: number, deleted: Uint8Array, n: number,
  dim: number, metric: number, R: number, L: number, alpha: number, pace: (() => Promise<void>) | undefined,
): Promise<void> {
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
    const deletedPtr = arena.allocFrom(deleted);
    const nodesPtr = arena.allocFrom(Uint32Array.from(affected));
    const scratch = arena.alloc(L * 8 + dim * 8);
    // in slices, with the caller's pace between them (each slice starts its visited tags afresh)
    for (let from = 0; from < affected.length; from += REPAIR_SLICE) {
      arena.u16(visited, n).fill(0);
      const count = Math.min(REPAIR_SLICE, affected.length - from);
      k.repairNodes(vectorsPtr, dim, metric, adjacencyPtr, R, L, alpha, deletedPtr, nodesPtr + from * 4, count, n, visited, scratch, half ? 1 : 0);
      await pace?.();
    }
  } finally {
    arena.release(mark);
  }
}

/** Stored row in [from, to) nearest to c (squared L2). */
function nearestMember(kernels: Kernels, vectorsPtr: number, half: boolean, c: Float32Array, from: number, to: number, dim: number): number {
  const { arena, k } = kernels;
  const mark = arena.mark();
  try {
    const ids = arena.allocFrom(Uint32Array.from({ length: to - from }, (_, i) => from + i));
    const out = arena.alloc((to - from) * 4);
    k.rerank(arena.allocFrom(c), vectorsPtr, dim, METRIC_L2, half ? 1 : 0, ids, to - from, to - from, 1, out, arena.alloc(4), 0);
    return arena.u32(out, 1)[0];
  } finally {
    arena.release(mark);
  }
}

/**
 * What new rows need besides their vectors: the zone whose centroid is nearest (squared L2, as the
 * zones were trained), PQ codes of the row (of its residual from that centroid under residual PQ)
 * and, under residual PQ, the node term (residualTerms).
 */
function* quantizeRows(
  kernels: Kernels, rows: Float32Array, centroids: Float32Array, codebooks: Float32Array,
  dim: number, m: number, residual: boolean, metric: number,
): Steps<{ zones: Uint32Array; codes: Uint8Array; terms: Float32Array }> {
  const { arena } = kernels;
  const count = rows.length / dim;
  const zones = new Uint32Array(count);
  const codes = new Uint8Array(count * m);
  if (count === 0) return { zones, codes, terms: new Float32Array(0) };
  const mark = arena.mark();
  try {
    const nearestPtr = arena.alloc(count * 4);
    assignInArena(kernels, arena.allocFrom(rows), count, dim, dim, centroids, centroids.length / dim, nearestPtr, arena.alloc(count * 4));
    zones.set(arena.u32(nearestPtr, count));
  } finally {
    arena.release(mark);
  }
  const input = residual ? residualRows((i) => rows.subarray(i * dim, (i + 1) * dim), zones, centroids, dim) : rows;
  yield* encodePQSteps(kernels, input, count, dim, m, codebooks, codes);
  const terms = residual ? residualTerms(codebooks, codes, zones, centroids, count, dim, m, metric) : new Float32Array(0);
  return { zones, codes, terms };
}

/** Float32 copy of binary16 rows. */
function decodeAll(kernels: Kernels, rows: Uint16Array): Float32Array {
  const { arena, k } = kernels;
  const mark = arena.mark();
  try {
    const out = arena.alloc(rows.length * 4);
    k.decodeHalfBlock(arena.allocFrom(rows), out, rows.length);
    return arena.f32(out, rows.length).slice();
  } finally {
    arena.release(mark);
  }
}

/** Binary16 encoding of float32 rows (values within ±65504). */
function encodeRows(kernels: Kernels, rows: Float32Array): Uint16Array {
  const { arena } = kernels;
  const mark = arena.mark();
  try {
    return toHalf(kernels, arena.allocFrom(rows), rows.length);
  } finally {
    arena.release(mark);
  }
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

/**
 * Append rows (unit length under cosine) to an installed index in place: each joins the zone whose
 * centroid is nearest (outside the zone ranges, so zone scans skip it until the next layout; the
 * graph reaches it), is encoded with the trained PQ and linked into the graph on this thread (never
 * to the deleted nodes of the bitmap at deletedPtr, 0: none: the search for its neighbours widens
 * past them, and a row no walk from the entry points reaches gets an in-link, connectGraph),
 * without yielding. The caller checks there is room (layout.capacity) and that binary16 storage
 * fits the rows. Returns the zone of each row, and the linking's promise: settled by the time this
 * returns (the work is done synchronously), awaited only to surface an error.
 */
export function appendInPlace(
  kernels: Kernels, lay: IndexLayout, rows: Float32Array, options: ResolvedOptions, deletedPtr: number,
): { zones: Uint32Array; linked: Promise<void> } {
  const { arena } = kernels;
  const { dim, m, nZones, nGroups, degree: R } = lay;
  const count = rows.length / dim;
  const from = lay.n;
  // views: the memory is shared, so they stay valid while the arena grows below
  const centroids = arena.f32(lay.centroidsPtr, nZones * dim);
  const codebooks = arena.f32(lay.codebooksPtr, PQ_CENTROIDS * dim);

  const { zones: zoneOf, codes, terms } = runSteps(quantizeRows(kernels, rows, centroids, codebooks, dim, m, lay.residual, lay.metric));
  arena.u8(lay.codesPtr + from * m, count * m).set(codes);
  if (lay.residual) {
    arena.f32(lay.vecTermPtr + from * 4, count).set(terms);
    arena.u32(lay.zoneOfPtr + from * 4, count).set(zoneOf);
  }
  if (lay.halfStorage) arena.u16(lay.vectorsPtr + from * dim * 2, rows.length).set(encodeRows(kernels, rows));
  else arena.f32(lay.vectorsPtr + from * dim * 4, rows.length).set(rows);
  if (lay.rowNormsPtr) kernels.k.halfRowNorms(lay.vectorsPtr, from, from + count, dim, lay.rowNormsPtr);
  lay.n += count;

  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = from + i;
  const zones: ZoneLayout = {
    nZones, centroids, zoneStart: arena.u32(lay.zoneStartPtr, nZones + 1), zoneEntry: arena.u32(lay.zoneEntryPtr, nZones),
    nGroups, groupCentroids: new Float32Array(0), groupStart: new Uint32Array(0), order: new Uint32Array(0),
  };
  // never yields (no workers, no pause): nothing else touches the arena meanwhile
  const linked = linkNodes(
    kernels,
    {
      vectorsPtr: lay.vectorsPtr, n: lay.capacity, dim, metric: lay.metric, half: lay.halfStorage, deletedPtr, zones,
      centroidsPtr: lay.centroidsPtr, groupCentroidsPtr: lay.groupCentroidsPtr, groupStartPtr: lay.groupStartPtr,
    },
    lay.adjacencyPtr, order, from,
    {
      degree: R, efConstruction: options.efConstruction, alpha: options.alpha, buildProbe: 2, shape: options.graph, seed: options.seed + 2,
      fresh: false, yieldEveryMs: Infinity, connect: 'changed',
    },
  );
  return { zones: zoneOf, linked };
}
