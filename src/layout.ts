/**
 * Every array of an index, where it is defined: in the arena, as pointers and shapes the kernels
 * read (IndexLayout), and outside it, as the flat arrays a file holds or a build produces
 * (IndexArrays); install lays the second out as the first in a fresh arena, viewArrays views the
 * first as the second.
 */
import { Arena } from './memory.js';
import { createKernels, type Kernels, METRIC_L2 } from './kernels/wasm.js';
import { PQ_CENTROIDS, pairCodebooks, transposeCodebooks } from './pq.js';
import { kernelMetric } from './options.js';
import type { IndexMeta } from './persist.js';

/** Where an index's arrays live in the arena, and their shapes. Shared by builder, searchers, io. */
export interface IndexLayout {
  /** Nodes in use: [0, zoned) laid out zone by zone, [zoned, n) appended since (reached through the graph). */
  n: number;
  /** Rows allocated in every per-node array (n <= capacity): appends fill them in place. */
  capacity: number;
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
  /**
   * Float32Array[n * dim] or Uint16Array[n * dim] (halfStorage): vectors in internal (zone-contiguous)
   * order, for re-ranking; 0 when they live outside the arena (src/rows.ts).
   */
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
  /** Int16Array: see pairCodebooks in src/pq.ts (0 when every subspace has 4 dimensions), and its scale. */
  codebooksQPtr: number;
  codebookQScale: number;
  /** Float32Array[capacity]: |row|² of each stored row, for the exact walk's dot-product form (half storage under L2; else 0). */
  rowNormsPtr: number;
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

/** The flat arrays of an index outside the arena (views or copies). */
export interface IndexArrays {
  /** float32 rows, or binary16 bits when meta.storage is 'float16'. */
  vectors: Float32Array | Uint16Array;
  codes: Uint8Array;
  adjacency: Uint32Array;
  codebooks: Float32Array;
  centroids: Float32Array;
  zoneStart: Uint32Array;
  zoneEntry: Uint32Array;
  groupCentroids: Float32Array;
  groupStart: Uint32Array;
  vecTerm: Float32Array;
  ids: Uint32Array;
  /** Bitmap of deleted nodes (bit set: deleted), or null when none are. */
  deleted: Uint8Array | null;
  /** Uint32Array[n - zoned]: zone of each appended node. */
  tailZones: Uint32Array;
}

/** Views of a built index's arrays in the arena (valid until the arena grows or changes). */
export function viewArrays(
  kernels: Kernels, lay: IndexLayout, ids: Uint32Array, deleted: Uint8Array | null, tailZones: Uint32Array,
): IndexArrays {
  const { arena } = kernels;
  const { n, dim, m, degree, nZones, nGroups } = lay;
  return {
    vectors: lay.vectorsPtr === 0 ? (lay.halfStorage ? new Uint16Array(0) : new Float32Array(0)) : lay.halfStorage ? arena.u16(lay.vectorsPtr, n * dim) : arena.f32(lay.vectorsPtr, n * dim),
    codes: arena.u8(lay.codesPtr, n * m),
    adjacency: arena.u32(lay.adjacencyPtr, n * (degree + 1)),
    codebooks: arena.f32(lay.codebooksPtr, PQ_CENTROIDS * dim),
    centroids: arena.f32(lay.centroidsPtr, nZones * dim),
    zoneStart: arena.u32(lay.zoneStartPtr, nZones + 1),
    zoneEntry: arena.u32(lay.zoneEntryPtr, nZones),
    groupCentroids: nGroups ? arena.f32(lay.groupCentroidsPtr, nGroups * dim) : new Float32Array(0),
    groupStart: nGroups ? arena.u32(lay.groupStartPtr, nGroups + 1) : new Uint32Array(0),
    vecTerm: lay.residual ? arena.f32(lay.vecTermPtr, n) : new Float32Array(0),
    ids: ids.subarray(0, n),
    deleted: deleted ? deleted.subarray(0, (n + 7) >> 3) : null,
    tailZones,
  };
}

/** A build's arena that becomes its index's: the rows and the graph already in it, where they are. */
export interface InPlace {
  kernels: Kernels;
  vectorsPtr: number;
  adjacencyPtr: number;
}

/**
 * Copy validated arrays into a fresh arena and return the kernels and layout over them. Per-node
 * arrays get `capacity` rows (at least n; the rows past n zeroed) so that nodes can be appended.
 * `rowsOutside`: the re-ranking rows stay out of the arena (vectorsPtr 0; src/rows.ts holds them).
 * `inPlace`: the rows and adjacency are already laid out (capacity n) in that arena, which the rest
 * joins: no second copy of the index at the end of a build.
 */
export function install(meta: IndexMeta, a: IndexArrays, capacity = meta.n, rowsOutside = false, inPlace?: InPlace): { kernels: Kernels; layout: IndexLayout } {
  const kernels = inPlace?.kernels ?? createKernels(new Arena());
  const { arena } = kernels;
  const { n, dim, m, degree } = meta;
  capacity = Math.max(capacity, n);
  if (inPlace && capacity !== n) throw new Error('zgq internal invariant violated: an index installed in place has no room for appends');
  const { codebooksT, norms } = transposeCodebooks(a.codebooks, dim, m);
  const paired = pairCodebooks(a.codebooks, dim, m);
  const zoneOf = new Uint32Array(capacity);
  for (let z = 0; z < meta.nZones; z++) zoneOf.fill(z, a.zoneStart[z], a.zoneStart[z + 1]);
  zoneOf.set(a.tailZones, meta.zoned);
  /** A region of `rows` rows of which the first ones come from `data`. */
  const rows = (data: Float32Array | Uint32Array | Uint16Array | Uint8Array, perRow: number): number => {
    const bytes = capacity * perRow * data.BYTES_PER_ELEMENT;
    const ptr = arena.alloc(bytes);
    const view = arena.u8(ptr, bytes);
    view.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    view.fill(0, data.byteLength);
    return ptr;
  };
  const halfStorage = meta.storage === 'float16';
  const metric = kernelMetric(meta.options.metric);
  const layout: IndexLayout = {
    n, capacity, dim, m, degree, nZones: meta.nZones, nGroups: meta.nGroups, residual: meta.residual,
    halfStorage,
    metric,
    vectorsPtr: rowsOutside ? 0 : inPlace ? inPlace.vectorsPtr : rows(a.vectors, dim),
    // derived from the rows, not stored in the file; only the exact walk reads them
    rowNormsPtr: halfStorage && metric === METRIC_L2 && !rowsOutside ? arena.alloc(capacity * 4) : 0,
    codesPtr: rows(a.codes, m),
    adjacencyPtr: inPlace ? inPlace.adjacencyPtr : rows(a.adjacency, degree + 1),
    codebooksPtr: arena.allocFrom(a.codebooks),
    codebooksTPtr: arena.allocFrom(codebooksT),
    codebookNormsPtr: arena.allocFrom(norms),
    codebooksQPtr: paired ? arena.allocFrom(paired.pairs) : 0,
    codebookQScale: paired ? paired.scale : 0,
    centroidsPtr: arena.allocFrom(a.centroids),
    zoneStartPtr: arena.allocFrom(a.zoneStart),
    zoneEntryPtr: arena.allocFrom(a.zoneEntry),
    groupCentroidsPtr: meta.nGroups ? arena.allocFrom(a.groupCentroids) : 0,
    groupStartPtr: meta.nGroups ? arena.allocFrom(a.groupStart) : 0,
    zoneOfPtr: meta.residual ? arena.allocFrom(zoneOf) : 0,
    vecTermPtr: meta.residual ? rows(a.vecTerm, 1) : 0,
  };
  if (layout.rowNormsPtr) {
    kernels.k.halfRowNorms(layout.vectorsPtr, 0, n, dim, layout.rowNormsPtr);
    arena.f32(layout.rowNormsPtr + n * 4, capacity - n).fill(0);
  }
  return { kernels, layout };
}
