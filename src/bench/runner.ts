/**
 * One benchmark run: load each dataset, build every available library's indexes on it, narrow
 * ZGQ's grid with a pilot, then time all configurations in interleaved passes (so drift and
 * neighbours' load hit every library alike) and collect a {@link BenchReport}.
 */
import { availableParallelism, cpus, platform, totalmem } from 'node:os';
import { ZGQError } from '../errors.js';
import { loadDataset, type BenchDataset, type DatasetSpec } from './datasets.js';
import { latencyStats, median, recallByKind, tieAwareRecall, type LatencyStats, type RecallResult } from './metrics.js';
import { bestAtTarget, paretoFrontier, paretoLayers, targetSummary } from './pareto.js';
import { filteredScenario } from './filtered.js';
import { faissPeer } from './peers/faiss.js';
import { hnswlibPeer } from './peers/hnswlib.js';
import type { Peer, PeerContext, PeerIndex, SweepPoint } from './peers/types.js';
import { usearchPeer } from './peers/usearch.js';
import { zgqPeer } from './peers/zgq.js';
import { silentProgress, yieldToEventLoop, type Progress } from './progress.js';
import { sweepExhausted, sweepPlan, type SweepPlan } from './sweeps.js';
import {
  BENCH_SCHEMA, BENCH_SCHEMA_VERSION, type BenchReport, type DatasetReport, type LibraryId, type LibraryInfo, type MachineInfo,
  type ResultRecord,
} from './types.js';

/** Every library the harness knows, in report order. */
export const ALL_LIBRARIES: readonly LibraryId[] = ['zgq', 'hnswlib-node', 'usearch', 'faiss'];
/** Recall targets of the summary. */
export const DEFAULT_TARGETS = [0.9, 0.95, 0.99];
const NO_ID = 0xffffffff;
/** Pilot early stop: past this recall a group's larger ef values are not worth measuring. */
const PILOT_SATURATED = 0.999;

/** Options of {@link runBench}. */
export interface BenchOptions {
  datasets: DatasetSpec[];
  k: number;
  /** Timed passes per configuration (>= 1; the CLI insists on >= 3). */
  passes: number;
  quick: boolean;
  libraries: readonly LibraryId[];
  /** Also run batch mode. */
  batch: boolean;
  /** Also time ZGQ through filters (src/bench/filtered.ts). */
  filtered?: boolean;
  dataDir: string;
  cacheDir: string;
  /** Python interpreter for FAISS (else the usual candidates are tried). */
  python?: string;
  progress?: Progress;
  /** Recorded in the report. */
  command: string;
  /** Overrides the sweep plan (tests use a tiny one). */
  plan?: SweepPlan;
  targets?: number[];
}

function machineInfo(): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cpus: availableParallelism(),
    totalMemoryBytes: totalmem(),
    platform: `${platform()} ${process.arch}`,
    node: process.version,
    openblasCoretype: process.env.OPENBLAS_CORETYPE ?? null,
  };
}

function makePeers(o: BenchOptions, batchThreads: number[]): Peer[] {
  const make: Record<LibraryId, () => Peer> = {
    zgq: () => zgqPeer(batchThreads),
    'hnswlib-node': () => hnswlibPeer(),
    usearch: () => usearchPeer(batchThreads),
    faiss: () => faissPeer({ cacheDir: o.cacheDir, python: o.python, batchThreads }),
  };
  return ALL_LIBRARIES.filter((l) => o.libraries.includes(l)).map((l) => make[l]());
}

/** `ef=64 nProbe=4` */
export function formatParams(params: Record<string, number>): string {
  const s = Object.entries(params).map(([k, v]) => `${k}=${v}`).join(' ');
  return s || '-';
}

/** Runs the benchmark and returns its report (writing files is the caller's business). */
export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const progress = o.progress ?? silentProgress;
  if (!Number.isInteger(o.k) || o.k < 1) throw new ZGQError('INVALID_ARGUMENT', `k must be a positive integer; got ${o.k}`);
  if (!Number.isInteger(o.passes) || o.passes < 1) throw new ZGQError('INVALID_ARGUMENT', `passes must be a positive integer; got ${o.passes}`);
  const plan = o.plan ?? sweepPlan(o.quick);
  const targets = o.targets ?? DEFAULT_TARGETS;
  const batchThreads = [...new Set([1, availableParallelism()])];
  const report: BenchReport = {
    schema: BENCH_SCHEMA,
    version: BENCH_SCHEMA_VERSION,
    createdAt: new Date().toISOString(),
    command: o.command,
    machine: machineInfo(),
    settings: { k: o.k, passes: o.passes, quick: o.quick, minQueriesPerPass: plan.minQueriesPerPass, batchThreads: o.batch ? batchThreads : [], targets },
    libraries: [],
    datasets: [],
  };

  const peers = makePeers(o, batchThreads);
  const ready: Peer[] = [];
  try {
    for (const peer of peers) {
      const info: LibraryInfo = await peer.probe().catch((err: unknown) => ({
        library: peer.library, status: 'failed' as const, version: null, detail: err instanceof Error ? err.message : String(err),
      }));
      report.libraries.push(info);
      progress.log(`${info.library}: ${info.status}${info.version ? ` ${info.version}` : ''} (${info.detail})`);
      if (info.status === 'ok') ready.push(peer);
    }
    for (const spec of o.datasets) {
      progress.log(`\n== ${spec.name}: ${spec.description}`);
      const ds = await loadDataset(spec, { dataDir: o.dataDir, cacheDir: o.cacheDir, k: o.k, log: (l) => progress.log(l) });
      progress.log(
        `${ds.nBase} x ${ds.dim}, ${ds.nQueries} queries; ground truth ${ds.truth.source}` +
          (ds.truth.spotChecked ? ` (${ds.truth.spotChecked} queries spot-checked against brute force)` : '') +
          (ds.truth.path ? `: ${ds.truth.path}` : ''),
      );
      const measured = await measureDataset(ds, ready, { ...o, plan, targets, batchThreads }, progress);
      if (o.filtered) measured.filtered = await filteredScenario(ds, { k: o.k, passes: o.passes, minQueriesPerPass: plan.minQueriesPerPass, progress });
      report.datasets.push(measured);
    }
  } finally {
    for (const peer of peers) await peer.shutdown().catch(() => {});
  }
  return report;
}

interface Cell {
  idx: PeerIndex;
  point: SweepPoint;
  recall: RecallResult;
  passQps: number[];
  passLatency: LatencyStats[];
}

type Resolved = BenchOptions & { plan: SweepPlan; targets: number[]; batchThreads: number[] };

function recallOf(ds: BenchDataset, out: Uint32Array, nq: number, k: number): RecallResult {
  return tieAwareRecall(out, k, ds.truth.ids, ds.truth.depth, ds.base, ds.nBase, ds.queries, nq, ds.dim, k);
}

function paramKey(p: SweepPoint): string {
  return JSON.stringify(p.params);
}

/**
 * Times every pilot point once more, last first, keeping the better QPS of the two: a slow spell of
 * the machine during the first pass would otherwise drop a run of neighbouring configurations (it
 * once left Fashion-MNIST's grid without its fastest ones at 0.90 and 0.95).
 */
export async function secondPilotPass(measured: { point: SweepPoint; qps: number }[], qpsOf: (point: SweepPoint) => Promise<number>): Promise<void> {
  for (let i = measured.length - 1; i >= 0; i--) measured[i].qps = Math.max(measured[i].qps, await qpsOf(measured[i].point));
}

/** Measures each candidate on the first queries (twice, see secondPilotPass) and keeps the near-Pareto ones. */
async function pilot(idx: PeerIndex, ds: BenchDataset, o: Resolved, progress: Progress, out: Uint32Array, lat: Float64Array): Promise<SweepPoint[]> {
  const nq = Math.min(ds.nQueries, o.plan.pilotQueries);
  const bar = progress.task(`pilot ${idx.series} (${nq} queries)`, idx.points.length);
  const measured: { point: SweepPoint; recall: number; qps: number }[] = [];
  const saturated = new Set<string>();
  let n = 0;
  try {
    for (const point of idx.points) {
      bar.update(++n, formatParams(point.params));
      if (point.group && saturated.has(point.group)) continue;
      out.fill(NO_ID);
      const seconds = await idx.runSingle(point, nq, 1, out, lat);
      const recall = recallOf(ds, out, nq, o.k).recall;
      measured.push({ point, recall, qps: nq / seconds });
      if (point.group && recall >= PILOT_SATURATED) saturated.add(point.group);
      if (n % 8 === 0) await yieldToEventLoop();
    }
  } finally {
    bar.stop();
  }
  const again = progress.task(`pilot ${idx.series}, second pass`, measured.length);
  try {
    let m = 0;
    await secondPilotPass(measured, async (point) => {
      again.update(++m, formatParams(point.params));
      if (m % 8 === 0) await yieldToEventLoop();
      return nq / (await idx.runSingle(point, nq, 1, out, lat));
    });
  } finally {
    again.stop();
  }
  let chosen = paretoLayers(measured, o.plan.pilotLayers).flat().sort((a, b) => a.recall - b.recall);
  if (chosen.length > o.plan.maxPilotKeep) {
    // keep an even spread along the recall axis, always including both ends
    const m = o.plan.maxPilotKeep;
    chosen = Array.from({ length: m }, (_, i) => chosen[Math.round((i * (chosen.length - 1)) / (m - 1))]);
  }
  const keep = new Map<string, SweepPoint>();
  for (const c of chosen) keep.set(paramKey(c.point), c.point);
  // the layers and the spread above come from short, noisy timings and can leave a gap at a
  // target: the fastest few at and just above each target are timed too
  for (const point of fastestAtTargets(measured, o.targets)) keep.set(paramKey(point), point);
  for (const p of idx.pilot?.keep ?? []) keep.set(paramKey(p), p);
  progress.log(`pilot ${idx.series}: ${measured.length} of ${idx.points.length} candidates measured, ${keep.size} kept for timing`);
  return [...keep.values()];
}

/** Pilot picks kept at each recall target: the 3 fastest reaching it, and the 2 fastest a point above it. */
export function fastestAtTargets(measured: { point: SweepPoint; recall: number; qps: number }[], targets: number[]): SweepPoint[] {
  const picks: SweepPoint[] = [];
  for (const target of targets) {
    for (const [floor, count] of [[target, 3], [target + 0.01, 2]] as const) {
      const reaching = measured.filter((m) => m.recall >= floor).sort((a, b) => b.qps - a.qps);
      for (const m of reaching.slice(0, count)) picks.push(m.point);
    }
  }
  return picks;
}

/** Round-robin over indexes so consecutive passes belong to different libraries. */
function interleave(lists: Cell[][]): Cell[] {
  const out: Cell[] = [];
  const longest = Math.max(0, ...lists.map((l) => l.length));
  for (let i = 0; i < longest; i++) for (const l of lists) if (i < l.length) out.push(l[i]);
  return out;
}

async function measureDataset(ds: BenchDataset, peers: Peer[], o: Resolved, progress: Progress): Promise<DatasetReport> {
  const { k, plan } = o;
  const ctx: PeerContext = { ds, k, cacheDir: o.cacheDir, plan, progress };
  const report: DatasetReport = {
    name: ds.name, description: ds.description, nBase: ds.nBase, nQueries: ds.nQueries, dim: ds.dim, metric: 'l2',
    groundTruth: { source: ds.truth.source, path: ds.truth.path, depth: ds.truth.depth, spotChecked: ds.truth.spotChecked, faissFlatRecall: null },
    queryKinds: null, builds: [], skipped: [], notes: [], results: [], summary: [],
  };
  if (ds.queryKind) {
    let outliers = 0;
    for (let q = 0; q < ds.nQueries; q++) outliers += ds.queryKind[q];
    report.queryKinds = { mixture: ds.nQueries - outliers, outlier: outliers };
  }
  const repeat = Math.max(1, Math.ceil(plan.minQueriesPerPass / ds.nQueries));
  if (repeat > 1) report.notes.push(`each timed pass runs the ${ds.nQueries} queries ${repeat} times (at least ${plan.minQueriesPerPass} calls per pass)`);

  const indexes: PeerIndex[] = [];
  for (const peer of peers) {
    try {
      const built = await peer.build(ctx);
      for (const b of built) {
        indexes.push(b);
        report.builds.push(b.build);
        progress.log(`built ${b.series} (${b.index}) in ${b.build.buildSeconds.toFixed(1)} s, ${(b.build.memory.bytes / 1048576).toFixed(1)} MB`);
      }
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      report.skipped.push({ library: peer.library, reason });
      progress.log(`${peer.library} skipped on ${ds.name}: ${reason}`);
    }
  }

  const out = new Uint32Array(ds.nQueries * k);
  const lat = new Float64Array(ds.nQueries * repeat);
  try {
    // narrow pilot grids, then one untimed pass per configuration: warm-up and recall
    const perIndex: Cell[][] = [];
    for (const idx of indexes) {
      const points = idx.pilot ? await pilot(idx, ds, o, progress, out, lat) : idx.points;
      const cells: Cell[] = [];
      const bar = progress.task(`warm-up ${idx.series}`, points.length);
      try {
        for (const point of points) {
          // a 1-D sweep (rising cost) stops once recall saturates; a pilot's picks are all kept
          if (!idx.pilot && sweepExhausted(cells.map((c) => c.recall.recall))) break;
          out.fill(NO_ID);
          await idx.runSingle(point, ds.nQueries, 1, out, lat);
          cells.push({ idx, point, recall: recallOf(ds, out, ds.nQueries, k), passQps: [], passLatency: [] });
          bar.update(cells.length, formatParams(point.params));
        }
      } finally {
        bar.stop();
      }
      if (cells.length < points.length) {
        report.notes.push(`${idx.series}: sweep stopped after ${cells.length} of ${points.length} values (recall saturated at ${Math.max(...cells.map((c) => c.recall.recall)).toFixed(4)})`);
      }
      if (idx.exact) {
        report.groundTruth.faissFlatRecall = cells[0].recall.recall;
        if (cells[0].recall.recall < 0.999) progress.log(`warning: exact search (${idx.series}) reaches recall ${cells[0].recall.recall.toFixed(4)} against the ground truth`);
      }
      perIndex.push(cells);
    }

    const order = interleave(perIndex);
    const bar = progress.task(`timed passes (${o.passes} x ${order.length} configurations)`, o.passes * order.length);
    let done = 0;
    try {
      for (let pass = 0; pass < o.passes; pass++) {
        // alternate direction so no library always runs right after the same neighbour
        const seq = pass % 2 === 0 ? order : [...order].reverse();
        for (const cell of seq) {
          const seconds = await cell.idx.runSingle(cell.point, ds.nQueries, repeat, out, lat);
          cell.passQps.push((ds.nQueries * repeat) / seconds);
          cell.passLatency.push(latencyStats(lat));
          bar.update(++done, `${cell.idx.series} ${formatParams(cell.point.params)}`);
          await yieldToEventLoop();
        }
      }
    } finally {
      bar.stop();
    }
    for (const cell of order) report.results.push(singleRecord(cell, ds, k));

    if (o.batch) {
      const batchRepeat = Math.max(1, Math.ceil(plan.minBatchQueriesPerPass / ds.nQueries));
      if (batchRepeat > 1) report.notes.push(`each timed batch-mode pass makes ${batchRepeat} batch calls of the ${ds.nQueries} queries`);
      report.results.push(...(await batchMode(perIndex, ds, o, progress, out, batchRepeat, report.notes)));
    }
  } finally {
    for (const idx of indexes) await idx.close().catch(() => {});
  }

  markPareto(report.results);
  report.summary = targetSummary(
    report.results.filter((r) => r.mode === 'single').map((r) => ({ series: r.series, library: r.library, params: r.params, recall: r.recall, qps: r.qps })),
    o.targets,
  );
  return report;
}

function kindRecall(ds: BenchDataset, r: RecallResult, k: number): ResultRecord['recallByKind'] {
  if (!ds.queryKind) return null;
  const by = recallByKind(r.hits, ds.queryKind, k);
  return by.mixture !== null && by.outlier !== null ? { mixture: by.mixture, outlier: by.outlier } : null;
}

function singleRecord(cell: Cell, ds: BenchDataset, k: number): ResultRecord {
  return {
    library: cell.idx.library, series: cell.idx.series, index: cell.idx.index, params: { ...cell.point.params }, mode: 'single', threads: 1,
    recall: cell.recall.recall, recallByKind: kindRecall(ds, cell.recall, k),
    qps: median(cell.passQps), passQps: cell.passQps,
    latencyUs: {
      mean: median(cell.passLatency.map((s) => s.mean)),
      p50: median(cell.passLatency.map((s) => s.p50)),
      p99: median(cell.passLatency.map((s) => s.p99)),
    },
    pareto: false,
  };
}

/** Pause before each timed batch cell (see batchMode). */
const BATCH_SETTLE_MS = 30;

/**
 * Batch mode: every query in one call, for each library's fastest one-thread batch configuration at
 * each recall target (plus its highest-recall one) among its timed single-query configurations and
 * its batch candidates, at each thread count it supports.
 */
async function batchMode(
  perIndex: Cell[][], ds: BenchDataset, o: Resolved, progress: Progress, out: Uint32Array, repeat: number, notes: string[],
): Promise<ResultRecord[]> {
  type BatchCell = { idx: PeerIndex; point: SweepPoint; threads: number; recall: RecallResult; passQps: number[] };
  // per library, one group per configuration: its cells at each thread count, timed one right after
  // the other, so that the ratio between thread counts sees the same state of the machine
  const lists: BatchCell[][][] = [];
  for (const cells of perIndex) {
    if (cells.length === 0) continue;
    const idx = cells[0].idx;
    if (idx.batchThreads.length === 0) {
      if (idx.batchNote && !notes.includes(idx.batchNote)) notes.push(idx.batchNote);
      continue;
    }
    // the candidates: every configuration timed one query at a time and those the library offers
    // for batches only, each searched as one-thread batches (the better of two timings, the recall
    // of the batch path itself); the fastest at each target and the highest-recall one are timed below
    const pts: { point: SweepPoint; recall: number; qps: number }[] = [];
    const candidates = [...cells.map((c) => c.point), ...(idx.batchCandidates ?? [])];
    const pilot = progress.task(`batch candidates ${idx.series} (${candidates.length})`, candidates.length);
    try {
      for (const point of candidates) {
        let best = Infinity;
        let recall = 0;
        for (let run = 0; run < 2; run++) {
          out.fill(NO_ID);
          let seconds = 0;
          for (let r = 0; r < repeat; r++) seconds += await idx.runBatch(point, 1, out);
          best = Math.min(best, seconds);
          recall = recallOf(ds, out, ds.nQueries, o.k).recall;
        }
        pts.push({ point, recall, qps: (ds.nQueries * repeat) / best });
        pilot.update(pts.length, formatParams(point.params));
        await yieldToEventLoop();
      }
    } finally {
      pilot.stop();
    }
    const picked = new Set<SweepPoint>();
    for (const t of o.targets) {
      const b = bestAtTarget(pts, t);
      if (b) picked.add(b.point);
    }
    picked.add(pts.reduce((a, b) => (b.recall > a.recall || (b.recall === a.recall && b.qps > a.qps) ? b : a)).point);
    const groups: BatchCell[][] = [];
    for (const point of picked) {
      const group: BatchCell[] = [];
      for (const threads of idx.batchThreads) {
        out.fill(NO_ID);
        await idx.runBatch(point, threads, out); // warm-up, and recall of the batch path itself
        group.push({ idx, point, threads, recall: recallOf(ds, out, ds.nQueries, o.k), passQps: [] });
      }
      groups.push(group);
    }
    lists.push(groups);
  }
  const order: BatchCell[] = [];
  const longest = Math.max(0, ...lists.map((l) => l.length));
  for (let i = 0; i < longest; i++) for (const l of lists) if (i < l.length) order.push(...l[i]);
  const bar = progress.task(`batch mode (${o.passes} x ${order.length})`, o.passes * order.length);
  let done = 0;
  try {
    for (let pass = 0; pass < o.passes; pass++) {
      for (const c of pass % 2 === 0 ? order : [...order].reverse()) {
        // a multi-threaded cell may leave threads spinning (FAISS's OpenMP threads spin for about
        // 10 ms after a call) on cores the next cell needs: let them settle first
        await new Promise((resolve) => setTimeout(resolve, BATCH_SETTLE_MS));
        // a small query set is repeated, as in single mode, so a pass is long enough to time
        let seconds = 0;
        for (let r = 0; r < repeat; r++) seconds += await c.idx.runBatch(c.point, c.threads, out);
        c.passQps.push((ds.nQueries * repeat) / seconds);
        bar.update(++done, `${c.idx.series} ${formatParams(c.point.params)} threads=${c.threads}`);
        await yieldToEventLoop();
      }
    }
  } finally {
    bar.stop();
  }
  return order.map((c) => ({
    library: c.idx.library, series: c.idx.series, index: c.idx.index, params: { ...c.point.params }, mode: 'batch' as const, threads: c.threads,
    recall: c.recall.recall, recallByKind: kindRecall(ds, c.recall, o.k), qps: median(c.passQps), passQps: c.passQps, latencyUs: null, pareto: false,
  }));
}

/** Flags each result on the Pareto frontier of its (series, mode, threads). */
function markPareto(results: ResultRecord[]): void {
  const groups = new Map<string, ResultRecord[]>();
  for (const r of results) {
    const key = `${r.series}\u0000${r.mode}\u0000${r.threads}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(r);
  }
  for (const g of groups.values()) for (const r of paretoFrontier(g)) r.pareto = true;
}
