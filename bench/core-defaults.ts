// Recall@10 and single-thread QPS of ZGQ at default options on 100K x 128 clustered synthetic data
// (mixture queries, and the paper recipe with 30 % far queries) and on siftsmall.
// Usage: node --import tsx bench/core-defaults.ts
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { readFvecs, readIvecs } from '../src/data/vecs.js';

async function measure(name: string, base: Float32Array, queries: Float32Array, dim: number, truth: Uint32Array | Int32Array, truthStride: number): Promise<void> {
  const nq = queries.length / dim;
  const index = new ZGQIndex({ dim });
  let t = performance.now();
  await index.build(base);
  const buildS = (performance.now() - t) / 1000;
  const ids = new Uint32Array(nq * 10);
  const times: number[] = [];
  for (let pass = 0; pass < 4; pass++) {
    t = performance.now();
    for (let q = 0; q < nq; q++) ids.set(index.search(queries.subarray(q * dim, (q + 1) * dim), 10).ids, q * 10);
    if (pass > 0) times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const recall = recallAtK(ids, truth, nq, 10, truthStride);
  console.log(`| ${name} | ${buildS.toFixed(1)} | ${recall.toFixed(4)} | ${Math.round((nq / times[1]) * 1000)} |`);
}

console.log('| data | build s | recall@10 | QPS (median of 3 passes, one query per call) |');
console.log('| --- | ---: | ---: | ---: |');
for (const outlierFraction of [0, 0.3]) {
  const ds = clusteredGaussian({ n: 100000, nQueries: 1000, dim: 128, seed: 42, outlierFraction });
  const truth = bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, 128, 10, 'l2');
  await measure(`synthetic 100K x 128, outlierFraction ${outlierFraction}`, ds.base, ds.queries, 128, truth.ids, 10);
}
const sift = fileURLToPath(new URL('../../shared/data/siftsmall/', import.meta.url));
if (existsSync(sift)) {
  const base = await readFvecs(sift + 'siftsmall_base.fvecs');
  const queries = await readFvecs(sift + 'siftsmall_query.fvecs');
  const gt = await readIvecs(sift + 'siftsmall_groundtruth.ivecs');
  await measure('siftsmall 10K x 128', base.data, queries.data, 128, gt.data, gt.dim);
} else console.log(`siftsmall not found at ${sift}`);
