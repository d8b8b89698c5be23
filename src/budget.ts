/**
 * What an index costs in WebAssembly memory, known before the work starts: the bytes of each
 * component of a laid-out index (stats().memory reports the same figures), and the high-water
 * mark of the arena a build or a re-layout works in. Build, add, compact and load check these
 * against the arena limit first, so work that cannot fit is refused with OUT_OF_MEMORY before any
 * of it is done, and the index stays as it was.
 *
 * The build estimates follow the arena's phases (src/index.ts build, src/mutate.ts relayout):
 *
 * ```
 * rows (float32, internal order) | adjacency n·(R+1)·4 | one phase's temporaries at a time:
 *                                                      |   k-means / PQ chunks, graph lanes
 *                                                      |   (visited n·2, order and zone tables),
 *                                                      |   or the binary16 copy of the rows n·dim·2
 * ```
 * While a build links the graph its adjacency is wider (room for the slack: src/graph.ts buildGraph).
 * measured against Arena.peak in test/memory-limits.test.ts (an upper bound, within a few MiB).
 */
import { PQ_CENTROIDS, pairedRows } from './pq.js';

/** The shape of a laid-out index, as the layout or a file's meta gives it. */
export interface IndexShape {
  /** Rows allocated per node array (n plus the room kept for in-place adds). */
  capacity: number;
  dim: number;
  m: number;
  degree: number;
  nZones: number;
  nGroups: number;
  half: boolean;
  residual: boolean;
  /** Whether per-row norms are kept (binary16 rows under L2). */
  rowNorms: boolean;
  /** Whether the 16-bit paired codebooks are kept (subspaces other than 4 long). */
  paired: boolean;
  /** The re-ranking rows live outside the arena (src/rows.ts): none of their bytes are in it. */
  rowsOutside?: boolean;
}

/** Bytes of each component of a laid-out index, per-node arrays counted at their capacity. */
export interface IndexBytes {
  /** Stored rows (binary16 or float32); binary16 rows under 'l2' or 'cosine' also keep their squared norms (4 bytes each). */
  vectors: number;
  codes: number;
  graph: number;
  codebooks: number;
  zones: number;
  ids: number;
}

export function indexBytes(s: IndexShape): IndexBytes {
  const rows = s.capacity;
  return {
    vectors: s.rowsOutside ? 0 : rows * s.dim * (s.half ? 2 : 4) + (s.rowNorms ? rows * 4 : 0),
    // codes, then per-node terms and zones under residual PQ
    codes: rows * s.m + (s.residual ? rows * 8 : 0),
    graph: rows * (s.degree + 1) * 4,
    // plain + transposed, norms, and the 16-bit pairs
    codebooks: PQ_CENTROIDS * s.dim * 8 + s.m * PQ_CENTROIDS * 4 + (s.paired ? pairedRows(s.dim, s.m) * PQ_CENTROIDS * 4 : 0),
    zones: s.nZones * (s.dim * 4 + 8) + 4 + s.nGroups * (s.dim * 4 + 4) + (s.nGroups ? 4 : 0),
    ids: rows * 4,
  };
}

/** Scratch of one searcher at default options (visited tags, query, lookup table, pool, zone tables). */
function searcherBytes(s: IndexShape): number {
  return s.capacity * 2 + s.dim * 16 + s.m * PQ_CENTROIDS * 4 + s.nZones * 6 + SEARCH_POOL_BYTES;
}

/** Pool and result room of a searcher at ordinary ef and k (larger calls grow it, see Searcher.ensure). */
const SEARCH_POOL_BYTES = 64 << 10;
/** Fixed allowance: kernel statics, context blocks, alignment, the batch lanes' words. */
const FIXED_BYTES = 4 << 20;

/** The arena a laid-out index is installed in, with one searcher: what loading it needs. */
export function installArenaBytes(s: IndexShape): number {
  const b = indexBytes(s);
  // ids live in JS memory; the rest is in the arena
  return b.vectors + b.codes + b.graph + b.codebooks + b.zones + searcherBytes(s) + FIXED_BYTES;
}

/** The work arena of a build or re-layout over n rows (float32 in it), before the index is installed. */
export interface WorkShape {
  n: number;
  dim: number;
  m: number;
  degree: number;
  /** Beam width of the graph build (its candidate lists are per lane). */
  efConstruction: number;
  nZones: number;
  /** Threads linking the graph: each has its own visited tags and scratch. */
  lanes: number;
  /** The rows are stored as binary16 (a large build links them as such: buildsOnHalfRows). */
  half: boolean;
  /** Links a row has room for while the graph is linked (src/graph.ts linkCapacity); default degree. */
  linkCapacity?: number;
  /**
   * The index being laid out again (add, compact): its adjacency is held beside the new one, and
   * when removed nodes are repaired (`repair`), its rows too, before the new rows are made.
   */
  previous?: { n: number; repair: boolean };
  /**
   * The graph is linked from candidates a chunk of nodes at a time (a GPU build: src/graph.ts
   * linkCandidates): those chunks' ids and distances, and every node's out-links beside the graph.
   */
  candidates?: { width: number; chunk: number };
}

/**
 * Builds whose float32 rows take more than `halfAbove` bytes link the graph on binary16 rows when the
 * index stores them so: half the rows' bytes at the build's peak, for about 10-25 % more time
 * linking (binary16 distances decode each row), the same recall (BENCHMARKS.md "Past one memory").
 * Smaller builds keep float32. Tests lower it; nothing else changes it.
 * @internal
 */
export const buildRows = { halfAbove: 512 << 20 };

/** Whether a build of n rows of dim links its graph on binary16 rows (see buildRows). */
export function buildsOnHalfRows(n: number, dim: number, half: boolean): boolean {
  return half && n * dim * 4 > buildRows.halfAbove;
}

/** Rows a pass over a build's rows (copies, residuals) handles between two steps (a few milliseconds at 128 dimensions). */
export const BUILD_SLICE_ROWS = 8192;

/** Rows of one k-means / PQ assignment chunk (see src/kmeans.ts, src/zones.ts, src/pq.ts). */
const TRAIN_CHUNK_ROWS = 1 << 16;

export function workArenaBytes(s: WorkShape): number {
  const { n, dim, degree } = s;
  const linking = s.linkCapacity ?? degree;
  // a large build holds binary16 rows as such (and a slice of float32 ones to encode them)
  const rows = !s.previous && buildsOnHalfRows(n, dim, s.half) ? n * dim * 2 + Math.min(n, BUILD_SLICE_ROWS) * dim * 4 : n * dim * 4;
  const adjacency = n * (degree + 1) * 4;
  const training = Math.min(n, TRAIN_CHUNK_ROWS) * (dim * 4 + 8) + s.nZones * dim * 12 + PQ_CENTROIDS * dim * 12;
  // the lanes' temporaries beside the adjacency while it is wider (the rest take the narrow one)
  const fromCandidates = s.candidates ? s.candidates.chunk * s.candidates.width * 8 + n * (degree + 1) * 4 : 0;
  const graphLanes = s.lanes * (n * 2 + Math.max(s.efConstruction, s.candidates?.width ?? 0) * 8 + (linking + 1) * 8 + dim * 8) + n * 12 + s.nZones * 16 +
    n * (linking - degree) * 4 + fromCandidates;
  // re-layouts hold the previous adjacency throughout, and its rows while removed nodes are
  // repaired: released before the new rows are made (src/mutate.ts relayout)
  const previousAdjacency = s.previous ? s.previous.n * (degree + 1) * 4 : 0;
  const repair = s.previous?.repair ? s.previous.n * (dim * 4 + 2) : 0;
  // a build's index is installed in its arena (src/build.ts): codes, per-node terms and norms, the
  // searcher's visited tags and the codebooks' forms join the rows and the narrowed graph
  const installed = s.previous ? 0 : n * (s.m + 14) + PQ_CENTROIDS * dim * 12 + s.nZones * dim * 8;
  const work = rows + adjacency + Math.max(training, graphLanes, installed);
  return previousAdjacency + Math.max(repair, work) + s.nZones * dim * 4 + FIXED_BYTES;
}
