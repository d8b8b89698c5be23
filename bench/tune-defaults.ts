// What a user gets without a grid search, per bench dataset: recall@10 and QPS (one query per call,
// one thread, median of --passes) on the dataset's real queries at the build's calibrated
// defaults, then after tune({ recall: 0.95 }) (which measures on the index's own vectors), and the
// options each chose. Build on 2 threads, seed 1.
//
//   node --import tsx bench/tune-defaults.ts [--dataset words,random-100k] [--passes 3] [--queries 500]
import { parseArgs } from 'node:util';
import { ZGQIndex, type SearchOptions } from '../src/index.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';
import { median } from '../src/bench/metrics.js';

const { values } = parseArgs({ options: { dataset: { type: 'string', default: 'words,random-100k,synthetic-100k' }, passes: { type: 'string', default: '3' }, queries: { type: 'string' } } });
const passes = Number(values.passes);
const K = 10;

function measure(index: ZGQIndex, queries: Float32Array, nq: number, dim: number, truth: Uint32Array, depth: number, options?: SearchOptions) {
  let hits = 0;
  const times: number[] = [];
  for (let pass = 0; pass < passes; pass++) {
    const t0 = performance.now();
    for (let q = 0; q < nq; q++) {
      const r = index.search(queries.subarray(q * dim, (q + 1) * dim), K, options);
      if (pass === 0) {
        const t = new Set(truth.subarray(q * depth, q * depth + K));
        for (const id of r.ids) if (t.has(id)) hits++;
      }
    }
    times.push(performance.now() - t0);
  }
  return { recall: hits / (nq * K), qps: nq / (median(times) / 1000) };
}

const describe = (o: { traversal: string; ef: number; rerank: number }) =>
  o.traversal === 'scan' ? 'scan' : o.traversal === 'fastscan' ? `fastscan rerank ${o.rerank}` : o.traversal === 'pq' ? `pq ef ${o.ef} rerank ${o.rerank}` : `${o.traversal} ef ${o.ef}`;
console.log(`# recall@10 and QPS on the real queries (one per call, one thread, median of ${passes}), defaults vs tune({ recall: 0.95 })\n`);
console.log('| dataset | defaults | recall@10 | QPS | tuned | recall@10 | QPS | tune time |\n| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const name of values.dataset.split(',')) {
  const ds = await loadDataset(datasetSpec(name, values.queries ? { queries: Number(values.queries) } : {}), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: K, log: () => {} });
  const index = new ZGQIndex({ dim: ds.dim, seed: 1 });
  await index.build(ds.base, { threads: 2 });
  const calibrated = index.options.search;
  const atDefaults = measure(index, ds.queries, ds.nQueries, ds.dim, ds.truth.ids, ds.truth.depth);
  const t0 = performance.now();
  const report = await index.tune({ recall: 0.95 });
  const tuneS = (performance.now() - t0) / 1000;
  const tuned = measure(index, ds.queries, ds.nQueries, ds.dim, ds.truth.ids, ds.truth.depth);
  console.log(
    `| ${name} | ${describe(calibrated)} | ${atDefaults.recall.toFixed(3)} | ${Math.round(atDefaults.qps)} | ${describe(report.search)} | ` +
      `${tuned.recall.toFixed(3)} | ${Math.round(tuned.qps)} | ${tuneS.toFixed(1)} s |`,
  );
}
