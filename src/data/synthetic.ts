/**
 * Seeded synthetic benchmark data: a mixture of isotropic Gaussian clusters, plus optional
 * "outlier" queries drawn from the prior the centres come from (so they sit far from every
 * cluster). Everything is generated from one {@link Rng}, so a seed fixes the bytes.
 */
import { ZGQError } from '../errors.js';
import { Rng } from '../random.js';

/** Options for {@link clusteredGaussian}. */
export interface ClusteredOptions {
  /** Number of base vectors (positive integer). */
  n: number;
  /** Number of query vectors (non-negative integer). */
  nQueries: number;
  /** Dimensionality (positive integer). */
  dim: number;
  /** Seed for the generator (integer; default 1). Same seed gives identical bytes. */
  seed?: number;
  /** Number of mixture components (positive integer); default `max(10, round(n / 1000))`. */
  clusters?: number;
  /** Per-coordinate standard deviation of each cluster (finite, >= 0); default 0.3. */
  spread?: number;
  /**
   * Fraction of queries drawn from pure N(0, I) instead of the mixture, i.e. typically far from
   * every cluster (in [0, 1]; default 0). The count is `round(outlierFraction * nQueries)`.
   */
  outlierFraction?: number;
}

/** A base set plus a query set, both flat row-major float32 (`x[i * dim + j]`). */
export interface Dataset {
  /** Human-readable name, encodes the generating parameters for synthetic data. */
  name: string;
  /** Dimensionality of every vector. */
  dim: number;
  /** `nBase * dim` base vectors. */
  base: Float32Array;
  /** `nQueries * dim` query vectors. */
  queries: Float32Array;
  /** Number of base vectors. */
  nBase: number;
  /** Number of query vectors. */
  nQueries: number;
  /** Per query: 0 = drawn from the mixture, 1 = outlier drawn from N(0, I). */
  queryKind?: Uint8Array;
  /** Synthetic data only: the `clusters * dim` cluster centres. */
  centres?: Float32Array;
  /** Synthetic data only: for each base vector, the index of the centre it was drawn around. */
  baseCluster?: Uint32Array;
}

/** Throws INVALID_ARGUMENT unless `value` is an integer >= `min`. */
function checkInt(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ZGQError(
      'INVALID_ARGUMENT',
      `clusteredGaussian: option '${name}' must be an integer >= ${min}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Generates a clustered Gaussian dataset.
 *
 * Centres are drawn from N(0, I_dim); each base vector is a uniformly chosen centre plus
 * `spread * N(0, I)`; each query is a fresh draw from the same mixture (never a copy of a base
 * vector), except `round(outlierFraction * nQueries)` queries at random positions which are drawn
 * from N(0, I). Deterministic for a given seed.
 *
 * @throws ZGQError('INVALID_ARGUMENT') when an option is missing or out of range.
 */
export function clusteredGaussian(opts: ClusteredOptions): Dataset {
  if (opts === null || typeof opts !== 'object') {
    throw new ZGQError('INVALID_ARGUMENT', `clusteredGaussian: options must be an object, got ${String(opts)}`);
  }
  const n = checkInt('n', opts.n, 1);
  const nQueries = checkInt('nQueries', opts.nQueries, 0);
  const dim = checkInt('dim', opts.dim, 1);
  const seed = checkInt('seed', opts.seed ?? 1, Number.MIN_SAFE_INTEGER);
  const clusters = checkInt('clusters', opts.clusters ?? Math.max(10, Math.round(n / 1000)), 1);
  const spread = opts.spread ?? 0.3;
  if (typeof spread !== 'number' || !Number.isFinite(spread) || spread < 0) {
    throw new ZGQError(
      'INVALID_ARGUMENT',
      `clusteredGaussian: option 'spread' must be a finite number >= 0, got ${String(spread)}`,
    );
  }
  const outlierFraction = opts.outlierFraction ?? 0;
  if (typeof outlierFraction !== 'number' || !(outlierFraction >= 0 && outlierFraction <= 1)) {
    throw new ZGQError(
      'INVALID_ARGUMENT',
      `clusteredGaussian: option 'outlierFraction' must be in [0, 1], got ${String(outlierFraction)}`,
    );
  }

  // Fixed generation order (centres, base, outlier positions, queries) is what makes a seed
  // reproduce the same bytes; do not reorder.
  const rng = new Rng(seed);
  const centres = new Float32Array(clusters * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = rng.normal();

  const base = new Float32Array(n * dim);
  const baseCluster = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const c = rng.int(clusters);
    baseCluster[i] = c;
    const co = c * dim;
    const o = i * dim;
    for (let j = 0; j < dim; j++) base[o + j] = centres[co + j] + spread * rng.normal();
  }

  const queries = new Float32Array(nQueries * dim);
  const queryKind = new Uint8Array(nQueries);
  const nOutliers = Math.round(outlierFraction * nQueries);
  if (nOutliers > 0) {
    const picks = rng.sample(nQueries, nOutliers);
    for (let i = 0; i < picks.length; i++) queryKind[picks[i]] = 1;
  }
  for (let i = 0; i < nQueries; i++) {
    const o = i * dim;
    if (queryKind[i] === 1) {
      for (let j = 0; j < dim; j++) queries[o + j] = rng.normal();
    } else {
      const co = rng.int(clusters) * dim;
      for (let j = 0; j < dim; j++) queries[o + j] = centres[co + j] + spread * rng.normal();
    }
  }

  return {
    name: `clustered-gaussian(n=${n},q=${nQueries},d=${dim},c=${clusters},spread=${spread},outliers=${outlierFraction},seed=${seed})`,
    dim,
    base,
    queries,
    nBase: n,
    nQueries,
    queryKind,
    centres,
    baseCluster,
  };
}
