/**
 * What the harness needs of each library it measures. An adapter owns its query loop (so nothing
 * is allocated per query beyond what the library's API forces) and reports per-call latency.
 */
import type { BenchDataset } from '../datasets.js';
import type { Progress } from '../progress.js';
import type { SweepPlan } from '../sweeps.js';
import type { BuildRecord, LibraryId, LibraryInfo } from '../types.js';

/** One configuration of search knobs. */
export interface SweepPoint {
  params: Record<string, number>;
  /**
   * Pilot only: points of one group are ordered by rising cost (ef); once one reaches recall
   * 0.999 the rest of its group is skipped.
   */
  group?: string;
}

/** What a peer gets to build and search with. */
export interface PeerContext {
  ds: BenchDataset;
  k: number;
  cacheDir: string;
  plan: SweepPlan;
  progress: Progress;
}

/** One built index, searchable at each of its sweep points. */
export interface PeerIndex {
  library: LibraryId;
  series: string;
  index: string;
  build: BuildRecord;
  /** An exact search: its recall checks the ground truth. */
  exact?: boolean;
  /**
   * Configurations to measure, in order of rising cost (a 1-D sweep stops once recall saturates,
   * see sweepExhausted). With `pilot` set they are candidates: the harness measures each
   * once on a query subset and times only the near-Pareto ones plus `pilot.keep`.
   */
  points: SweepPoint[];
  pilot?: { keep: SweepPoint[] };
  /**
   * One pass: queries [0, nq), one per call, the whole set `repeat` times. Writes the ids of the
   * last round into `out` (row q at q * k) and every call's latency in microseconds into `lat`
   * (nq * repeat entries); returns the wall seconds of the pass.
   */
  runSingle(point: SweepPoint, nq: number, repeat: number, out: Uint32Array, lat: Float64Array): Promise<number>;
  /** Thread counts batch mode runs with; empty when the library has no batch call. */
  batchThreads: number[];
  /** Why there is no batch mode, when `batchThreads` is empty. */
  batchNote?: string;
  /**
   * Configurations batch mode also considers beside the single-query ones (ZGQ: zone scans that a
   * batch shares, see zgqBatchCandidates), measured only in batch mode.
   */
  batchCandidates?: SweepPoint[];
  /** Every query in one call with `threads` threads: ids into `out`; returns wall seconds. */
  runBatch(point: SweepPoint, threads: number, out: Uint32Array): Promise<number>;
  /** Frees the index. */
  close(): Promise<void>;
}

/** A library adapter. */
export interface Peer {
  library: LibraryId;
  /** Loads the library; status 'ok' with its exact version, or why it cannot be measured. */
  probe(): Promise<LibraryInfo>;
  /** Builds this library's indexes over `ctx.ds` (only called after an 'ok' probe). */
  build(ctx: PeerContext): Promise<PeerIndex[]>;
  /** Releases what the run held (the FAISS child process). */
  shutdown(): Promise<void>;
}
