// Settings beyond bench/scale.ts's grid on a saved index (bench/scale.ts --save): the exact and PQ
// walks without zone scans at large ef, and the exact walk with a few wide scans; recall@10 against
// the dataset's exact ground truth and one-query-per-call QPS (one pass). Loads the file first, a
// section at a time when it is large.
//   node --import tsx bench/scale-sweep.ts <dataset> <index file> [queries]
import { ZGQIndex, type SearchOptions } from '../src/index.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';
import { recallAtK } from '../src/data/groundtruth.js';

const [name, file] = process.argv.slice(2);
if (!name || !file) throw new Error('usage: bench/scale-sweep.ts <dataset> <index file> [queries]');
const nq = Number(process.argv[4] ?? 300);
const ds = await loadDataset(datasetSpec(name, { queries: 500 }), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: 10 });
const t0 = performance.now();
const index = await ZGQIndex.load(file);
console.log(`loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s; defaults ${JSON.stringify(index.options.search)}`);
const configs: SearchOptions[] = [
  ...[256, 512, 1024, 2048].flatMap((ef) => [8, 32].map((nProbe) => ({ traversal: 'exact' as const, scan: 0, nProbe, ef }))),
  ...[512, 1024, 2048].map((ef) => ({ traversal: 'pq' as const, scan: 0, nProbe: 32, ef, rerank: 32 })),
  ...[4, 8, 16].map((scan) => ({ traversal: 'exact' as const, scan, nProbe: 32, ef: 256, scanRatio: 2 })),
];
for (const options of configs) {
  const found = new Uint32Array(nq * 10);
  const t = performance.now();
  for (let q = 0; q < nq; q++) found.set(index.search(ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim), 10, options).ids, q * 10);
  const ms = (performance.now() - t) / nq;
  const recall = recallAtK(found, ds.truth.ids.subarray(0, nq * ds.truth.depth), nq, 10, ds.truth.depth, 10);
  console.log(`${JSON.stringify(options)} recall@10 ${recall.toFixed(4)} QPS ${(1000 / ms).toFixed(0)}`);
}
