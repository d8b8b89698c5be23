/**
 * The benchmark's datasets: seeded synthetic sets (the ZGQ paper's clustered recipe, points on a
 * sphere with no structure, embedding-shaped high-dimensional sets), the real sets in the shared
 * data folder (SIFT, Fashion-MNIST, fastText word vectors), and a user's own vector files (`--base`), loaded as flat float32 with their
 * exact ground truth, plus the fvecs copies the FAISS child reads.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { ZGQError } from '../errors.js';
import { clusteredGaussian, embeddingLike, randomSphere, type Dataset } from '../data/synthetic.js';
import { bvecsToFloat32, encodeFvecs, readFvecs, readIdxImages, readIvecs } from '../data/vecs.js';
import { HDF5_BASE, HDF5_QUERIES, readVectorFile } from '../data/files.js';
import { cachedGroundTruth, datasetKey, spotCheckTruth, type Truth } from './truth.js';

interface SpecBase {
  name: string;
  description: string;
}

/**
 * Generated data: 'clustered' from {@link clusteredGaussian}, 'sphere' from {@link randomSphere}
 * (uniform on the unit sphere), 'embedding' from {@link embeddingLike} (unit length, low intrinsic
 * dimension in a high ambient one). Sphere and embedding sets are unit vectors: L2 ranks as cosine.
 */
export interface SyntheticSpec extends SpecBase {
  kind: 'synthetic';
  recipe: 'clustered' | 'sphere' | 'embedding';
  n: number;
  nQueries: number;
  dim: number;
  seed: number;
  /** Clustered only: 0.3 is the paper recipe (30 % of queries far from every cluster); 0 gives mixture queries only. */
  outlierFraction: number;
}

/** texmex files (`.fvecs` base and queries, `.ivecs` ground truth), relative to the data folder. */
export interface TexmexSpec extends SpecBase {
  kind: 'texmex';
  base: string;
  queries: string;
  groundTruth: string;
  /** Use the first `maxQueries` queries only (all when undefined). */
  maxQueries?: number;
}

/** gzip IDX image files (MNIST format) with an `.ivecs` ground truth, relative to the data folder. */
export interface IdxSpec extends SpecBase {
  kind: 'idx';
  base: string;
  queries: string;
  groundTruth: string;
  maxQueries?: number;
}

/**
 * A user's vector files, read by extension with the CLI's readers (src/data/files.ts), paths as
 * given (not relative to the data folder). Queries come from `queries`; else, for an HDF5 base, from
 * the same file's `test` dataset (the ann-benchmarks layout); else `nQueries` rows of the base are
 * held out as queries (seeded, removed from the base so none finds itself). Ground truth is
 * computed by brute force and cached like a synthetic set's.
 */
export interface FileSpec extends SpecBase {
  kind: 'file';
  base: string;
  /** Dataset of an HDF5 base (default 'train'). */
  baseDataset?: string;
  /** Vector column of Parquet and Arrow files, base and queries (default: src/data/columns.ts). */
  column?: string;
  queries?: string;
  /** Dataset of an HDF5 queries file (default 'test'). */
  queriesDataset?: string;
  /** Held-out queries, or the first ones of a queries file (all when undefined). */
  nQueries?: number;
  /** 'cosine' normalises every vector to unit length: L2 on unit vectors ranks as cosine does. */
  metric: 'l2' | 'cosine';
  /** Seed of the held-out row choice. */
  seed: number;
}

export type DatasetSpec = SyntheticSpec | TexmexSpec | IdxSpec | FileSpec;

/** A dataset ready to index: vectors, queries and exact ground truth. */
export interface BenchDataset {
  spec: DatasetSpec;
  name: string;
  description: string;
  dim: number;
  nBase: number;
  nQueries: number;
  base: Float32Array;
  queries: Float32Array;
  /** Synthetic paper-recipe data: 0 = mixture query, 1 = outlier; null otherwise. */
  queryKind: Uint8Array | null;
  truth: Truth;
  /** Cache key of the vectors (see {@link datasetKey}). */
  key: string;
}

/** Every dataset name `--dataset` accepts. */
export const DATASET_NAMES = [
  'synthetic-10k', 'synthetic-100k', 'synthetic-1m', 'synthetic-100k-mixture', 'siftsmall', 'fashion-mnist',
  'words', 'random-100k', 'embedding-768', 'embedding-1536',
] as const;
/** The embedding-like sets: `--dataset embeddings` names them all. */
export const EMBEDDING_DATASETS = ['words', 'random-100k', 'embedding-768', 'embedding-1536'];
/** What a run without `--dataset` measures. */
export const DEFAULT_DATASETS = ['synthetic-10k', 'synthetic-100k', 'siftsmall', 'fashion-mnist'];
/** What `--quick` measures. */
export const QUICK_DATASETS = ['synthetic-10k', 'siftsmall'];
/** Added by `--large`. */
export const LARGE_DATASET = 'synthetic-1m';

/** Options shaping a dataset spec. */
export interface SpecOptions {
  /** Queries to use (synthetic: generated; real: the first ones). */
  queries?: number;
  quick?: boolean;
}

function synthetic(name: string, n: number, outlierFraction: number, o: SpecOptions): SyntheticSpec {
  const nQueries = o.queries ?? (o.quick ? 500 : 1000);
  const recipe = outlierFraction > 0 ? `paper recipe (${Math.round(outlierFraction * 100)} % outlier queries)` : 'mixture queries only';
  return {
    kind: 'synthetic', recipe: 'clustered', name, n, nQueries, dim: 128, seed: 1, outlierFraction,
    description: `clustered Gaussian ${n.toLocaleString('en-US')} x 128, ${Math.max(10, Math.round(n / 1000))} clusters, spread 0.3, ${recipe}, seed 1`,
  };
}

/**
 * The spec of a named dataset.
 * @throws ZGQError('INVALID_ARGUMENT') for an unknown name.
 */
export function datasetSpec(name: string, o: SpecOptions = {}): DatasetSpec {
  switch (name) {
    case 'synthetic-10k':
      return synthetic(name, 10_000, 0.3, o);
    case 'synthetic-100k':
      return synthetic(name, 100_000, 0.3, o);
    case 'synthetic-1m':
      return synthetic(name, 1_000_000, 0.3, o);
    case 'synthetic-100k-mixture':
      return synthetic(name, 100_000, 0, o);
    case 'siftsmall':
      return {
        kind: 'texmex', name, base: 'siftsmall/siftsmall_base.fvecs', queries: 'siftsmall/siftsmall_query.fvecs',
        groundTruth: 'siftsmall/siftsmall_groundtruth.ivecs', maxQueries: o.queries,
        description: 'texmex ANN_SIFT10K: 10,000 x 128 SIFT descriptors, 100 queries, shipped ground truth',
      };
    case 'words':
      return {
        kind: 'texmex', name, base: 'words/words200_base.fvecs', queries: 'words/words200_query.fvecs',
        groundTruth: 'words/words200_groundtruth.ivecs', maxQueries: o.queries ?? (o.quick ? 200 : undefined),
        description: 'fastText word vectors: 100,000 x 200, L2-normalised (cosine ranks as L2), 1,000 queries, shipped ground truth',
      };
    case 'random-100k':
      return {
        kind: 'synthetic', recipe: 'sphere', name, n: 100_000, nQueries: o.queries ?? (o.quick ? 500 : 1000), dim: 100, seed: 1, outlierFraction: 0,
        description: 'uniform on the unit sphere: 100,000 x 100, no structure at all (like ann-benchmarks random sets), seed 1',
      };
    case 'embedding-768':
    case 'embedding-1536': {
      const dim = name === 'embedding-768' ? 768 : 1536;
      return {
        kind: 'synthetic', recipe: 'embedding', name, n: 100_000, nQueries: o.queries ?? (o.quick ? 200 : 1000), dim, seed: 1, outlierFraction: 0,
        description: `embedding-shaped: 100,000 x ${dim} unit vectors near a 48-dimensional latent space (256 Zipf topics, decaying spectrum, shared mean, isotropic noise), seed 1`,
      };
    }
    case 'fashion-mnist':
      return {
        kind: 'idx', name, base: 'fashion-mnist/train-images-idx3-ubyte.gz', queries: 'fashion-mnist/t10k-images-idx3-ubyte.gz',
        groundTruth: 'fashion-mnist/fashion-mnist_groundtruth.ivecs', maxQueries: o.queries ?? (o.quick ? 200 : 1000),
        description: 'Fashion-MNIST: 60,000 x 784 uint8 images as float32, first queries of the 10,000 test images, shipped ground truth',
      };
    default: {
      // sized variants for runs at scale: synthetic-<size> (paper recipe) and embedding-<dim>-<size>
      const sized = /^(synthetic|embedding-(768|1536))-(\d+)(k|m)$/.exec(name);
      const n = sized ? Number(sized[3]) * (sized[4] === 'k' ? 1000 : 1_000_000) : 0;
      if (sized && n >= 1000 && n <= 100_000_000) {
        if (sized[1] === 'synthetic') return synthetic(name, n, 0.3, o);
        const dim = Number(sized[2]);
        const spec = datasetSpec(`embedding-${dim}`, o);
        return { ...spec, name, n, description: spec.description.replace('100,000', n.toLocaleString('en-US')) } as SyntheticSpec;
      }
      throw new ZGQError('INVALID_ARGUMENT', `unknown dataset '${name}'; known: ${DATASET_NAMES.join(', ')}, and sized ones: synthetic-<n>k|m, embedding-768-<n>k|m, embedding-1536-<n>k|m`);
    }
  }
}

const HDF5_FILES = new Set(['.hdf5', '.h5']);
/** Held-out queries of a file without a queries file, when `--queries` is not given. */
const DEFAULT_HELD_OUT = 1000;

function isHdf5(path: string): boolean {
  return HDF5_FILES.has(extname(path).toLowerCase());
}

/** Options of {@link fileSpec}. */
export interface FileSpecOptions {
  queries?: string;
  /** Queries to hold out of the base, or to take from the queries file. */
  nQueries?: number;
  metric?: 'l2' | 'cosine';
  /** Dataset of an HDF5 base (default 'train'). */
  hdf5Dataset?: string;
  /** Vector column of Parquet and Arrow files. */
  column?: string;
  seed?: number;
}

/**
 * The spec of a user's vector file, named `file:<base file name>`.
 * @throws ZGQError('INVALID_ARGUMENT') for an unknown metric or a bad query count.
 */
export function fileSpec(base: string, o: FileSpecOptions = {}): FileSpec {
  const metric = o.metric ?? 'l2';
  if (metric !== 'l2' && metric !== 'cosine') throw new ZGQError('INVALID_ARGUMENT', `unknown metric '${String(metric)}' for --base; use l2 or cosine`);
  if (o.nQueries !== undefined && (!Number.isInteger(o.nQueries) || o.nQueries < 1)) {
    throw new ZGQError('INVALID_ARGUMENT', `the number of queries must be a positive integer; got ${o.nQueries}`);
  }
  const hdf5Test = !o.queries && isHdf5(base);
  const queries = o.queries ?? (hdf5Test ? base : undefined);
  const from = queries === undefined
    ? `${o.nQueries ?? `up to ${DEFAULT_HELD_OUT}`} queries held out of the base (seed ${o.seed ?? 1}) and removed from it`
    : `${o.nQueries === undefined ? 'queries' : `first ${o.nQueries} queries`} from ${hdf5Test ? `its '${HDF5_QUERIES}' dataset` : queries}`;
  return {
    kind: 'file', name: `file:${basename(base)}`, base, baseDataset: o.hdf5Dataset, queries, queriesDataset: hdf5Test ? HDF5_QUERIES : undefined, column: o.column,
    nQueries: o.nQueries, metric, seed: o.seed ?? 1,
    description: `${base}${isHdf5(base) ? ` ('${o.hdf5Dataset ?? HDF5_BASE}')` : ''}, ${from}, exact ground truth by brute force` +
      (metric === 'cosine' ? ', cosine (vectors normalised to unit length, then L2)' : ', L2'),
  };
}

function filesOf(spec: DatasetSpec): string[] {
  if (spec.kind === 'file') return spec.queries === undefined ? [spec.base] : [spec.base, spec.queries];
  return spec.kind === 'synthetic' ? [] : [spec.base, spec.queries, spec.groundTruth];
}

/**
 * Fails fast, before anything is built, when a file of the dataset is missing.
 * @throws ZGQError('IO') naming the missing file.
 */
export function checkDatasetFiles(spec: DatasetSpec, dataDir: string): void {
  if (spec.kind === 'file') {
    for (const path of filesOf(spec)) {
      if (!existsSync(path)) throw new ZGQError('IO', `dataset '${spec.name}': file '${path}' does not exist`);
    }
    return;
  }
  for (const f of filesOf(spec)) {
    const path = join(dataDir, f);
    if (!existsSync(path)) {
      throw new ZGQError('IO', `dataset '${spec.name}': file '${path}' does not exist (set --data-dir or ZGQ_DATA_DIR to the folder holding ${f.split('/')[0]}/)`);
    }
  }
}

/** Options of {@link loadDataset}. */
export interface LoadOptions {
  dataDir: string;
  cacheDir: string;
  k: number;
  log?: (line: string) => void;
}

/** Depth of computed ground truth: enough for any k up to 100 from one cache entry. */
function truthDepth(k: number, nBase: number): number {
  if (k > nBase) throw new ZGQError('INVALID_ARGUMENT', `k = ${k} exceeds the ${nBase} base vectors`);
  return Math.min(nBase, Math.max(k, 100));
}

/** Queries of the shipped truth re-checked against brute force. */
const SPOT_CHECKS = 5;

/**
 * Loads (or generates) a dataset and its exact ground truth.
 * @throws ZGQError('IO' | 'CORRUPT_FILE') for a missing or malformed file, ZGQError('INVALID_ARGUMENT')
 * when k exceeds a shipped ground truth's depth.
 */
export async function loadDataset(spec: DatasetSpec, o: LoadOptions): Promise<BenchDataset> {
  if (spec.kind === 'synthetic') {
    const d = generate(spec);
    const key = datasetKey({ kind: spec.kind, recipe: spec.recipe, n: spec.n, nQueries: spec.nQueries, dim: spec.dim, seed: spec.seed, outliers: spec.outlierFraction }, [d.base, d.queries]);
    const truth = await cachedGroundTruth({
      cacheDir: o.cacheDir, label: spec.name, key, base: d.base, nBase: d.nBase, queries: d.queries, nQueries: d.nQueries,
      dim: d.dim, depth: truthDepth(o.k, d.nBase), log: o.log,
    });
    return {
      spec, name: spec.name, description: spec.description, dim: d.dim, nBase: d.nBase, nQueries: d.nQueries, base: d.base, queries: d.queries,
      queryKind: spec.outlierFraction > 0 && d.queryKind ? d.queryKind : null, truth, key,
    };
  }
  if (spec.kind === 'file') return loadFile(spec, o);
  checkDatasetFiles(spec, o.dataDir);
  const path = (f: string) => join(o.dataDir, f);
  let base: Float32Array;
  let allQueries: Float32Array;
  let dim: number;
  let nBase: number;
  let nAll: number;
  if (spec.kind === 'texmex') {
    const b = await readFvecs(path(spec.base));
    const q = await readFvecs(path(spec.queries));
    if (b.n === 0 || q.n === 0) throw new ZGQError('CORRUPT_FILE', `dataset '${spec.name}': ${b.n === 0 ? spec.base : spec.queries} holds no vectors`);
    if (b.dim !== q.dim) throw new ZGQError('CORRUPT_FILE', `dataset '${spec.name}': base dim ${b.dim} differs from query dim ${q.dim}`);
    ({ data: base, n: nBase, dim } = b);
    ({ data: allQueries, n: nAll } = q);
  } else {
    const b = await readIdxImages(path(spec.base));
    const q = await readIdxImages(path(spec.queries));
    if (b.n === 0 || q.n === 0) throw new ZGQError('CORRUPT_FILE', `dataset '${spec.name}': ${b.n === 0 ? spec.base : spec.queries} holds no images`);
    if (b.dim !== q.dim) throw new ZGQError('CORRUPT_FILE', `dataset '${spec.name}': base images have ${b.dim} pixels, queries ${q.dim}`);
    base = bvecsToFloat32(b.data);
    allQueries = bvecsToFloat32(q.data);
    dim = b.dim;
    nBase = b.n;
    nAll = q.n;
  }
  const gtPath = path(spec.groundTruth);
  const gt = await readIvecs(gtPath);
  if (gt.n !== nAll) throw new ZGQError('CORRUPT_FILE', `dataset '${spec.name}': ground truth '${gtPath}' has ${gt.n} rows for ${nAll} queries`);
  if (gt.dim < o.k) throw new ZGQError('INVALID_ARGUMENT', `k = ${o.k} exceeds the depth ${gt.dim} of the ground truth '${gtPath}'`);
  const nQueries = Math.min(nAll, spec.maxQueries ?? nAll);
  const queries = allQueries.slice(0, nQueries * dim);
  const ids = new Uint32Array(gt.data.buffer, gt.data.byteOffset, nQueries * gt.dim);
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] >= nBase) throw new ZGQError('CORRUPT_FILE', `ground truth '${gtPath}': id ${gt.data[i]} (query ${Math.floor(i / gt.dim)}) is outside the base of ${nBase} vectors`);
  }
  const spotChecked = spotCheckTruth(ids, gt.dim, base, nBase, queries, nQueries, dim, o.k, SPOT_CHECKS, gtPath);
  const key = datasetKey({ kind: spec.kind, name: spec.name, nQueries }, [base, queries]);
  return {
    spec, name: spec.name, description: spec.description, dim, nBase, nQueries, base, queries, queryKind: null, key,
    truth: { ids, depth: gt.dim, source: 'file', path: gtPath, spotChecked },
  };
}

function generate(spec: SyntheticSpec): Dataset {
  const { n, nQueries, dim, seed } = spec;
  if (spec.recipe === 'sphere') return randomSphere({ n, nQueries, dim, seed });
  if (spec.recipe === 'embedding') return embeddingLike({ n, nQueries, dim, seed });
  return clusteredGaussian({ n, nQueries, dim, seed, outlierFraction: spec.outlierFraction });
}

/** A dataset name as a file-name part (`file:my.npy` -> `file_my.npy`). */
export function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Seeded 32-bit generator (mulberry32) for the held-out rows. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Splits `n` rows into `m` seeded held-out rows (in the order drawn) and the rest (in file order).
 * Layout: both results are row-major `rows * dim` float32.
 */
export function holdOut(data: Float32Array, n: number, dim: number, m: number, seed: number): { base: Float32Array; queries: Float32Array; rows: Uint32Array } {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const next = random(seed);
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(next() * (n - i));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const rows = order.slice(0, m);
  const taken = new Uint8Array(n);
  const queries = new Float32Array(m * dim);
  rows.forEach((r, i) => {
    taken[r] = 1;
    queries.set(data.subarray(r * dim, (r + 1) * dim), i * dim);
  });
  const base = new Float32Array((n - m) * dim);
  for (let r = 0, o = 0; r < n; r++) {
    if (taken[r]) continue;
    base.set(data.subarray(r * dim, (r + 1) * dim), o * dim);
    o++;
  }
  return { base, queries, rows };
}

/** Scales each row to unit length in place. @throws ZGQError('INVALID_ARGUMENT') for a zero row. */
function normalise(data: Float32Array, n: number, dim: number, what: string): void {
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[i * dim + j] * data[i * dim + j];
    if (!(s > 0)) throw new ZGQError('INVALID_ARGUMENT', `${what}: row ${i} has length 0; cosine is undefined for it`);
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) data[i * dim + j] *= inv;
  }
}

async function loadFile(spec: FileSpec, o: LoadOptions): Promise<BenchDataset> {
  checkDatasetFiles(spec, o.dataDir);
  const b = await readVectorFile(spec.base, { dataset: spec.baseDataset, column: spec.column });
  if (b.n === 0) throw new ZGQError('CORRUPT_FILE', `dataset '${spec.name}': ${spec.base} holds no vectors`);
  // copies: a reader may hand out a view of the file's bytes, and cosine scales in place
  let base: Float32Array = b.data.slice(0, b.n * b.dim);
  let queries: Float32Array;
  let nBase = b.n;
  let nQueries: number;
  let heldOut = false;
  if (spec.queries !== undefined) {
    const q = await readVectorFile(spec.queries, { dataset: spec.queriesDataset, column: spec.column });
    if (q.dim !== b.dim) throw new ZGQError('INVALID_ARGUMENT', `dataset '${spec.name}': base vectors have dimension ${b.dim}, queries in ${spec.queries} ${q.dim}`);
    nQueries = spec.nQueries ?? q.n;
    if (q.n === 0 || nQueries > q.n) throw new ZGQError('INVALID_ARGUMENT', `dataset '${spec.name}': ${nQueries} queries asked, ${spec.queries} holds ${q.n}`);
    queries = q.data.slice(0, nQueries * q.dim);
  } else {
    nQueries = spec.nQueries ?? Math.min(DEFAULT_HELD_OUT, Math.floor(b.n / 10));
    if (nQueries < 1 || nQueries >= b.n) {
      throw new ZGQError('INVALID_ARGUMENT', `dataset '${spec.name}': ${spec.base} has ${b.n} rows, too few to hold out ${nQueries || 1} queries and keep a base (give --queries-file or a smaller --queries)`);
    }
    ({ base, queries } = holdOut(base, b.n, b.dim, nQueries, spec.seed));
    nBase = b.n - nQueries;
    heldOut = true;
  }
  if (spec.metric === 'cosine') {
    normalise(base, nBase, b.dim, heldOut ? spec.base : `${spec.base} (base)`);
    normalise(queries, nQueries, b.dim, heldOut ? `${spec.base} (held-out queries)` : spec.queries!);
  }
  const key = datasetKey(
    { kind: spec.kind, name: spec.name, nQueries, metric: spec.metric, heldOut, seed: heldOut ? spec.seed : null },
    [base, queries],
  );
  const truth = await cachedGroundTruth({
    cacheDir: o.cacheDir, label: fileSafe(spec.name), key, base, nBase, queries, nQueries, dim: b.dim, depth: truthDepth(o.k, nBase), log: o.log,
  });
  const description = spec.nQueries === undefined && heldOut ? spec.description.replace(`up to ${DEFAULT_HELD_OUT}`, String(nQueries)) : spec.description;
  return { spec, name: spec.name, description, dim: b.dim, nBase, nQueries, base, queries, queryKind: null, truth, key };
}

async function ensureFvecs(path: string, data: Float32Array, dim: number): Promise<void> {
  const n = data.length / dim;
  // a cached file of the right size for this content key is reused; FAISS's flat-index check of
  // the ground truth would expose a damaged one
  if (existsSync(path) && statSync(path).size === n * (4 + 4 * dim)) return;
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, encodeFvecs(data, dim));
  await rename(tmp, path);
}

/**
 * fvecs copies of the base and the queries used, in the cache folder, for a child process (FAISS)
 * to read: the same bytes every library indexes.
 */
export async function exchangeFiles(ds: BenchDataset, cacheDir: string): Promise<{ base: string; queries: string }> {
  await mkdir(cacheDir, { recursive: true });
  const stem = join(cacheDir, `data-${fileSafe(ds.name)}-${ds.key}`);
  const files = { base: `${stem}-base.fvecs`, queries: `${stem}-queries.fvecs` };
  await ensureFvecs(files.base, ds.base, ds.dim);
  await ensureFvecs(files.queries, ds.queries, ds.dim);
  return files;
}
