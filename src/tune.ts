/**
 * Recall on request: the fastest search options that reach a recall@k target on the index's own
 * vectors.
 *
 * Queries are a seeded sample of the stored vectors, each kept out of its own walk and its own
 * results (the search asks for k + 1 and drops the query's id). The ground truth is the 'scan'
 * traversal: every stored row compared exactly, the distances re-ranking computes, so a
 * configuration is judged against the best the index can return. Then the smallest ef on EF_GRID
 * that reaches the target for each walk ('pq' at the default re-rank depth and at DEEP_RERANK times
 * it, 'exact'), and the smallest re-rank depth on
 * RERANK_GRID for the fast scan (see smallestOnGrid), each timed one query per call (the median of
 * TIMING_PASSES); the exact 'scan' is timed too, when a first few queries show it could win. The
 * fastest that reaches the target wins; when none does, the most accurate.
 */
import { ZGQError } from './errors.js';
import { NO_ID } from './ids.js';
import { describeValue } from './validate.js';
import { Pacer } from './pace.js';
import type { ResolvedSearchOptions, SearchOptions, Traversal } from './options.js';
import type { SearchResult } from './index.js';

/** Options of ZGQIndex.tune. */
export interface TuneOptions {
  /** The recall@k to reach, in (0, 1]. */
  recall: number;
  /** Neighbours per query the recall is measured at. Default 10. */
  k?: number;
  /** Stored vectors used as queries. Default 300 (at most the index's size - 1). */
  queries?: number;
  /** Fraction of the tuning done, in [0, 1]. */
  onProgress?: (fraction: number) => void;
  /** Stops the tuning at its next step with ZGQError 'ABORTED'; the index's defaults stay as they were. */
  signal?: AbortSignal;
}

/** One configuration tried: its recall on the sample and, when timed, its speed. */
export interface TuneTrial {
  search: ResolvedSearchOptions;
  recall: number;
  /** Queries per second, one per call on this thread; null when not timed. */
  qps: number | null;
}

/** What tune measured and chose. */
export interface TuneReport {
  /** The target asked for, and k. */
  target: number;
  k: number;
  /** Stored vectors used as queries. */
  queries: number;
  /** True when the chosen options reach the target on the sample. */
  reached: boolean;
  /** The chosen options, now the index's search defaults. */
  search: ResolvedSearchOptions;
  /** Recall@k and QPS of the chosen options on the sample. */
  recall: number;
  qps: number;
  /** Every configuration measured, in the order tried. */
  tried: TuneTrial[];
}

/** What tune needs of an index. */
export interface TuneTarget {
  readonly size: number;
  readonly defaults: ResolvedSearchOptions;
  readonly seed: number;
  /**
   * `count` distinct stored vectors chosen with `seed`: their ids, and a search of sample query q
   * that never reaches or returns q's own node (see Searcher.skip).
   */
  sample(count: number, seed: number): { ids: Uint32Array; search(q: number, k: number, options: SearchOptions): SearchResult };
}

/** The beam widths tried, in order. */
export const EF_GRID = [10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024, 1280, 1536, 2048];
/** The fast scan's re-rank factors tried (k * rerank candidates re-ranked), in order. */
export const RERANK_GRID = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256];
const DEFAULT_QUERIES = 300;
/** How many times the default re-rank depth tune also tries the PQ walk with. */
const DEEP_RERANK = 4;
/** Grid steps that about double ef. */
const DOUBLING_STEPS = 3;
/** A recall gain below this over a doubling of ef is a plateau. */
const PLATEAU = 0.003;
const TIMING_PASSES = 3;
/** Queries timed before deciding whether the full scan could win. */
const SCAN_PROBE = 16;

/** `value` as a recall target. @throws ZGQError('INVALID_ARGUMENT') unless it is a number in (0, 1]. */
export function checkRecall(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) {
    throw new ZGQError('INVALID_ARGUMENT', `${name} must be a number in (0, 1]; got ${describeValue(value)}`);
  }
  return value;
}

/** Checked options, the sample, its exact neighbours, and recall and speed measured on it. */
class Sampler {
  readonly k: number;
  readonly nq: number;
  readonly pacer: Pacer;
  private readonly sample: ReturnType<TuneTarget['sample']>;
  private truth!: ReturnType<typeof heldOut>;
  private done = 0;
  private readonly progress: (fraction: number) => void;

  constructor(index: TuneTarget, options: TuneOptions, private readonly steps: number) {
    if (options === null || typeof options !== 'object') throw new ZGQError('INVALID_ARGUMENT', 'tune options must be an object such as { recall: 0.95 }');
    checkRecall('recall', options.recall);
    const k = options.k ?? 10;
    if (!Number.isInteger(k) || k < 1 || k > 1024) throw new ZGQError('INVALID_ARGUMENT', `k must be an integer in [1, 1024]; got ${String(k)}`);
    if (index.size < k + 2) throw new ZGQError('EMPTY_INPUT', `tune needs more than k + 1 = ${k + 1} vectors in the index; it holds ${index.size}`);
    const asked = options.queries ?? DEFAULT_QUERIES;
    if (!Number.isInteger(asked) || asked < 1) throw new ZGQError('INVALID_ARGUMENT', `queries must be a positive integer; got ${String(asked)}`);
    this.k = k;
    this.nq = Math.min(asked, index.size - 1);
    this.pacer = new Pacer(options.signal, 'tune');
    this.progress = options.onProgress ?? (() => {});
    this.sample = index.sample(this.nq, index.seed + 7);
  }

  /** The exact neighbours of the sample: the scan traversal. */
  async start(defaults: ResolvedSearchOptions): Promise<void> {
    const truth = await this.searchAll({ ...defaults, traversal: 'scan' });
    this.truth = heldOut(truth.ids, truth.distances, this.sample.ids, this.nq, this.k);
    await this.step();
  }

  async step(): Promise<void> {
    this.progress(Math.min(1, ++this.done / this.steps));
    await this.pacer.step();
  }

  /** Recall@k of `search` on the sample, ties at the k-th true distance counted as hits. */
  async recall(search: ResolvedSearchOptions): Promise<number> {
    const { nq, k } = this;
    const got = await this.searchAll(search);
    const results = heldOut(got.ids, got.distances, this.sample.ids, nq, k);
    let hits = 0;
    for (let q = 0; q < nq; q++) {
      const truthIds = this.truth.sets[q];
      const kth = this.truth.kth[q];
      for (let r = 0; r < results.ids[q].length; r++) {
        // a neighbour at the k-th true distance counts: ties have no right order
        if (truthIds.has(results.ids[q][r]) || results.dists[q][r] <= kth) hits++;
      }
    }
    return hits / (nq * k);
  }

  /** Queries per second of `search` on the first `count` sample queries, one per call: the median of TIMING_PASSES. */
  async qps(search: ResolvedSearchOptions, count = this.nq): Promise<number> {
    const times: number[] = [];
    for (let pass = 0; pass < TIMING_PASSES; pass++) {
      const t0 = performance.now();
      for (let q = 0; q < count; q++) this.sample.search(q, this.k + 1, search);
      times.push(performance.now() - t0);
      await this.pacer.step();
    }
    times.sort((a, b) => a - b);
    return count / (Math.max(times[TIMING_PASSES >> 1], 1e-3) / 1000);
  }

  /**
   * The trial of the smallest value of `grid` (ef or rerank values, rising) from index `from` whose
   * recall reaches `target`, or null; every trial measured is appended to `tried`. Recall rises
   * along the grid, so: steps of about 2x up it from `from` until one reaches the target, then a
   * binary search below it. The climb gives up where
   * recall has stopped rising (PLATEAU over a doubling): the walk is limited by something else
   * there (its re-rank depth, its distances), and wider beams only cost more.
   */
  async smallestOnGrid(
    grid: readonly number[], at: (value: number) => ResolvedSearchOptions, target: number, from: number, tried: TuneTrial[] = [],
  ): Promise<TuneTrial | null> {
    const measured = new Map<number, TuneTrial>();
    const measure = async (i: number) => {
      let trial = measured.get(i);
      if (!trial) {
        const search = at(grid[i]);
        trial = { search, recall: await this.recall(search), qps: null };
        tried.push(trial);
        measured.set(i, trial);
        await this.step();
      }
      return trial.recall;
    };
    const last = grid.length - 1;
    let below = from - 1; // the largest index known to fall short
    let probe = from;
    let previous = -1;
    for (;;) {
      const recall = await measure(probe);
      if (recall >= target) break;
      if (probe === last || (previous >= 0 && recall - previous < PLATEAU)) return null;
      below = probe;
      previous = recall;
      probe = Math.min(last, probe + DOUBLING_STEPS);
    }
    let lo = below + 1;
    let hi = probe;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((await measure(mid)) >= target) hi = mid;
      else lo = mid + 1;
    }
    return measured.get(lo)!;
  }

  /** k + 1 results per sample query, flat: one query per call, the event loop served between slices. */
  private async searchAll(search: ResolvedSearchOptions): Promise<{ ids: Uint32Array; distances: Float32Array }> {
    const { nq, k } = this;
    const ids = new Uint32Array(nq * (k + 1));
    const distances = new Float32Array(nq * (k + 1));
    for (let q = 0; q < nq; q++) {
      const r = this.sample.search(q, k + 1, search);
      ids.set(r.ids, q * (k + 1));
      distances.set(r.distances, q * (k + 1));
      if (this.pacer.due) await this.pacer.step();
    }
    return { ids, distances };
  }
}

/** Recalls one smallestEf measures at most, about: the climb and the binary search below. */
const SEARCH_STEPS = Math.ceil(EF_GRID.length / DOUBLING_STEPS) + 2;

/** The fastest options reaching `options.recall` (see the module comment). */
export async function tuneSearch(index: TuneTarget, options: TuneOptions): Promise<TuneReport> {
  const defaults = index.defaults;
  const ways: { traversal: Traversal; rerank: number }[] = [
    { traversal: 'pq', rerank: defaults.rerank },
    // the PQ walk re-ranking DEEP_RERANK times as many candidates: where PQ distances are too coarse
    // to order a short list (1M x 1536: rerank 8 levels off at recall@10 0.88, 32 reaches 0.97 at
    // 3.6x the exact walk's speed), the smallest ef that reaches the target is still a short walk
    { traversal: 'pq', rerank: defaults.rerank * DEEP_RERANK },
    { traversal: 'exact', rerank: defaults.rerank },
    { traversal: 'fastscan', rerank: defaults.rerank },
  ];
  // steps: the truth, a search of the grid and a timing per way, and the scan
  const s = new Sampler(index, options, 1 + ways.length * (SEARCH_STEPS + 1) + 1);
  const target = options.recall;
  await s.start(defaults);
  const tried: TuneTrial[] = [];
  const reaching: TuneTrial[] = [];
  for (const { traversal, rerank } of ways) {
    // the walks climb ef; the fast scan, its re-rank depth
    const grid = traversal === 'fastscan' ? RERANK_GRID : EF_GRID;
    const at = (v: number): ResolvedSearchOptions => (traversal === 'fastscan' ? { ...defaults, traversal, rerank: v } : { ...defaults, traversal, rerank, ef: v });
    const trial = await s.smallestOnGrid(grid, at, target, 0, tried);
    if (!trial) continue;
    trial.qps = await s.qps(trial.search);
    reaching.push(trial);
    await s.step();
  }
  // the scan reaches any target; time it in full only where a first few queries say it could win
  const scanOptions: ResolvedSearchOptions = { ...defaults, traversal: 'scan' };
  const fastest = reaching.reduce<number>((m, t) => Math.max(m, t.qps!), 0);
  const scanTrial: TuneTrial = { search: scanOptions, recall: 1, qps: await s.qps(scanOptions, Math.min(SCAN_PROBE, s.nq)) };
  if (scanTrial.qps! > 0.8 * fastest) {
    scanTrial.recall = await s.recall(scanOptions);
    scanTrial.qps = await s.qps(scanOptions);
    if (scanTrial.recall >= target) reaching.push(scanTrial);
  }
  tried.push(scanTrial);
  await s.step();
  const mostAccurate = tried.reduce((a, b) => (b.recall > a.recall ? b : a));
  const chosen = reaching.length > 0 ? reaching.reduce((a, b) => (b.qps! > a.qps! ? b : a)) : mostAccurate;
  chosen.qps ??= await s.qps(chosen.search);
  return { target, k: s.k, queries: s.nq, reached: chosen.recall >= target, search: chosen.search, recall: chosen.recall, qps: chosen.qps, tried };
}

/**
 * Indexes of more vectors than this never get the scan as their calibrated default: it compares
 * every stored vector (at 10M x 128, about 170 ms a query against a few ms for a walk), so where no
 * walk reaches the target they keep the walk that came nearest. Tests lower it; nothing else changes it.
 * @internal
 */
export const calibration = { scanMax: 200_000 };

/**
 * The defaults an index gets at build: the current ones when they reach `options.recall` on the
 * sample; else the smallest larger ef of the same walk that does; else the smallest ef of the
 * exact walk; else the scan, or above calibration.scanMax vectors the walk with the best recall
 * tried. Decided on recall alone, so the same index gets the same defaults on every run and thread
 * count (tuneSearch's choice depends on timings). Never lowers ef.
 */
export async function calibrateSearch(index: TuneTarget, options: TuneOptions): Promise<ResolvedSearchOptions> {
  const s = new Sampler(index, options, 2 + 2 * SEARCH_STEPS);
  const defaults = index.defaults;
  await s.start(defaults);
  const tried: TuneTrial[] = [{ search: defaults, recall: await s.recall(defaults), qps: null }];
  if (tried[0].recall >= options.recall) return defaults;
  await s.step();
  const from = EF_GRID.findIndex((ef) => ef > defaults.ef);
  const own = from < 0 ? null : await s.smallestOnGrid(EF_GRID, (ef) => ({ ...defaults, ef }), options.recall, from, tried);
  if (own) return own.search;
  if (defaults.traversal !== 'exact') {
    const exact = await s.smallestOnGrid(EF_GRID, (ef) => ({ ...defaults, traversal: 'exact', ef }), options.recall, 0, tried);
    if (exact) return exact.search;
  }
  if (index.size <= calibration.scanMax) return { ...defaults, traversal: 'scan' };
  // the first of the best: the smallest ef at the best recall
  return tried.reduce((best, t) => (t.recall > best.recall ? t : best)).search;
}

/**
 * Per query: the first k ids of a k + 1 result without the query's own id (the last one dropped
 * when it is absent), their distances, and the k-th distance.
 */
function heldOut(ids: Uint32Array, distances: Float32Array, self: Uint32Array, nq: number, k: number) {
  const out = { ids: [] as number[][], dists: [] as number[][], sets: [] as Set<number>[], kth: new Float32Array(nq) };
  for (let q = 0; q < nq; q++) {
    const keptIds: number[] = [];
    const keptDists: number[] = [];
    for (let r = 0; r <= k && keptIds.length < k; r++) {
      const id = ids[q * (k + 1) + r];
      if (id === self[q] || id === NO_ID) continue;
      keptIds.push(id);
      keptDists.push(distances[q * (k + 1) + r]);
    }
    out.ids.push(keptIds);
    out.dists.push(keptDists);
    out.sets.push(new Set(keptIds));
    out.kth[q] = keptDists.length === k ? keptDists[k - 1] : Infinity;
  }
  return out;
}
