/**
 * The JSON written by `zgq bench` (`bench-results.json`). This file is the schema: every field
 * below is present unless marked optional, numbers are plain JSON numbers, and `version` changes
 * whenever a field changes meaning. BENCHMARKS.md summarises it for readers of the JSON.
 */

/** Libraries the harness knows how to measure. */
export type LibraryId = 'zgq' | 'hnswlib-node' | 'usearch' | 'faiss';

/** Value of {@link BenchReport.schema}. */
export const BENCH_SCHEMA = 'zgq-bench';
/** Value of {@link BenchReport.version}. */
export const BENCH_SCHEMA_VERSION = 1;

/** Whole report of one `zgq bench` run. */
export interface BenchReport {
  schema: typeof BENCH_SCHEMA;
  version: typeof BENCH_SCHEMA_VERSION;
  /** ISO 8601 time the run started. */
  createdAt: string;
  /** Command line that produced the report. */
  command: string;
  machine: MachineInfo;
  settings: BenchSettings;
  /** One entry per library asked for, loaded or not. */
  libraries: LibraryInfo[];
  datasets: DatasetReport[];
}

export interface MachineInfo {
  cpuModel: string;
  /** Logical CPUs visible to Node (`os.availableParallelism()`). */
  cpus: number;
  totalMemoryBytes: number;
  platform: string;
  node: string;
  /** OpenBLAS overrides in the environment (they affect FAISS training), null when unset. */
  openblasCoretype: string | null;
}

export interface BenchSettings {
  k: number;
  /** Timed passes per configuration (after one untimed warm-up pass that also yields recall). */
  passes: number;
  quick: boolean;
  /** A timed pass runs at least this many queries (a small query set is repeated). */
  minQueriesPerPass: number;
  /** Thread counts used in batch mode (where the library has a thread option). */
  batchThreads: number[];
  /** Recall targets of the summary. */
  targets: number[];
}

export interface LibraryInfo {
  library: LibraryId;
  /** 'missing': not installed / not importable; 'failed': loaded but could not run here. */
  status: 'ok' | 'missing' | 'failed';
  /** Exact version of the package (for FAISS: the Python module's `__version__`). */
  version: string | null;
  /** Why it is missing or failed; how it was reached when ok (e.g. the Python interpreter). */
  detail: string;
}

export interface DatasetReport {
  /** Registry name, e.g. `synthetic-100k`, `siftsmall`. */
  name: string;
  description: string;
  nBase: number;
  nQueries: number;
  dim: number;
  metric: 'l2';
  groundTruth: GroundTruthInfo;
  /** Synthetic data: how many queries of each kind (mixture draws, outliers from N(0, I)). */
  queryKinds: { mixture: number; outlier: number } | null;
  builds: BuildRecord[];
  /** Libraries that were skipped on this dataset and why (a failed build, for instance). */
  skipped: { library: LibraryId; reason: string }[];
  /** Remarks on how this dataset was measured (query subsets, repeats, libraries without batch mode). */
  notes: string[];
  results: ResultRecord[];
  /** Best QPS per series at each recall target, single-query mode. */
  summary: TargetRow[];
  /** ZGQ searched through filters; only in runs with `--filtered`. */
  filtered?: FilteredReport;
}

/** `zgq bench --filtered`: one ZGQ index searched through filters (see src/bench/filtered.ts). */
export interface FilteredReport {
  /** The index searched (default build options). */
  index: string;
  /** Search options of every row: the index defaults. */
  params: Record<string, number>;
  rows: FilteredRecord[];
}

/** One filter, single-query mode, one thread. */
export interface FilteredRecord {
  /**
   * 'none': no filter (the reference); 'uncorrelated': a seeded random subset, one for every query;
   * 'anti-correlated': each query's nearest 5 % of the base left out.
   */
  filter: 'none' | 'uncorrelated' | 'anti-correlated';
  /** Share of the base the filter admits. */
  selectivity: number;
  /** Queries searched (the first ones of the dataset). */
  queries: number;
  /** How the index searched stores its rows (the default, or 'float32' for the second anti-correlated row). */
  storage: 'float16' | 'float32';
  /** Tie-aware recall@k against exact search among the admitted vectors. */
  recall: number;
  /** Median over timed passes of queries / wall seconds. */
  qps: number;
  passQps: number[];
  /** Returned ids the filter does not admit (0 from a correct index). */
  outside: number;
  /** Queries with fewer than min(k, admitted) results (0 from a correct index). */
  short: number;
}

export interface GroundTruthInfo {
  /** 'file': shipped with the dataset; 'computed': brute force in this run; 'cache': read from the on-disk cache. */
  source: 'file' | 'computed' | 'cache';
  /** The ground-truth file read (shipped file or cache file), null when computed without caching. */
  path: string | null;
  /** Neighbours per query in the ground truth (>= k). */
  depth: number;
  /** Queries of a shipped ground truth re-checked against brute force (0 for computed truth). */
  spotChecked: number;
  /** Recall@k of FAISS IndexFlatL2 against this ground truth, null when FAISS is not available. */
  faissFlatRecall: number | null;
}

/** One built index. */
export interface BuildRecord {
  library: LibraryId;
  /** Plot/summary series, e.g. `ZGQ`, `hnswlib-node`, `FAISS IVF-Flat`. */
  series: string;
  /** Exact index description, e.g. `HNSW M=16 efConstruction=200`, `IVF316,PQ32 + RefineFlat(k_factor=10)`. */
  index: string;
  buildSeconds: number;
  buildThreads: number;
  memory: MemoryRecord;
}

export interface MemoryRecord {
  bytes: number;
  /** How `bytes` was obtained, e.g. `ZGQIndex.stats().memory.total`, `saved index file size`. */
  method: string;
  /** Bytes by component where the library reports them (ZGQ), else null. */
  components: Record<string, number> | null;
}

export interface ResultRecord {
  library: LibraryId;
  series: string;
  /** Matches {@link BuildRecord.index} of the index searched. */
  index: string;
  /** Search knobs of this configuration, e.g. `{ ef: 64 }`, `{ ef: 64, nProbe: 4, rerank: 8 }`, `{ nprobe: 8 }`. */
  params: Record<string, number>;
  /** 'single': one query per call, timed per call. 'batch': every query in one call. */
  mode: 'single' | 'batch';
  threads: number;
  /** Recall@k, tie-aware: a returned id counts when its exact distance is <= the k-th true distance. */
  recall: number;
  /** Synthetic paper-recipe data only: recall over each query kind. */
  recallByKind: { mixture: number; outlier: number } | null;
  /** Median over timed passes of queries / wall seconds of the pass. */
  qps: number;
  /** QPS of each timed pass. */
  passQps: number[];
  /** Per-call latency in microseconds (medians over passes); null in batch mode. */
  latencyUs: { mean: number; p50: number; p99: number } | null;
  /** True when this configuration is on its series' recall/QPS Pareto frontier (per mode). */
  pareto: boolean;
}

/** Best QPS per series at recall >= target. */
export interface TargetRow {
  target: number;
  best: TargetBest[];
  /** ZGQ's best QPS divided by the reference's best QPS, null when either did not reach the target. */
  ratios: { 'hnswlib-node': number | null; usearch: number | null };
}

export interface TargetBest {
  series: string;
  library: LibraryId;
  /** null when no configuration of the series reached the target. */
  qps: number | null;
  recall: number | null;
  params: Record<string, number> | null;
  /** Highest recall the series reached at all. */
  maxRecall: number;
}
