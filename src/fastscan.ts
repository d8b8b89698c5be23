/**
 * The 'fastscan' traversal: every stored vector, through 4-bit PQ codes scanned 16 rows at a time
 * with SIMD table lookups (assembly/fastscan.ts), and the best k * rerank re-ranked exactly on the
 * stored rows. On data with no structure for zones and a graph to exploit, this is the fastest way
 * to high recall: an exact scan reads 2 * dim bytes per vector, this one dim / 4 bytes, and summing
 * table entries in u16 lanes costs a fraction of a distance.
 *
 * The codes are derived from the stored rows, not saved: the first fastscan search of an index
 * trains 16 centroids per subquantizer on a sample of its vectors and encodes every vector (about
 * a second at 100K x 100), and again after vectors were added. Searches through a filter or on an
 * index with removed vectors scan exactly instead ('scan').
 */
import { type Built, storedRow, storedRows } from './built.js';
import { encodePQSteps, subspaceOffset, trainPQSteps } from './pq.js';
import { runSteps } from './pace.js';
import { Rng } from './random.js';
import { METRIC_IP } from './kernels/wasm.js';

/** Centroids per subquantizer: 4-bit codes. */
export const FAST_CENTROIDS = 16;
/** Subquantizers at most: their u8 table entries sum in u16 lanes (256 * 255 < 65536). */
const MAX_SUBQUANTIZERS = 256;
/** Rows per block of the code layout (one SIMD register of bytes). */
const BLOCK_ROWS = 16;
/** Training rows at most. */
const TRAINING_ROWS = 10_000;
/** Rows decoded and encoded at a time. */
const ENCODE_ROWS = 8192;

/** The 4-bit codes of an index's first n stored vectors, and the buffers a search uses. */
export interface FastScan {
  /** Rows encoded (the index's layout.n when built). */
  n: number;
  /** Subquantizers (even): two share a byte. */
  m: number;
  /** FAST_CENTROIDS centroids per subquantizer in the PQ layout: subspace j at FAST_CENTROIDS * o_j floats. */
  codebooks: Float32Array;
  /** Arena: blocked codes for ceil(capacity / 16) blocks (see assembly/fastscan.ts). */
  codesPtr: number;
  /** Arena scratch: the u8 table, 32 bytes of lanes, and the candidates (ids and u16 sums). */
  lutPtr: number;
  lanesPtr: number;
  candPtr: number;
  candSumsPtr: number;
  candCapacity: number;
  /** Float32Array[m * 16]: the table before it is rounded to u8. */
  lut: Float32Array;
  /** Bytes held in the arena. */
  bytes: number;
}

/** Subquantizers for `dim` dimensions: about two dimensions each, an even count, at most 256; 0 below 2 dimensions. */
export function fastSubquantizers(dim: number): number {
  if (dim < 2) return 0;
  return Math.min(MAX_SUBQUANTIZERS, Math.max(2, 2 * Math.round(dim / 4)));
}

/** The index's fast-scan codes, trained and encoded now if missing or older than its rows. */
export function fastScanOf(built: Built, seed: number): FastScan | null {
  const { layout } = built;
  const old = built.fastScan;
  if (old && old.n === layout.n) return old;
  const m = fastSubquantizers(layout.dim);
  if (m === 0) return null;
  const { kernels } = built;
  const { arena } = kernels;
  const { dim, n, capacity } = layout;
  const pairs = m / 2;
  const blocks = Math.ceil(capacity / BLOCK_ROWS);
  // codes and scratch sized for the layout's capacity: an append re-encodes into the same buffers
  const f: FastScan = old ?? {
    n: 0, m, codebooks: new Float32Array(0),
    codesPtr: arena.alloc(blocks * pairs * BLOCK_ROWS),
    lutPtr: arena.alloc(m * FAST_CENTROIDS),
    lanesPtr: arena.alloc(32),
    candPtr: 0, candSumsPtr: 0, candCapacity: 0,
    lut: new Float32Array(m * FAST_CENTROIDS),
    bytes: blocks * pairs * BLOCK_ROWS + m * FAST_CENTROIDS + 32,
  };
  // trained on a sample of the stored rows, each decoded as the training reads it
  const sample = new Rng(seed + 13).sample(n, Math.min(n, TRAINING_ROWS)).sort();
  const training = (i: number, into: Float32Array) => into.set(storedRow(built, sample[i]));
  f.codebooks = runSteps(trainPQSteps(kernels, training, sample.length, dim, m, { seed: seed + 17, centroids: FAST_CENTROIDS }));
  const codes = new Uint8Array(ENCODE_ROWS * m);
  for (let from = 0; from < n; from += ENCODE_ROWS) {
    const to = Math.min(n, from + ENCODE_ROWS);
    runSteps(encodePQSteps(kernels, storedRows(built, from, to), to - from, dim, m, f.codebooks, codes, FAST_CENTROIDS));
    const blocked = arena.u8(f.codesPtr, blocks * pairs * BLOCK_ROWS);
    for (let i = from; i < to; i++) {
      const row = (i - from) * m;
      const base = (i >> 4) * pairs * BLOCK_ROWS + (i & 15);
      for (let p = 0; p < pairs; p++) blocked[base + p * BLOCK_ROWS] = codes[row + 2 * p] | (codes[row + 2 * p + 1] << 4);
    }
  }
  f.n = n;
  built.fastScan = f;
  return f;
}

/**
 * Search the query in the searcher's query buffer by fast scan: up to k internal ids and kernel
 * distances into outIds / outDist at `offset`, nearest first; returns how many.
 */
export function searchFast(built: Built, f: FastScan, k: number, rerank: number, outIds: Uint32Array, outDist: Float32Array, offset: number): number {
  const { kernels, layout, searcher } = built;
  const { arena } = kernels;
  const { dim, n } = layout;
  const m = f.m;
  const q = searcher.queryView;
  // the table: per subquantizer, the query's partial distance to each centroid, less the smallest
  const lut = f.lut;
  const ip = layout.metric === METRIC_IP;
  let span = 0;
  for (let j = 0; j < m; j++) {
    const o = subspaceOffset(j, dim, m);
    const len = subspaceOffset(j + 1, dim, m) - o;
    let min = Infinity;
    let max = -Infinity;
    for (let c = 0; c < FAST_CENTROIDS; c++) {
      const centroid = FAST_CENTROIDS * o + c * len;
      let s = 0;
      for (let d = 0; d < len; d++) {
        const x = f.codebooks[centroid + d];
        s += ip ? -q[o + d] * x : (q[o + d] - x) * (q[o + d] - x);
      }
      lut[j * FAST_CENTROIDS + c] = s;
      if (s < min) min = s;
      if (s > max) max = s;
    }
    for (let c = 0; c < FAST_CENTROIDS; c++) lut[j * FAST_CENTROIDS + c] -= min;
    if (max - min > span) span = max - min;
  }
  const scale = span > 0 ? 255 / span : 0;
  const table = arena.u8(f.lutPtr, m * FAST_CENTROIDS);
  for (let i = 0; i < lut.length; i++) table[i] = Math.round(lut[i] * scale);
  const count = Math.min(n, Math.max(k, k * rerank));
  // candidates: twice the count, so that a full buffer is cut back by half
  if (2 * count + 1 > f.candCapacity) {
    f.candCapacity = Math.max(2 * count + 1, 2 * f.candCapacity);
    f.candPtr = arena.alloc(f.candCapacity * 4);
    f.candSumsPtr = arena.alloc(f.candCapacity * 2);
    f.bytes += f.candCapacity * 6;
  }
  // the kernel's buffer is 2 * count + 1 whatever the allocation: which of the rows tied at the cut
  // survive depends on when the buffer fills, and so must not depend on earlier, larger searches
  const got = kernels.k.fastScanTop(f.lutPtr, f.codesPtr, Math.ceil(n / BLOCK_ROWS), m / 2, n, count, f.candPtr, f.candSumsPtr, 2 * count + 1, f.lanesPtr);
  return searcher.runListed(k, f.candPtr, got, outIds, outDist, offset);
}
