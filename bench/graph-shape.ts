// Graph shape measurement: one unified graph (random insertion order) vs one graph inserted zone
// by zone vs an independent graph per zone, at equal search options, on clustered data.
// Usage: node --import tsx bench/graph-shape.ts [n] [dim] [outlierFraction]
import { ZGQIndex, type GraphShape } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';

const n = Number(process.argv[2] ?? 100000);
const dim = Number(process.argv[3] ?? 128);
const outlierFraction = Number(process.argv[4] ?? 0.3);
const nq = 1000;
const ds = clusteredGaussian({ n, nQueries: nq, dim, seed: 42, outlierFraction });
const truth = bruteForceKnn(ds.base, n, ds.queries, nq, dim, 10, 'l2');
console.log(`# ${n} x ${dim}, outlierFraction ${outlierFraction}, ${nq} queries, k = 10; QPS = median of 3 passes, one query per call`);
console.log('| graph | build s | ef | nProbe | recall@10 | QPS |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const graph of ['unified', 'zone-order', 'per-zone'] as GraphShape[]) {
  const index = new ZGQIndex({ dim, graph });
  let t = performance.now();
  await index.build(ds.base);
  const buildS = (performance.now() - t) / 1000;
  for (const [ef, nProbe] of [[32, 4], [64, 4], [128, 4], [256, 4], [64, 16], [256, 16]]) {
    const ids = new Uint32Array(nq * 10);
    const times: number[] = [];
    for (let pass = 0; pass < 4; pass++) {
      t = performance.now();
      for (let q = 0; q < nq; q++) ids.set(index.search(ds.queries.subarray(q * dim, (q + 1) * dim), 10, { ef, nProbe }).ids, q * 10);
      if (pass > 0) times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const qps = Math.round((nq / times[1]) * 1000);
    console.log(`| ${graph} | ${buildS.toFixed(1)} | ${ef} | ${nProbe} | ${recallAtK(ids, truth.ids, nq, 10, 10).toFixed(4)} | ${qps} |`);
  }
}
