/**
 * The benchmark's datasets: seeded synthetic sets (the ZGQ paper's recipe) and the real sets in
 * the shared data folder, loaded as flat float32 with their exact ground truth, plus the fvecs
 * copies the FAISS child reads.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ZGQError } from '../errors.js';
import { clusteredGaussian } from '../data/synthetic.js';
import { bvecsToFloat32, encodeFvecs, readFvecs, readIdxImages, readIvecs } from '../data/vecs.js';
import { cachedGroundTruth, datasetKey, spotCheckTruth, type Truth } from './truth.js';

interface SpecBase {
  name: string;
  description: string;
}

/** Clustered Gaussian data from {@link clusteredGaussian}. */
export interface SyntheticSpec extends SpecBase {
  kind: 'synthetic';
  n: number;
  nQueries: number;
  dim: number;
  seed: number;
  /** 0.3 is the paper recipe (30 % of queries far from every cluster); 0 gives mixture queries only. */
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

export type DatasetSpec = SyntheticSpec | TexmexSpec | IdxSpec;

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
export const DATASET_NAMES = ['synthetic-10k', 'synthetic-100k', 'synthetic-1m', 'synthetic-100k-mixture', 'siftsmall', 'fashion-mnist'] as const;
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
    kind: 'synthetic', name, n, nQueries, dim: 128, seed: 1, outlierFraction,
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
    case 'fashion-mnist':
      return {
        kind: 'idx', name, base: 'fashion-mnist/train-images-idx3-ubyte.gz', queries: 'fashion-mnist/t10k-images-idx3-ubyte.gz',
        groundTruth: 'fashion-mnist/fashion-mnist_groundtruth.ivecs', maxQueries: o.queries ?? (o.quick ? 200 : 1000),
        description: 'Fashion-MNIST: 60,000 x 784 uint8 images as float32, first queries of the 10,000 test images, shipped ground truth',
      };
    default:
      throw new ZGQError('INVALID_ARGUMENT', `unknown dataset '${name}'; known: ${DATASET_NAMES.join(', ')}`);
  }
}

function filesOf(spec: DatasetSpec): string[] {
  return spec.kind === 'synthetic' ? [] : [spec.base, spec.queries, spec.groundTruth];
}

/**
 * Fails fast, before anything is built, when a file of the dataset is missing.
 * @throws ZGQError('IO') naming the missing file.
 */
export function checkDatasetFiles(spec: DatasetSpec, dataDir: string): void {
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
    const d = clusteredGaussian({ n: spec.n, nQueries: spec.nQueries, dim: spec.dim, seed: spec.seed, outlierFraction: spec.outlierFraction });
    const key = datasetKey({ kind: spec.kind, n: spec.n, nQueries: spec.nQueries, dim: spec.dim, seed: spec.seed, outliers: spec.outlierFraction }, [d.base, d.queries]);
    const truth = await cachedGroundTruth({
      cacheDir: o.cacheDir, label: spec.name, key, base: d.base, nBase: d.nBase, queries: d.queries, nQueries: d.nQueries,
      dim: d.dim, depth: truthDepth(o.k, d.nBase), log: o.log,
    });
    return {
      spec, name: spec.name, description: spec.description, dim: d.dim, nBase: d.nBase, nQueries: d.nQueries, base: d.base, queries: d.queries,
      queryKind: spec.outlierFraction > 0 && d.queryKind ? d.queryKind : null, truth, key,
    };
  }
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
  const stem = join(cacheDir, `data-${ds.name}-${ds.key}`);
  const files = { base: `${stem}-base.fvecs`, queries: `${stem}-queries.fvecs` };
  await ensureFvecs(files.base, ds.base, ds.dim);
  await ensureFvecs(files.queries, ds.queries, ds.dim);
  return files;
}
