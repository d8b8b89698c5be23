// One library at scale, alone in its process so that its peak memory is its own: the dataset and
// its exact ground truth (cached), the build on the given threads (time, peak RSS, index memory,
// shards), then recall@10 and single-query / batch QPS over a sweep, and the best QPS at recall@10
// 0.90 / 0.95 / 0.99. hnswlib-node: ef rising until recall saturates. ZGQ: a grid of traversal x
// zones probed x zone scans x ef x rerank (the index's defaults among them), each point tried
// first on PILOT_QUERIES queries in one pass, then the points on the pilot's recall/time frontier
// timed on every query. Results go to bench/results-scale/<dataset>-<library>.json.
//   node --import tsx bench/scale.ts <dataset> [--library zgq|hnswlib-node] [--threads 2] [--queries 500]
//     [--shard-gib G]   (ZGQ: split builds needing more than G GiB of one memory; default 3)
//     [--save FILE]     (ZGQ: then save the index to FILE, load it back and compare every answer)
// Datasets: any bench name, sized ones included (synthetic-10m, embedding-1536-1m).
import { createRequire } from 'node:module';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ZGQIndex } from '../src/index.js';
import { shardBounds } from '../src/shards.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';
import { median } from '../src/bench/metrics.js';
import { recallAtK } from '../src/data/groundtruth.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const name = args.find((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1].startsWith('--')));
if (!name) throw new Error('usage: bench/scale.ts <dataset> [--library zgq|hnswlib-node] [--threads 2] [--queries 500] [--shard-gib 3]');
const library = option('--library', 'zgq');
const threads = Number(option('--threads', '2'));
const nQueries = Number(option('--queries', '500'));
shardBounds.maxBytes = Number(option('--shard-gib', '3')) * 1024 ** 3;
const PASSES = 3;
const K = 10;
const TARGETS = [0.9, 0.95, 0.99];

const gib = (bytes: number) => Math.round((bytes / 1024 ** 3) * 100) / 100;
const peakRss = () => process.resourceUsage().maxRSS * 1024;
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

const ds = await loadDataset(datasetSpec(name, { queries: nQueries }), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: K, log });
const queries = Array.from({ length: ds.nQueries }, (_, q) => ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim));
log(`${ds.name}: ${ds.nBase} x ${ds.dim}, ${ds.nQueries} queries; RSS with the data ${gib(process.memoryUsage().rss)} GiB`);

interface Point { label: string; recall: number; qps: number; batchRecall?: number; batchQps?: number }
/** One search configuration of a library. */
interface Config { label: string; options: Record<string, number | string> }
interface Library {
  build(): Promise<void>;
  /** Save, load back and compare every answer: seconds of each and the file's size. */
  saveAndLoad?(path: string): Promise<Record<string, number>>;
  bytes(): number;
  describe(): Record<string, unknown>;
  /** The configurations to sweep, in order of rising cost within a 1-D sweep. */
  configs(): Config[];
  /** Whether the configurations are a grid narrowed by a pilot (else a 1-D sweep stopped once recall saturates). */
  pilot: boolean;
  /** The k nearest to query q (its number in the dataset). */
  search(q: number, config: Config): Uint32Array;
  batch?(config: Config): Promise<Uint32Array>;
}

/** The ZGQ grid around the index's defaults: zones probed from the default to 8x, the PQ walk with growing re-ranking, the exact walk with the index's zone scans, with wide ones and with none. */
function zgqGrid(defaults: Record<string, number | string>): Config[] {
  const nProbe0 = Number(defaults.nProbe);
  const out: Config[] = [];
  const add = (options: Record<string, number | string>) =>
    out.push({ label: Object.entries(options).map(([key, v]) => `${key} ${v}`).join(', '), options });
  for (const ef of [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384]) add({ ef });
  for (const nProbe of [...new Set([Math.max(8, nProbe0 >> 1), nProbe0, nProbe0 * 2, nProbe0 * 4, nProbe0 * 8])]) {
    for (const rerank of [8, 32]) for (const ef of [64, 128, 256, 512, 1024]) if (10 * rerank <= 2 * ef) add({ traversal: 'pq', nProbe, rerank, ef });
    for (const ef of [16, 64, 256]) add({ traversal: 'exact', nProbe, scan: nProbe, scanRatio: 2, ef });
    // the walk alone, as a graph library walks: at 10M it matched hnswlib-node at 0.90 (bench/scale-sweep.ts)
    for (const ef of [512, 1024, 2048, 4096]) add({ traversal: 'exact', nProbe, scan: 0, ef });
  }
  return out;
}

function zgq(): Library {
  const index = new ZGQIndex({ dim: ds.dim, metric: 'l2', seed: 1 });
  const phases: Record<string, number> = {};
  return {
    pilot: true,
    configs: () => zgqGrid(index.options.search as unknown as Record<string, number | string>),
    async build() {
      let phase = '';
      let started = performance.now();
      let last = 0;
      await index.build(ds.base, {
        threads,
        onProgress: (p, f) => {
          const now = performance.now();
          if (p !== phase) {
            if (phase) phases[phase] = (now - started) / 1000;
            phase = p;
            started = now;
          }
          if (now - last > 60_000) {
            last = now;
            log(`build ${p} ${(f * 100).toFixed(0)} %, peak RSS ${gib(peakRss())} GiB`);
          }
        },
      });
    },
    bytes: () => index.stats().memory.total,
    describe: () => {
      const s = index.stats();
      return { shards: s.shards, zones: s.zones, storage: s.storage, pq: s.pqSubspaces, degree: s.degree, memory: s.memory, phases, search: index.options.search };
    },
    search: (q, c) => index.search(queries[q], K, c.options).ids,
    async saveAndLoad(path) {
      let t = performance.now();
      await index.save(path);
      const saveSeconds = (performance.now() - t) / 1000;
      t = performance.now();
      const loaded = await ZGQIndex.load(path);
      const loadSeconds = (performance.now() - t) / 1000;
      for (const q of queries) {
        const a = index.search(q, K);
        const b = loaded.search(q, K);
        if (a.ids.some((id, i) => id !== b.ids[i])) throw new Error('the loaded index answers differently');
      }
      const { size } = statSync(path);
      return { saveSeconds, loadSeconds, fileGiB: gib(size), peakRssAfterLoadGiB: gib(peakRss()) };
    },
    batch: async (c) => (await index.searchBatch(ds.queries, K, { ...c.options, threads })).ids,
  };
}

function hnsw(): Library {
  const require = createRequire(import.meta.url);
  const { HierarchicalNSW } = require('hnswlib-node');
  const index = new HierarchicalNSW('l2', ds.dim);
  const rows = queries.map((q) => Array.from(q));
  let bytes = 0;
  return {
    pilot: false,
    configs: () => [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096].map((ef) => ({ label: `ef ${ef}`, options: { ef } })),
    async build() {
      index.initIndex(ds.nBase, 16, 200, 100);
      let last = performance.now();
      for (let i = 0; i < ds.nBase; i++) {
        index.addPoint(Array.from(ds.base.subarray(i * ds.dim, (i + 1) * ds.dim)), i);
        if ((i & 0xffff) === 0 && performance.now() - last > 60_000) {
          last = performance.now();
          log(`build ${((i / ds.nBase) * 100).toFixed(0)} %, peak RSS ${gib(peakRss())} GiB`);
        }
      }
      // hnswlib's own layout: level-0 links and vector per element, upper levels about 1/M of that
      const perElement = ds.dim * 4 + (2 * 16 + 1) * 4 + 8;
      bytes = ds.nBase * perElement * (1 + 1 / 16);
    },
    bytes: () => bytes,
    describe: () => ({ M: 16, efConstruction: 200, threads: 1, memory: 'per element: vector + 2M level-0 links + label, upper levels 1/M of that' }),
    search: (q, c) => {
      index.setEf(Math.max(Number(c.options.ef), K));
      return Uint32Array.from(index.searchKnn(rows[q], K).neighbors);
    },
  };
}

const lib = library === 'zgq' ? zgq() : library === 'hnswlib-node' ? hnsw() : null;
if (!lib) throw new Error(`unknown library ${library}`);
const rssBefore = process.memoryUsage().rss;
const t0 = performance.now();
await lib.build();
const buildSeconds = (performance.now() - t0) / 1000;
const buildPeak = peakRss();
log(`${library} built in ${buildSeconds.toFixed(0)} s; peak RSS ${gib(buildPeak)} GiB (${gib(rssBefore)} GiB before the build); index ${gib(lib.bytes())} GiB`);

const truth = ds.truth.ids;
const recallOf = (found: Uint32Array) => recallAtK(found, truth, ds.nQueries, K, ds.truth.depth, K);
const PILOT_QUERIES = 100;
const points: Point[] = [];
let configs = lib.configs();
if (lib.pilot) {
  // the pilot: every configuration on the first queries, one pass; the frontier (no other point
  // both faster and at least as accurate) goes on to be timed
  const pilotTruth = truth.subarray(0, PILOT_QUERIES * ds.truth.depth);
  const tried = configs.map((config) => {
    const found = new Uint32Array(PILOT_QUERIES * K);
    const t = performance.now();
    for (let q = 0; q < PILOT_QUERIES; q++) found.set(lib.search(q, config), q * K);
    return { config, ms: performance.now() - t, recall: recallAtK(found, pilotTruth, PILOT_QUERIES, K, ds.truth.depth, K) };
  });
  // two layers of the frontier: the pilot's few queries misjudge recall by a point or so
  const layer = (from: typeof tried) => from.filter((a) => !from.some((b) => b !== a && b.ms < a.ms && b.recall >= a.recall));
  const first = layer(tried);
  const frontier = [...first, ...layer(tried.filter((t) => !first.includes(t)))];
  log(`pilot: ${tried.length} configurations on ${PILOT_QUERIES} queries, ${frontier.length} on the first two layers of the frontier`);
  configs = frontier.sort((a, b) => a.ms - b.ms).map((f) => f.config);
}
for (const config of configs) {
  const found = new Uint32Array(ds.nQueries * K);
  const times: number[] = [];
  for (let pass = 0; pass < PASSES; pass++) {
    const t = performance.now();
    for (let q = 0; q < ds.nQueries; q++) found.set(lib.search(q, config), q * K);
    times.push(performance.now() - t);
  }
  const point: Point = { label: config.label, recall: recallOf(found), qps: (1000 * ds.nQueries) / median(times) };
  if (lib.batch) {
    const batchTimes: number[] = [];
    let ids = new Uint32Array(0);
    for (let pass = 0; pass < PASSES; pass++) {
      const t = performance.now();
      ids = await lib.batch(config);
      batchTimes.push(performance.now() - t);
    }
    point.batchRecall = recallOf(ids);
    point.batchQps = (1000 * ds.nQueries) / median(batchTimes);
  }
  points.push(point);
  log(`${config.label}: recall@10 ${point.recall.toFixed(4)}, ${point.qps.toFixed(0)} QPS${point.batchQps ? `; batch ${point.batchQps.toFixed(0)} QPS` : ''}`);
  if (!lib.pilot && point.recall >= 0.999) break;
}
const best = (target: number, key: 'qps' | 'batchQps', recall: 'recall' | 'batchRecall') =>
  points.filter((p) => (p[recall] ?? 0) >= target).reduce<Point | null>((a, p) => (a && (a[key] ?? 0) >= (p[key] ?? 0) ? a : p), null);
const targets = TARGETS.map((t) => ({ target: t, single: best(t, 'qps', 'recall'), batch: lib.batch ? best(t, 'batchQps', 'batchRecall') : null }));
for (const t of targets) log(`recall@10 >= ${t.target}: ${t.single ? `${t.single.qps.toFixed(0)} QPS (${t.single.label})` : 'not reached'}${t.batch ? `; batch ${t.batch.batchQps!.toFixed(0)} QPS (${t.batch.label})` : ''}`);

const savePath = args.includes('--save') ? option('--save', '') : '';
const saved = savePath && lib.saveAndLoad ? await lib.saveAndLoad(savePath) : null;
if (saved) log(`saved in ${saved.saveSeconds.toFixed(0)} s (${saved.fileGiB} GiB), loaded in ${saved.loadSeconds.toFixed(0)} s: the same answers to every query`);

const out = fileURLToPath(new URL('./results-scale/', import.meta.url));
mkdirSync(out, { recursive: true });
const result = {
  dataset: ds.name, description: ds.description, n: ds.nBase, dim: ds.dim, queries: ds.nQueries, library, threads,
  buildSeconds, peakRssGiB: gib(buildPeak), rssBeforeBuildGiB: gib(rssBefore), indexGiB: gib(lib.bytes()), index: lib.describe(), points, targets, saved,
  machine: `${process.platform} ${process.arch}, node ${process.version}`, date: new Date().toISOString(),
};
writeFileSync(`${out}${ds.name}-${library}.json`, JSON.stringify(result, null, 2) + '\n');
log(`wrote ${out}${ds.name}-${library}.json`);
