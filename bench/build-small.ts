// Build time of ZGQ against hnswlib-node (M=16, efConstruction=200, as in `zgq bench`), in one
// process, with the time of each ZGQ build phase, and recall@10 / QPS of ZGQ at the default search
// parameters. Builds alternate between the libraries; figures are medians over the repetitions.
// The library is the compiled one (dist/, as users run it: worker threads load plain JavaScript).
// Usage: npm run build && node --import tsx bench/build-small.ts [--reps 5] [--threads 1,2] [--slack 1,1.3]
//          [--search '{"traversal":"exact","ef":256}'] [--no-hnsw] [datasets...]
// --slack: builds with each list slack (src/graph.ts graphBuild.slack; default: the library's), interleaved.
// --search: the search options recall and QPS are measured at (default: the index's calibrated defaults).
// datasets: any name `zgq bench --dataset` takes (default: siftsmall,synthetic-10k)
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ZGQIndex, type SearchOptions } from '../dist/src/index.js';
import { graphBuild } from '../dist/src/graph.js';
import { datasetSpec, loadDataset, type BenchDataset } from '../dist/src/bench/datasets.js';
import { recallAtK } from '../dist/src/data/groundtruth.js';
import { median } from '../dist/src/bench/metrics.js';

const args = process.argv.slice(2);
function option(name: string, fallback: string): string {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}
const reps = Number(option('--reps', '5'));
const seed = Number(option('--seed', '42'));
const threadCounts = option('--threads', '1,2').split(',').map(Number);
const slacks = option('--slack', String(graphBuild.slack)).split(',').map(Number);
const searchOptions = JSON.parse(option('--search', '{}')) as SearchOptions;
const noHnsw = args.includes('--no-hnsw');
const names = args.filter((a) => !a.startsWith('--'));
const datasets = names.length ? names : ['siftsmall', 'synthetic-10k'];

interface Hnsw {
  initIndex(maxElements: number, m?: number, efConstruction?: number, randomSeed?: number): void;
  addPoint(point: number[], label: number): void;
}
const require = createRequire(import.meta.url);
const { HierarchicalNSW } = require('hnswlib-node') as { HierarchicalNSW: new (space: 'l2', dim: number) => Hnsw };

function hnswBuild(ds: BenchDataset): number {
  const index = new HierarchicalNSW('l2', ds.dim);
  index.initIndex(ds.nBase, 16, 200, 100);
  let seconds = 0;
  const chunk = 2000;
  for (let from = 0; from < ds.nBase; from += chunk) {
    const to = Math.min(ds.nBase, from + chunk);
    const rows: number[][] = [];
    for (let i = from; i < to; i++) rows.push(Array.from(ds.base.subarray(i * ds.dim, (i + 1) * ds.dim)));
    const t = performance.now();
    for (let i = from; i < to; i++) index.addPoint(rows[i - from], i);
    seconds += (performance.now() - t) / 1000;
  }
  return seconds;
}

async function zgqBuild(ds: BenchDataset, threads: number): Promise<{ index: ZGQIndex; total: number; phases: Record<string, number> }> {
  const index = new ZGQIndex({ dim: ds.dim, metric: 'l2', seed });
  const phases: Record<string, number> = {};
  let phaseStart = 0;
  const t0 = performance.now();
  await index.build(ds.base, {
    threads,
    onProgress: (phase, fraction) => {
      const now = performance.now();
      if (fraction === 0) phaseStart = now;
      else if (fraction === 1 && phase !== 'done') phases[phase] = (now - phaseStart) / 1000;
    },
  });
  return { index, total: (performance.now() - t0) / 1000, phases };
}

function evaluate(ds: BenchDataset, index: ZGQIndex): { recall: number; qps: number } {
  const k = 10;
  const found = new Uint32Array(ds.nQueries * k);
  const views = Array.from({ length: ds.nQueries }, (_, q) => ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim));
  for (const v of views) index.search(v, k, searchOptions); // warm-up
  const qpsRuns: number[] = [];
  for (let pass = 0; pass < 3; pass++) {
    const t = performance.now();
    for (let q = 0; q < ds.nQueries; q++) found.set(index.search(views[q], k, searchOptions).ids, q * k);
    qpsRuns.push(ds.nQueries / ((performance.now() - t) / 1000));
  }
  return { recall: recallAtK(found, ds.truth.ids, ds.nQueries, k, ds.truth.depth), qps: median(qpsRuns) };
}

const cacheDir = join(import.meta.dirname, 'results', 'cache');
const dataDir = process.env.ZGQ_DATA_DIR ?? join(import.meta.dirname, '..', '..', 'shared', 'data');
for (const name of datasets) {
  const ds = await loadDataset(datasetSpec(name), { dataDir, cacheDir, k: 10 });
  const hnsw: number[] = [];
  const zgq = new Map<string, { total: number[]; phases: Record<string, number[]>; quality?: { recall: number; qps: number } }>();
  for (let r = 0; r < reps; r++) {
    if (!noHnsw) hnsw.push(hnswBuild(ds));
    for (const slack of slacks) for (const threads of threadCounts) {
      graphBuild.slack = slack;
      const { index, total, phases } = await zgqBuild(ds, threads);
      const key = `threads ${threads}, slack ${slack}`;
      const entry = zgq.get(key) ?? { total: [], phases: {} };
      entry.total.push(total);
      for (const [p, s] of Object.entries(phases)) (entry.phases[p] ??= []).push(s);
      zgq.set(key, entry);
      if (r === reps - 1 && threads === threadCounts[0]) entry.quality = evaluate(ds, index);
    }
  }
  const h = noHnsw ? NaN : median(hnsw);
  console.log(`${name} (${ds.nBase} x ${ds.dim}), ${reps} reps: hnswlib-node build ${h.toFixed(2)} s`);
  for (const [key, e] of zgq) {
    const t = median(e.total);
    const phaseText = Object.entries(e.phases).map(([p, s]) => `${p} ${median(s).toFixed(2)}`).join(', ');
    const quality = e.quality ? `; search ${JSON.stringify(searchOptions)}: recall@10 ${e.quality.recall.toFixed(4)}, QPS ${e.quality.qps.toFixed(0)}` : '';
    console.log(`  ZGQ ${key}: build ${t.toFixed(2)} s (${(t / h).toFixed(2)}x hnswlib-node) [${phaseText}]${quality}`);
  }
}
