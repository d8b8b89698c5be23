// Search settings beyond ef on a saved index (bench/scale.ts --save): traversal x zones scanned x
// zones probed x ef, recall@10 against the dataset's exact ground truth and one-query-per-call QPS
// (one pass). Loads the file first, a section at a time when it is large.
//   node --import tsx bench/scale-sweep.ts <dataset> <index file> [queries]
import { ZGQIndex } from '../src/index.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';
import { recallAtK } from '../src/data/groundtruth.js';

const [name, file] = process.argv.slice(2);
if (!name || !file) throw new Error('usage: bench/scale-sweep.ts <dataset> <index file> [queries]');
const nq = Number(process.argv[4] ?? 300);
const ds = await loadDataset(datasetSpec(name, { queries: 500 }), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: 10 });
let t = performance.now();
const index = await ZGQIndex.load(file);
console.log(`loaded in ${((performance.now() - t) / 1000).toFixed(1)} s; defaults ${JSON.stringify(index.options.search)}; RSS ${(process.memoryUsage().rss / 2 ** 30).toFixed(2)} GiB`);
for (const traversal of ['pq', 'exact'] as const) {
  for (const scan of [0, 4, 16]) {
    for (const nProbe of [8, 16]) {
      for (const ef of [32, 64, 128]) {
        const found = new Uint32Array(nq * 10);
        t = performance.now();
        for (let q = 0; q < nq; q++) found.set(index.search(ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim), 10, { ef, scan, nProbe, traversal }).ids, q * 10);
        const ms = (performance.now() - t) / nq;
        const recall = recallAtK(found, ds.truth.ids.subarray(0, nq * ds.truth.depth), nq, 10, ds.truth.depth, 10);
        console.log(traversal, 'scan', scan, 'nProbe', nProbe, 'ef', ef, 'recall', recall.toFixed(4), 'QPS', (1000 / ms).toFixed(0));
      }
    }
  }
}
