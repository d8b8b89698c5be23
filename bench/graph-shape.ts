// Graph shape measurement: one unified graph (random insertion order; or zone by zone in rounds)
// vs one graph inserted zone by zone vs an independent graph per zone, at equal search options.
// Usage: node --import tsx bench/graph-shape.ts [n] [dim] [outlierFraction] [shapes,comma,separated]
import { ZGQIndex, type GraphShape } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { readFvecs, readIvecs } from '../src/data/vecs.js';
import { fileURLToPath } from 'node:url';

const sift = process.argv[2] === 'siftsmall';
let ds: { base: Float32Array; queries: Float32Array };
let n: number, dim: number, nq: number, truth: { ids: Uint32Array | Int32Array }, truthStride = 10;
if (sift) {
  const dir = fileURLToPath(new URL('../../shared/data/siftsmall/', import.meta.url));
  const base = await readFvecs(dir + 'siftsmall_base.fvecs');
  const queries = await readFvecs(dir + 'siftsmall_query.fvecs');
  const gt = await readIvecs(dir + 'siftsmall_groundtruth.ivecs');
  ds = { base: base.data, queries: queries.data };
  [n, dim, nq, truth, truthStride] = [base.n, base.dim, queries.n, { ids: gt.data }, gt.dim];
  console.log(`# siftsmall ${n} x ${dim}, ${nq} queries, k = 10; QPS = median of 3 passes, one query per call`);
} else {
  n = Number(process.argv[2] ?? 100000);
  dim = Number(process.argv[3] ?? 128);
  const outlierFraction = Number(process.argv[4] ?? 0.3);
  nq = 1000;
  ds = clusteredGaussian({ n, nQueries: nq, dim, seed: 42, outlierFraction });
  truth = bruteForceKnn(ds.base, n, ds.queries, nq, dim, 10, 'l2');
  console.log(`# ${n} x ${dim}, outlierFraction ${outlierFraction}, ${nq} queries, k = 10; QPS = median of 3 passes, one query per call`);
}
console.log('| graph | build s | ef | nProbe | scan | recall@10 | QPS |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const graph of (process.argv[5]?.split(',') ?? ['unified', 'zone-rounds', 'zone-order', 'per-zone']) as GraphShape[]) {
  const index = new ZGQIndex({ dim, graph });
  let t = performance.now();
  await index.build(ds.base);
  const buildS = (performance.now() - t) / 1000;
  for (const [ef, nProbe, scan] of sift ? [[16, 4, 0], [32, 4, 0], [64, 4, 0], [16, 16, 16], [32, 16, 16], [64, 16, 16]] : [[64, 4, 0], [128, 4, 0], [256, 4, 0], [32, 16, 16], [64, 16, 16], [128, 16, 16]]) {
    const ids = new Uint32Array(nq * 10);
    const times: number[] = [];
    for (let pass = 0; pass < (sift ? 12 : 4); pass++) {
      t = performance.now();
      for (let q = 0; q < nq; q++) ids.set(index.search(ds.queries.subarray(q * dim, (q + 1) * dim), 10, { ef, nProbe, scan }).ids, q * 10);
      if (pass > 0) times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const qps = Math.round((nq / times[times.length >> 1]) * 1000);
    console.log(`| ${graph} | ${buildS.toFixed(1)} | ${ef} | ${nProbe} | ${scan} | ${recallAtK(ids, truth.ids, nq, 10, truthStride).toFixed(4)} | ${qps} |`);
  }
}
