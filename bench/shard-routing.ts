// Which shards a query is searched in: every shard owning one of its nProbe nearest zones, or only
// those whose zone lies within a factor of the nearest zone's squared distance (src/shards.ts
// ROUTE_RATIO). One sharded index (the shard bound lowered to force `shards`), each routing over one
// beam-width sweep: recall@10, time per query (median of the passes) and shards searched per query.
//   node --import tsx bench/shard-routing.ts [dataset] [shards] [passes]
import { ZGQIndex } from '../src/index.js';
import { boundForShards, ROUTE_RATIO, shardBounds, shardRouting } from '../src/shards.js';
import { resolveOptions } from '../src/options.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';
import { median } from '../src/bench/metrics.js';
import { recallAtK } from '../src/data/groundtruth.js';

const name = process.argv[2] ?? 'synthetic-100k';
const shards = Number(process.argv[3] ?? 4);
const passes = Number(process.argv[4] ?? 3);
const K = 10;
const EFS = [24, 32, 48, 64, 96];
const RATIOS = [Infinity, ROUTE_RATIO, 1.5];

const ds = await loadDataset(datasetSpec(name, { queries: 500 }), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: K });
const queries = Array.from({ length: ds.nQueries }, (_, q) => ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim));
shardBounds.maxBytes = boundForShards(ds.nBase, resolveOptions({ dim: ds.dim }), 1, shards);
const index = new ZGQIndex({ dim: ds.dim, metric: 'l2', seed: 1 });
await index.build(ds.base, { threads: 1 });
console.log(`${ds.name} (${ds.nBase} x ${ds.dim}, ${ds.nQueries} queries) in ${index.stats().shards} shards, nProbe ${index.options.search.nProbe}; ${passes} passes, median\n`);
console.log('| routing | ' + EFS.map((ef) => `ef ${ef}: recall@10, µs/query, shards/query`).join(' | ') + ' |');
console.log('| --- | ' + EFS.map(() => '---').join(' | ') + ' |');
// how many shards each query is searched in, counted by wrapping the router
const router = (index as unknown as { shards: { router: { route(nProbe: number, chosen: Uint8Array): number } } }).shards.router;
const route = router.route.bind(router);
let searched = 0;
router.route = (nProbe, chosen) => {
  const count = route(nProbe, chosen);
  searched += count;
  return count;
};
for (const ratio of RATIOS) {
  shardRouting.ratio = ratio;
  const cells: string[] = [];
  for (const ef of EFS) {
    const found = new Uint32Array(ds.nQueries * K);
    const times: number[] = [];
    searched = 0;
    for (let pass = 0; pass < passes; pass++) {
      const t = performance.now();
      for (let q = 0; q < ds.nQueries; q++) found.set(index.search(queries[q], K, { ef }).ids, q * K);
      times.push(performance.now() - t);
    }
    cells.push(`${recallAtK(found, ds.truth.ids, ds.nQueries, K, ds.truth.depth, K).toFixed(4)}, ${((1000 * median(times)) / ds.nQueries).toFixed(1)}, ${(searched / (passes * ds.nQueries)).toFixed(2)}`);
  }
  console.log(`| ${ratio === Infinity ? 'every shard with a selected zone' : `within ${ratio}× the nearest zone`} | ${cells.join(' | ')} |`);
}
