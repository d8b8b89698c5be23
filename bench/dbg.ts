import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
const dim = 32;
const ds = clusteredGaussian({ n: 5000, nQueries: 100, dim, seed: 11 });
const norm = (x: Float32Array) => { const y = x.slice(); for (let i = 0; i < y.length; i += dim) { let s = 0; for (let j = 0; j < dim; j++) s += y[i+j]**2; s = Math.sqrt(s); for (let j = 0; j < dim; j++) y[i+j] /= s; } return y; };
const nb = norm(ds.base), nq = norm(ds.queries);
for (const [metric, b, q, extra] of [['cosine', ds.base, ds.queries, {}], ['l2', nb, nq, {}], ['ip', nb, nq, {}], ['cosine', ds.base, ds.queries, {residual:false}], ['l2', nb, nq, {residual:false}]] as const) {
  const truth = bruteForceKnn(b, 5000, q, 100, dim, 10, metric as any);
  const index = new ZGQIndex({ dim, metric: metric as any, seed: 3, ...extra });
  await index.build(b);
  for (const ef of [64, 128, 512]) {
    const batch = await index.searchBatch(q, 10, { ef, rerank: 100 });
    console.log(metric, JSON.stringify(extra), ef, recallAtK(batch.ids, truth.ids, 100, 10, 10), index.stats().meanDegree);
  }
}
