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
function checkInt(generator: string, name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ZGQError(
      'INVALID_ARGUMENT',
      `${generator}: option '${name}' must be an integer >= ${min}, got ${String(value)}`,
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
  const n = checkInt('clusteredGaussian', 'n', opts.n, 1);
  const nQueries = checkInt('clusteredGaussian', 'nQueries', opts.nQueries, 0);
  const dim = checkInt('clusteredGaussian', 'dim', opts.dim, 1);
  const seed = checkInt('clusteredGaussian', 'seed', opts.seed ?? 1, Number.MIN_SAFE_INTEGER);
  const clusters = checkInt('clusteredGaussian', 'clusters', opts.clusters ?? Math.max(10, Math.round(n / 1000)), 1);
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

/** Options for {@link randomSphere}. */
export interface SphereOptions {
  n: number;
  nQueries: number;
  dim: number;
  seed?: number;
}

/**
 * Points uniform on the unit sphere (N(0, I) rows scaled to length 1), base and queries drawn
 * alike: no structure at all, like ann-benchmarks' random sets. Nearest neighbours by L2 are the
 * nearest by cosine. Deterministic for a given seed.
 * @throws ZGQError('INVALID_ARGUMENT') when an option is missing or out of range.
 */
export function randomSphere(opts: SphereOptions): Dataset {
  const n = checkInt('randomSphere', 'n', opts.n, 1);
  const nQueries = checkInt('randomSphere', 'nQueries', opts.nQueries, 0);
  const dim = checkInt('randomSphere', 'dim', opts.dim, 1);
  const seed = checkInt('randomSphere', 'seed', opts.seed ?? 1, Number.MIN_SAFE_INTEGER);
  const rng = new Rng(seed);
  const draw = (rows: number) => {
    const x = new Float32Array(rows * dim);
    for (let i = 0; i < x.length; i++) x[i] = rng.normal();
    return normalizeRows(x, dim);
  };
  const base = draw(n);
  const queries = draw(nQueries);
  return { name: `random-sphere(n=${n},q=${nQueries},d=${dim},seed=${seed})`, dim, base, queries, nBase: n, nQueries };
}

/**
 * The shape of {@link embeddingLike}'s data, chosen so that at 768 dimensions the local intrinsic
 * dimension (MLE, 20 neighbours) is about 27 and the mean cosine similarity of two random rows
 * about 0.39: between SIFT (14) and the fastText word vectors (35, mean cosine 0.14).
 */
const CENTRE_SCALE = 0.6;
const SPECTRUM_KNEE = 8;
const NOISE = 0.3;
const MEAN_LENGTH = 0.8;

/** Options for {@link embeddingLike}. */
export interface EmbeddingOptions {
  n: number;
  nQueries: number;
  /** Ambient dimension (768, 1536, ...). */
  dim: number;
  /** Dimension of the latent space the points live near (default 48). */
  intrinsicDim?: number;
  /** Topics: latent mixture components with Zipf weights (default 256). */
  topics?: number;
  seed?: number;
}

/**
 * Vectors shaped like text embeddings: unit length, a low intrinsic dimension inside a high
 * ambient one, weak cluster structure, and a shared mean direction. Each vector is
 *
 *   x = normalise(mu + W (c_t + s * z) + e),
 *
 * with a topic t drawn with Zipf weights (1 / rank); c_t ~ N(0, 0.6^2 I_m) its latent centre;
 * z ~ N(0, I_m) scaled per coordinate by s_i = (1 + i / 8)^-1/2 (a decaying spectrum, as embedding
 * covariances have); W a dim x m Gaussian matrix scaled so that W (c_t + s * z) has expected squared
 * length 1; e ~ N(0, 0.3^2 I_dim / dim) isotropic noise that makes the set full rank; and mu a
 * fixed direction of length 0.8 (embeddings of one model share a mean, so cosine similarities sit
 * well above 0). Queries come from the same process. Deterministic for a given seed.
 * @throws ZGQError('INVALID_ARGUMENT') when an option is missing or out of range.
 */
export function embeddingLike(opts: EmbeddingOptions): Dataset {
  const n = checkInt('embeddingLike', 'n', opts.n, 1);
  const nQueries = checkInt('embeddingLike', 'nQueries', opts.nQueries, 0);
  const dim = checkInt('embeddingLike', 'dim', opts.dim, 1);
  const m = checkInt('embeddingLike', 'intrinsicDim', opts.intrinsicDim ?? 48, 1);
  const topics = checkInt('embeddingLike', 'topics', opts.topics ?? 256, 1);
  const seed = checkInt('embeddingLike', 'seed', opts.seed ?? 1, Number.MIN_SAFE_INTEGER);
  const rng = new Rng(seed);
  // fixed generation order (projection, mean, centres, rows): a seed reproduces the bytes
  const scale = Float32Array.from({ length: m }, (_, i) => 1 / Math.sqrt(1 + i / SPECTRUM_KNEE));
  // W scaled so that the projected latent part has expected squared length 1
  let energy = 0;
  for (let i = 0; i < m; i++) energy += CENTRE_SCALE * CENTRE_SCALE + scale[i] * scale[i];
  const w = new Float32Array(dim * m); // row-major: w[j * m + i]
  for (let i = 0; i < w.length; i++) w[i] = rng.normal() / Math.sqrt(dim * energy);
  const mu = new Float32Array(dim);
  for (let j = 0; j < dim; j++) mu[j] = rng.normal();
  normalizeRows(mu, dim);
  for (let j = 0; j < dim; j++) mu[j] *= MEAN_LENGTH;
  const centres = new Float32Array(topics * m);
  for (let i = 0; i < centres.length; i++) centres[i] = CENTRE_SCALE * rng.normal();
  const cumulative = new Float64Array(topics);
  for (let t = 0, sum = 0; t < topics; t++) cumulative[t] = sum += 1 / (t + 1);
  const noise = NOISE / Math.sqrt(dim);
  const latent = new Float32Array(m);
  const draw = (rows: number) => {
    const x = new Float32Array(rows * dim);
    for (let r = 0; r < rows; r++) {
      const u = rng.next() * cumulative[topics - 1];
      let t = 0;
      while (cumulative[t] < u) t++;
      for (let i = 0; i < m; i++) latent[i] = centres[t * m + i] + scale[i] * rng.normal();
      const o = r * dim;
      for (let j = 0; j < dim; j++) {
        let s = mu[j] + noise * rng.normal();
        const wj = j * m;
        for (let i = 0; i < m; i++) s += w[wj + i] * latent[i];
        x[o + j] = s;
      }
    }
    return normalizeRows(x, dim);
  };
  const base = draw(n);
  const queries = draw(nQueries);
  return {
    name: `embedding-like(n=${n},q=${nQueries},d=${dim},m=${m},topics=${topics},seed=${seed})`,
    dim, base, queries, nBase: n, nQueries,
  };
}

/** Scales every row of `x` to unit length in place (an all-zero row stays zero); returns `x`. */
function normalizeRows(x: Float32Array, dim: number): Float32Array {
  for (let o = 0; o < x.length; o += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += x[o + j] * x[o + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) x[o + j] *= inv;
  }
  return x;
}
