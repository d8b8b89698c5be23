/**
 * Options of ZGQIndex, their defaults, and their validation at the public boundary.
 */
import { ZGQError } from './errors.js';
import { METRIC_IP, METRIC_L2 } from './kernels/wasm.js';
import type { SearchFilter } from './filter.js';

export type Metric = 'l2' | 'ip' | 'cosine';

/** Index options; every field but `dim` has a default. */
export interface ZGQOptions {
  /** Vector dimension. */
  dim: number;
  /**
   * 'l2': squared Euclidean distance (reported as is). 'ip': inner product, reported as 1 - dot.
   * 'cosine': vectors and queries normalised to unit length, then 'ip'. Default 'l2'.
   */
  metric?: Metric;
  /** Seed of every random choice: same seed, data and options give the same index. Default 42. */
  seed?: number;
  /** Zone count Z; default about √n, fixed at build. */
  zones?: number;
  /** Graph out-degree bound R (M0 in HNSW papers). Default 32. */
  degree?: number;
  /** Beam width while building the graph. Default 128. */
  efConstruction?: number;
  /** Robust-prune relaxation: 1 is HNSW's rule, larger keeps longer edges (Vamana). Default 1. */
  alpha?: number;
  /**
   * PQ subspaces m (bytes per vector code): an integer in [1, dim]. dim need not be a multiple of m:
   * subspace j covers dims [floor(j * dim / m), floor((j + 1) * dim / m)), so lengths differ by at
   * most one; any length works. Default dim / 4 rounded, at least 1 and at most 64.
   */
  pqSubspaces?: number;
  /** Quantize residuals from the zone centroid instead of raw vectors (smaller error). Default true. */
  residual?: boolean;
  /**
   * How the vectors used for exact re-ranking are stored: 'float16' (half the memory; 11
   * significant bits) or 'float32'. Data beyond ±65504 is always stored as float32. Default 'float16'.
   */
  storage?: VectorStorage;
  /**
   * Graph shape and insertion order: 'zone-rounds' (default; one graph, every zone grown evenly in
   * rounds), 'unified' (one graph, random order), 'zone-order' (one graph, zone after zone) or
   * 'per-zone' (an independent graph per zone). See the README's measurement.
   */
  graph?: GraphShape;
  /** Search defaults used when a search call leaves an option out. */
  search?: SearchOptions;
}

export type GraphShape = 'unified' | 'zone-rounds' | 'zone-order' | 'per-zone';

export type VectorStorage = 'float16' | 'float32';

/** Per-call search options; omitted fields fall back to the index's defaults. */
export interface SearchOptions {
  /** Beam width (candidate pool size) of the graph search; at least k. Default 64. */
  ef?: number;
  /** Zones selected per query: their medoids enter the graph search, the nearest are scanned. Default max(16, zones / 32). */
  nProbe?: number;
  /** Candidates re-scored exactly = k * rerank (bounded by ef). Default 8. */
  rerank?: number;
  /** Of the selected zones, how many (nearest first) may be scanned in full before the graph walk. Default max(16, zones / 32). */
  scan?: number;
  /**
   * Adaptive scan (L2 and cosine): a selected zone is scanned only if its centroid's squared distance
   * is within scanRatio times the nearest zone's. Default 1.25.
   */
  scanRatio?: number;
  /**
   * The distances the graph walk runs on. 'pq' (default): PQ codes, then exact re-ranking of the best
   * k * rerank. 'exact': the stored vectors themselves, no lookup table and no re-ranking (`rerank`
   * unused); each step costs more, so it pays on small, low-dimensional sets whose vectors stay in
   * cache (see README "Exact traversal"). 'scan': no walk at all, every stored vector compared
   * with the query (binary16 or float32 rows, SIMD): exact over the stored rows, and on data with
   * no structure to exploit faster than a walk at high recall; `tune` picks it where it is.
   * 'fastscan': every stored vector through 4-bit PQ codes (SIMD table lookups, a quarter byte per
   * dimension), then the best k * rerank re-ranked exactly (src/fastscan.ts); with a filter or
   * removed vectors, 'scan'.
   */
  traversal?: Traversal;
  /**
   * Only ids the filter admits are returned: a Set or array of ids, or a predicate on the id. The
   * search widens its pool as the filter gets more selective and scans the allowed vectors exactly
   * when that is cheaper (see README "Filtered search"). Per call only; not an index default.
   */
  filter?: SearchFilter;
}

/** How a search finds candidates (see SearchOptions.traversal), in the order the CLI lists them. */
export const TRAVERSALS = ['pq', 'exact', 'scan', 'fastscan'] as const;
export type Traversal = (typeof TRAVERSALS)[number];

/** The traversals that compare every stored vector instead of walking the graph ('scan', 'fastscan'). */
export function scansEveryVector(traversal: Traversal): boolean {
  return traversal === 'scan' || traversal === 'fastscan';
}

export interface ResolvedSearchOptions {
  ef: number;
  nProbe: number;
  rerank: number;
  scan: number;
  scanRatio: number;
  traversal: Traversal;
}

export interface ResolvedOptions {
  dim: number;
  metric: Metric;
  seed: number;
  zones: number | undefined;
  degree: number;
  efConstruction: number;
  alpha: number;
  pqSubspaces: number;
  residual: boolean;
  graph: GraphShape;
  storage: VectorStorage;
  search: ResolvedSearchOptions;
}

export const DEFAULT_SEARCH: Readonly<ResolvedSearchOptions> = Object.freeze({ ef: 64, nProbe: 16, rerank: 8, scan: 16, scanRatio: 1.25, traversal: 'pq' });

function positiveInt(name: string, value: unknown, max = 0x7fffffff): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ZGQError('INVALID_ARGUMENT', `${name} must be an integer in [1, ${max}]; got ${String(value)}`);
  }
  return value;
}

function ratio(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 1) || !Number.isFinite(value)) {
    throw new ZGQError('INVALID_ARGUMENT', `${name} must be a finite number >= 1; got ${String(value)}`);
  }
  return value;
}

function traversalOf(value: unknown): Traversal {
  if (TRAVERSALS.includes(value as Traversal)) return value as Traversal;
  throw new ZGQError('INVALID_ARGUMENT', `traversal must be 'pq', 'exact', 'scan' or 'fastscan'; got ${String(value)}`);
}

/** PQ subspaces: each needs at least one dimension, so 1 <= m <= dim. */
function subspaceCount(value: unknown, dim: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > dim) {
    throw new ZGQError('INVALID_ARGUMENT', `pqSubspaces must be an integer in [1, dim = ${dim}] (each subspace needs a dimension); got ${String(value)}`);
  }
  return value;
}

function nonNegativeInt(name: string, value: unknown, max: number): number {
  return value === 0 ? 0 : positiveInt(name, value, max);
}

/** Resolve and check per-call search options against the index defaults. */
export function resolveSearch(given: SearchOptions | undefined, defaults: ResolvedSearchOptions): ResolvedSearchOptions {
  if (given === undefined) return defaults;
  const o = given;
  return {
    ef: o.ef === undefined ? defaults.ef : positiveInt('ef', o.ef, 1 << 20),
    nProbe: o.nProbe === undefined ? defaults.nProbe : positiveInt('nProbe', o.nProbe, 1 << 16),
    rerank: o.rerank === undefined ? defaults.rerank : positiveInt('rerank', o.rerank, 1 << 16),
    scan: o.scan === undefined ? defaults.scan : nonNegativeInt('scan', o.scan, 1 << 16),
    scanRatio: o.scanRatio === undefined ? defaults.scanRatio : ratio('scanRatio', o.scanRatio),
    traversal: o.traversal === undefined ? defaults.traversal : traversalOf(o.traversal),
  };
}

/** Resolve and check the constructor options. */
export function resolveOptions(options: ZGQOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new ZGQError('INVALID_ARGUMENT', 'ZGQIndex options must be an object such as { dim: 128 }');
  }
  const dim = positiveInt('dim', options.dim, 1 << 16);
  const metric = options.metric ?? 'l2';
  if (metric !== 'l2' && metric !== 'ip' && metric !== 'cosine') {
    throw new ZGQError('INVALID_ARGUMENT', `metric must be 'l2', 'ip' or 'cosine'; got ${String(metric)}`);
  }
  const seed = options.seed ?? 42;
  if (!Number.isInteger(seed)) throw new ZGQError('INVALID_ARGUMENT', `seed must be an integer; got ${String(seed)}`);
  const alpha = options.alpha ?? 1;
  if (typeof alpha !== 'number' || !(alpha >= 1 && alpha <= 4)) {
    throw new ZGQError('INVALID_ARGUMENT', `alpha must be a number in [1, 4]; got ${String(alpha)}`);
  }
  return {
    dim,
    metric,
    seed: seed >>> 0,
    zones: options.zones === undefined ? undefined : positiveInt('zones', options.zones, 1 << 20),
    degree: options.degree === undefined ? 32 : positiveInt('degree', options.degree, 1024),
    efConstruction: options.efConstruction === undefined ? 128 : positiveInt('efConstruction', options.efConstruction, 1 << 16),
    alpha,
    pqSubspaces:
      options.pqSubspaces === undefined
        ? Math.max(1, Math.min(64, Math.round(dim / 4)))
        : subspaceCount(options.pqSubspaces, dim),
    residual: options.residual ?? true,
    graph: resolveGraph(options.graph),
    storage: resolveStorage(options.storage),
    search: { ...resolveSearch(options.search, DEFAULT_SEARCH) },
  };
}

/**
 * Kernel metric for a user metric. Cosine runs as L2 on unit vectors rather than as inner product:
 * the same order exactly, but PQ's L2 tables also count the decoded vector's norm, which keeps the
 * quantized traversal accurate (inner-product tables on the same codes lost 10-25 points of recall@10
 * at equal ef on normalised clustered data).
 */
export function kernelMetric(metric: Metric): number {
  return metric === 'ip' ? METRIC_IP : METRIC_L2;
}

/** Kernel distance -> reported distance: ip gives -dot; cosine runs as L2 on unit vectors, |a - b|² = 2 - 2 cos. */
export function reportedDistance(metric: Metric, d: number): number {
  return metric === 'ip' ? 1 + d : metric === 'cosine' ? d / 2 : d;
}


function resolveGraph(graph: unknown): GraphShape {
  if (graph === undefined) return 'zone-rounds';
  if (graph === 'unified' || graph === 'zone-rounds' || graph === 'zone-order' || graph === 'per-zone') return graph;
  throw new ZGQError('INVALID_ARGUMENT', `graph must be 'unified', 'zone-rounds', 'zone-order' or 'per-zone'; got ${String(graph)}`);
}

function resolveStorage(storage: unknown): VectorStorage {
  if (storage === undefined) return 'float16';
  if (storage === 'float16' || storage === 'float32') return storage;
  throw new ZGQError('INVALID_ARGUMENT', `storage must be 'float16' or 'float32'; got ${String(storage)}`);
}
