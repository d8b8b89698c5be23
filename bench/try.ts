import { ZGQIndex } from '/work/main/src/index.js';
import { clusteredGaussian } from '/work/main/src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '/work/main/src/data/groundtruth.js';
const n = Number(process.argv[2] ?? 20000), dim = Number(process.argv[3] ?? 64), nq = 500;
const ds = clusteredGaussian({ n, nQueries: nq, dim, seed: 1 });
const gt = bruteForceKnn(ds.base, n, ds.queries, nq, dim, 10, 'l2');
const extra = JSON.parse(process.argv[4] ?? '{}');
const index = new ZGQIndex({ dim, ...extra });
let t = performance.now();
await index.build(ds.base);
console.log('build', (performance.now() - t).toFixed(0), 'ms', index.stats().meanDegree);
for (const [ef, nProbe, rerank] of JSON.parse(process.argv[5] ?? '[[64,4,100],[256,4,100],[64,4,4]]')) {
  const r = await index.searchBatch(ds.queries, 10, { ef, nProbe, rerank });
  t = performance.now();
  await index.searchBatch(ds.queries, 10, { ef, nProbe, rerank });
  const dt = performance.now() - t;
  console.log({ ef, nProbe, rerank }, 'recall', recallAtK(r.ids, gt.ids, nq, 10, 10).toFixed(4), 'qps', (nq / dt * 1000).toFixed(0));
}
