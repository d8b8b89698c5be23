/**
 * Exact ground truth for the benchmark: computed once by brute force and cached on disk between
 * runs (an ivecs file plus a JSON sidecar holding its checksum), or shipped with a dataset and
 * spot-checked against brute force.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { ZGQError } from '../errors.js';
import { bruteForceKnn } from '../data/groundtruth.js';
import { encodeIvecs, parseIvecs } from '../data/vecs.js';

const CACHE_FORMAT = 'zgq-bench-groundtruth';
const CACHE_VERSION = 1;

/** Ground truth as the harness uses it: `nQueries * depth` ids, nearest first. */
export interface Truth {
  ids: Uint32Array;
  depth: number;
  source: 'file' | 'computed' | 'cache';
  path: string | null;
  spotChecked: number;
}

/** Sidecar of a cached ground-truth file. */
interface CacheMeta {
  format: string;
  version: number;
  key: string;
  label: string;
  nBase: number;
  nQueries: number;
  dim: number;
  depth: number;
  metric: 'l2';
  /** zlib CRC-32 of the whole ivecs file. */
  crc32: number;
}

function bytesOf(a: Float32Array | Uint8Array | Int32Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Floats a dataset key hashes per call. */
const KEY_SLICE = 1 << 28;

/**
 * A short cache key for a dataset: CRC-32 over its describing parameters and its vector bytes,
 * so a change in the generator or the files gives a new key instead of stale truth.
 */
export function datasetKey(params: Record<string, unknown>, arrays: readonly Float32Array[]): string {
  let c = crc32(JSON.stringify(params));
  // a slice of rows at a time: one byte view holds at most 4 GiB (10M x 128 floats are 5 GiB)
  for (const a of arrays) for (let from = 0; from < a.length; from += KEY_SLICE) c = crc32(bytesOf(a.subarray(from, from + KEY_SLICE)), c);
  return (c >>> 0).toString(16).padStart(8, '0');
}

/** Input of {@link cachedGroundTruth}. */
export interface TruthRequest {
  cacheDir: string;
  /** File-name-safe dataset label, e.g. `synthetic-100k`. */
  label: string;
  /** From {@link datasetKey}. */
  key: string;
  base: Float32Array;
  nBase: number;
  queries: Float32Array;
  nQueries: number;
  dim: number;
  /** Neighbours per query to keep. */
  depth: number;
  log?: (line: string) => void;
}

/** Paths of the cache files for a request. */
export function truthCachePaths(r: Pick<TruthRequest, 'cacheDir' | 'label' | 'key' | 'depth'>): { ivecs: string; meta: string } {
  const stem = join(r.cacheDir, `gt-${r.label}-${r.key}-k${r.depth}`);
  return { ivecs: `${stem}.ivecs`, meta: `${stem}.json` };
}

/** Reads and validates a cache entry; returns the reason it is unusable instead of throwing. */
async function readCache(r: TruthRequest, paths: { ivecs: string; meta: string }): Promise<Uint32Array | string> {
  let meta: CacheMeta;
  try {
    meta = JSON.parse(await readFile(paths.meta, 'utf8')) as CacheMeta;
  } catch (err) {
    return `sidecar unreadable: ${err instanceof Error ? err.message : String(err)}`;
  }
  const expect: Partial<CacheMeta> = {
    format: CACHE_FORMAT, version: CACHE_VERSION, key: r.key, nBase: r.nBase, nQueries: r.nQueries, dim: r.dim, depth: r.depth,
  };
  for (const [field, value] of Object.entries(expect)) {
    if ((meta as unknown as Record<string, unknown>)[field] !== value) {
      return `sidecar field ${field} is ${JSON.stringify((meta as unknown as Record<string, unknown>)[field])}, expected ${JSON.stringify(value)}`;
    }
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(paths.ivecs);
  } catch (err) {
    return `ivecs unreadable: ${err instanceof Error ? err.message : String(err)}`;
  }
  const sum = crc32(bytes) >>> 0;
  if (sum !== meta.crc32) return `checksum ${sum.toString(16)} does not match the recorded ${Number(meta.crc32).toString(16)}`;
  let parsed;
  try {
    parsed = parseIvecs(bytes, paths.ivecs);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  if (parsed.n !== r.nQueries || parsed.dim !== r.depth) return `shape ${parsed.n} x ${parsed.dim}, expected ${r.nQueries} x ${r.depth}`;
  const ids = new Uint32Array(parsed.data.buffer, parsed.data.byteOffset, parsed.data.length);
  for (let i = 0; i < ids.length; i++) if (ids[i] >= r.nBase) return `id ${ids[i]} at position ${i} is outside the base`;
  return ids;
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * Exact L2 ground truth for the request, read from the cache when a valid entry exists; otherwise
 * computed by brute force and written to the cache (ivecs first, sidecar last, each atomically, so
 * an interrupted write is never taken for a valid entry). A corrupt entry (bad checksum, wrong
 * shape, unreadable) is reported through `log` and recomputed.
 */
export async function cachedGroundTruth(r: TruthRequest): Promise<Truth> {
  const paths = truthCachePaths(r);
  if (existsSync(paths.ivecs) || existsSync(paths.meta)) {
    const got = await readCache(r, paths);
    if (typeof got !== 'string') return { ids: got, depth: r.depth, source: 'cache', path: paths.ivecs, spotChecked: 0 };
    r.log?.(`ground-truth cache ${paths.ivecs} is unusable (${got}); recomputing`);
  }
  const { ids } = bruteForceKnn(r.base, r.nBase, r.queries, r.nQueries, r.dim, r.depth, 'l2');
  try {
    await mkdir(r.cacheDir, { recursive: true });
    const bytes = encodeIvecs(ids, r.depth);
    await writeAtomic(paths.ivecs, bytes);
    const meta: CacheMeta = {
      format: CACHE_FORMAT, version: CACHE_VERSION, key: r.key, label: r.label,
      nBase: r.nBase, nQueries: r.nQueries, dim: r.dim, depth: r.depth, metric: 'l2', crc32: crc32(bytes) >>> 0,
    };
    await writeAtomic(paths.meta, JSON.stringify(meta, null, 2) + '\n');
  } catch (err) {
    // a read-only cache only costs time on the next run
    r.log?.(`cannot write the ground-truth cache ${paths.ivecs}: ${err instanceof Error ? err.message : String(err)}`);
    return { ids, depth: r.depth, source: 'computed', path: null, spotChecked: 0 };
  }
  return { ids, depth: r.depth, source: 'computed', path: paths.ivecs, spotChecked: 0 };
}

/**
 * Re-checks a shipped ground truth on `count` queries spread over the set: the exact distances of
 * its first k ids must equal brute force's k smallest distances (ids may differ between equal
 * distances). Returns the number of queries checked.
 *
 * @throws ZGQError('CORRUPT_FILE') naming the file and the first query that disagrees.
 */
export function spotCheckTruth(
  truth: Uint32Array,
  depth: number,
  base: Float32Array,
  nBase: number,
  queries: Float32Array,
  nQueries: number,
  dim: number,
  k: number,
  count: number,
  file: string,
): number {
  const m = Math.min(count, nQueries);
  if (m === 0) return 0;
  const picks: number[] = [];
  for (let i = 0; i < m; i++) picks.push(Math.floor(((i + 0.5) * nQueries) / m));
  const q = new Float32Array(m * dim);
  picks.forEach((p, i) => q.set(queries.subarray(p * dim, (p + 1) * dim), i * dim));
  const exact = bruteForceKnn(base, nBase, q, m, dim, k, 'l2');
  for (let i = 0; i < m; i++) {
    const p = picks[i];
    const got: number[] = [];
    for (let j = 0; j < k; j++) {
      const id = truth[p * depth + j];
      if (id >= nBase) throw new ZGQError('CORRUPT_FILE', `ground truth '${file}': query ${p} lists id ${id}, but the base has ${nBase} vectors`);
      let s = 0;
      for (let d = 0; d < dim; d++) {
        const v = queries[p * dim + d] - base[id * dim + d];
        s += v * v;
      }
      got.push(s);
    }
    got.sort((a, b) => a - b);
    for (let j = 0; j < k; j++) {
      const want = exact.distances[i * k + j];
      if (Math.abs(got[j] - want) > 1e-4 * Math.max(1, want)) {
        throw new ZGQError(
          'CORRUPT_FILE',
          `ground truth '${file}' disagrees with brute force on query ${p}: neighbour ${j} is at distance ${got[j]}, exact is ${want}`,
        );
      }
    }
  }
  return m;
}
