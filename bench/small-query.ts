// Per-query cost at the smallest configurations on siftsmall, beside hnswlib-node in one process:
// where the fixed cost of a query (lookup table, zone selection, the call) decides the ratio.
//   node --import tsx bench/small-query.ts [passes]
import { fileURLToPath } from 'node:url';
import hnswlib from 'hnswlib-node';
import { ZGQIndex } from '../src/index.js';
import { readFvecs, readIvecs } from '../src/data/vecs.js';
import { recallAtK } from '../src/data/groundtruth.js';

const passes = Number(process.argv[2] ?? 15);
const dir = fileURLToPath(new URL('../../shared/data/siftsmall/', import.meta.url));
const base = await readFvecs(dir + 'siftsmall_base.fvecs');
const q = await readFvecs(dir + 'siftsmall_query.fvecs');
const gt = await readIvecs(dir + 'siftsmall_groundtruth.ivecs');
const dim = base.dim;
const truth = new Uint32Array(q.n * 10);
for (let i = 0; i < q.n; i++) for (let j = 0; j < 10; j++) truth[i * 10 + j] = gt.data[i * gt.dim + j];
const index = new ZGQIndex({ dim });
await index.build(base.data, { threads: 1 });
const hnsw = new hnswlib.HierarchicalNSW('l2', dim);
hnsw.initIndex(base.n, 16, 200, 100);
for (let i = 0; i < base.n; i++) hnsw.addPoint(Array.from(base.data.subarray(i * dim, (i + 1) * dim)), i);
const queries = Array.from({ length: q.n }, (_, i) => q.data.slice(i * dim, (i + 1) * dim));
const queryArrays = queries.map((v) => Array.from(v));
const options = { ef: 16, nProbe: 2, rerank: 2 };
// hnswlib-node's fastest setting at recall@10 >= 0.95 on siftsmall (0.950; the bench's sweep finds it)
const HNSW_EF = 12;
const REPEAT = 20;

function zgqPass(): { qps: number; ids: Uint32Array } {
  const ids = new Uint32Array(q.n * 10);
  const t = performance.now();
  for (let r = 0; r < REPEAT; r++) for (let i = 0; i < q.n; i++) ids.set(index.search(queries[i], 10, options).ids, i * 10);
  return { qps: (REPEAT * q.n) / ((performance.now() - t) / 1000), ids };
}
function hnswPass(): { qps: number; ids: Uint32Array } {
  hnsw.setEf(HNSW_EF);
  const ids = new Uint32Array(q.n * 10);
  const t = performance.now();
  for (let r = 0; r < REPEAT; r++) for (let i = 0; i < q.n; i++) ids.set(hnsw.searchKnn(queryArrays[i], 10).neighbors, i * 10);
  return { qps: (REPEAT * q.n) / ((performance.now() - t) / 1000), ids };
}
zgqPass();
hnswPass();
const z: number[] = [];
const h: number[] = [];
let zIds = new Uint32Array(0);
let hIds = new Uint32Array(0);
for (let p = 0; p < passes; p++) {
  const a = zgqPass();
  const b = hnswPass();
  z.push(a.qps);
  h.push(b.qps);
  zIds = a.ids;
  hIds = b.ids;
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`ZGQ ${JSON.stringify(options)}: recall@10 ${recallAtK(zIds, truth, q.n, 10, 10).toFixed(3)}, ${median(z).toFixed(0)} QPS (${(1e6 / median(z)).toFixed(1)} us)`);
console.log(`hnswlib-node ef ${HNSW_EF}: recall@10 ${recallAtK(hIds, truth, q.n, 10, 10).toFixed(3)}, ${median(h).toFixed(0)} QPS (${(1e6 / median(h)).toFixed(1)} us)`);
console.log(`ratio ${(median(z) / median(h)).toFixed(2)} (per-pass: ${z.map((x, i) => (x / h[i]).toFixed(2)).join(' ')})`);
process.exit(0);
