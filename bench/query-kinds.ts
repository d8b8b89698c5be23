// Recall@10 by query kind on a paper-recipe set (mixture queries near the data, outlier queries far
// from it): at the calibrated defaults and at a few settings without zone scans, on one build.
//   node --import tsx bench/query-kinds.ts [dataset] [threads]
import { ZGQIndex, type SearchOptions } from '../src/index.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';
import { recallAtK } from '../src/data/groundtruth.js';

const name = process.argv[2] ?? 'synthetic-1m';
const threads = Number(process.argv[3] ?? 2);
const K = 10;
const ds = await loadDataset(datasetSpec(name, { queries: 500 }), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: K });
if (!ds.queryKind) throw new Error(`${name} has no query kinds (a paper-recipe set has: synthetic-*)`);
const index = new ZGQIndex({ dim: ds.dim, seed: 1 });
await index.build(ds.base, { threads });
console.log(`${ds.name}: ${index.stats().shards} shard(s), calibrated defaults ${JSON.stringify(index.options.search)}`);
const kinds = ds.queryKind;
const settings: SearchOptions[] = [{}, { traversal: 'exact', scan: 0, ef: 64 }, { traversal: 'pq', scan: 0, ef: 64 }, { traversal: 'exact', scan: 0, ef: 64, nProbe: 64 }];
for (const options of settings) {
  const found = new Uint32Array(ds.nQueries * K);
  for (let q = 0; q < ds.nQueries; q++) found.set(index.search(ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim), K, options).ids, q * K);
  const byKind = (['mixture', 'outlier'] as const).map((label, kind) => {
    const qs = [...kinds.keys()].filter((q) => kinds[q] === kind);
    const f = new Uint32Array(qs.length * K);
    const t = new Uint32Array(qs.length * ds.truth.depth);
    qs.forEach((q, i) => {
      f.set(found.subarray(q * K, (q + 1) * K), i * K);
      t.set(ds.truth.ids.subarray(q * ds.truth.depth, (q + 1) * ds.truth.depth), i * ds.truth.depth);
    });
    return `${label} (${qs.length}) ${recallAtK(f, t, qs.length, K, ds.truth.depth, K).toFixed(4)}`;
  });
  console.log(`${JSON.stringify(options)}: ${byKind.join(', ')}`);
}
