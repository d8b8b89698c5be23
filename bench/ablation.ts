// Each optimisation's effect on recall@10 and single-thread QPS, one index option toggled at a
// time against the defaults, in one process (ratios are what to read on a shared machine).
// Usage: node --import tsx bench/ablation.ts [synthetic-100k|siftsmall]
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ZGQIndex, type SearchOptions, type ZGQOptions } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { readFvecs, readIvecs } from '../src/data/vecs.js';

const which = process.argv[2] ?? 'synthetic-100k';
let base: Float32Array, queries: Float32Array, truth: Uint32Array | Int32Array, stride: number;
const dim = 128;
if (which === 'siftsmall') {
  const dir = fileURLToPath(new URL('../../shared/data/siftsmall/', import.meta.url));
  if (!existsSync(dir)) throw new Error(`siftsmall not found at ${dir}`);
  base = (await readFvecs(dir + 'siftsmall_base.fvecs')).data;
  queries = (await readFvecs(dir + 'siftsmall_query.fvecs')).data;
  const gt = await readIvecs(dir + 'siftsmall_groundtruth.ivecs');
  [truth, stride] = [gt.data, gt.dim];
} else {
  const ds = clusteredGaussian({ n: 100000, nQueries: 1000, dim, seed: 1, outlierFraction: 0.3 });
  [base, queries] = [ds.base, ds.queries];
  [truth, stride] = [bruteForceKnn(base, ds.nBase, queries, ds.nQueries, dim, 10, 'l2').ids, 10];
}
const nq = queries.length / dim;
const passes = nq < 500 ? 15 : 5;

const variants: [string, Partial<ZGQOptions>, SearchOptions][] = [
  ['defaults', {}, {}],
  ['no zone scans (graph walk only)', {}, { scan: 0 }],
  ['no zone scans, ef = 256', {}, { scan: 0, ef: 256 }],
  ['plain PQ instead of residual PQ', { residual: false }, {}],
  ['float32 re-ranking vectors', { storage: 'float32' }, {}],
  ['random insertion order (graph: unified)', { graph: 'unified' }, {}],
  ['exact zone selection (no tree)', {}, {}],
  ['rerank 4 instead of 8', {}, { rerank: 4 }],
];

console.log(`# ${which}: ${base.length / dim} x ${dim}, ${nq} queries, k = 10, QPS = median of ${passes} passes, one query per call, one thread`);
console.log('| variant | build s | recall@10 | QPS | memory MB |');
console.log('| --- | ---: | ---: | ---: | ---: |');
const built = new Map<string, { index: ZGQIndex; buildS: number }>();
for (const [name, indexOptions, search] of variants) {
  const key = JSON.stringify(indexOptions);
  if (!built.has(key)) {
    const index = new ZGQIndex({ dim, ...indexOptions });
    const t = performance.now();
    await index.build(base, { threads: 1 });
    built.set(key, { index, buildS: (performance.now() - t) / 1000 });
  }
  const { index, buildS } = built.get(key)!;
  const searcher = (index as unknown as { built: { searcher: { exactZones: boolean } } }).built.searcher;
  searcher.exactZones = name.startsWith('exact zone selection');
  const ids = new Uint32Array(nq * 10);
  const times: number[] = [];
  for (let pass = 0; pass <= passes; pass++) {
    const t = performance.now();
    for (let q = 0; q < nq; q++) ids.set(index.search(queries.subarray(q * dim, (q + 1) * dim), 10, search).ids, q * 10);
    if (pass > 0) times.push(performance.now() - t);
  }
  searcher.exactZones = false;
  times.sort((a, b) => a - b);
  const qps = Math.round((nq / times[times.length >> 1]) * 1000);
  const mb = (index.stats().memory.total / 1048576).toFixed(1);
  console.log(`| ${name} | ${buildS.toFixed(1)} | ${recallAtK(ids, truth, nq, 10, stride).toFixed(4)} | ${qps} | ${mb} |`);
}
