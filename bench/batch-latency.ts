// Latency of searchBatch calls on one and on two threads, back to back, in one process: p50 / p90 /
// p99 / max per call and the ratio of mean throughputs. The tail is where a worker thread whose core
// the machine takes away mid-batch shows.
//   node --import tsx bench/batch-latency.ts [bench dataset, default siftsmall] [batch size, default 100] [search options JSON] [rounds]
// Each round runs 50 calls on one thread, then 50 on two; the batch is the dataset's queries,
// repeated or cut to the batch size.
import { ZGQIndex } from '../src/index.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';

const [which = 'siftsmall', sizeArg = '100', optionsJson = '{"ef":20,"nProbe":1,"rerank":2}', roundsArg = '40'] = process.argv.slice(2);
const ds = await loadDataset(datasetSpec(which), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: 10 });
const { dim, base, queries: queryData } = ds;
const nq = queryData.length / dim;
const size = Number(sizeArg);
const batch = new Float32Array(size * dim);
for (let i = 0; i < size; i++) batch.set(queryData.subarray((i % nq) * dim, ((i % nq) + 1) * dim), i * dim);
const options = JSON.parse(optionsJson) as Record<string, number>;
const index = new ZGQIndex({ dim });
await index.build(base);
await index.searchBatch(batch, 10, { ...options, threads: 2 }); // start the worker
const micros: Record<number, number[]> = { 1: [], 2: [] };
for (let round = 0; round < Number(roundsArg); round++) {
  for (const threads of [1, 2]) {
    for (let call = 0; call < 50; call++) {
      const start = performance.now();
      await index.searchBatch(batch, 10, { ...options, threads });
      micros[threads].push((performance.now() - start) * 1000);
    }
  }
}
const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))];
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
console.log(`${which}: batches of ${size} ${JSON.stringify(options)}, ${micros[1].length} calls per thread count`);
for (const threads of [1, 2]) {
  const m = micros[threads];
  const cells = [0.5, 0.9, 0.99].map((q) => quantile(m, q).toFixed(0)).join(' / ');
  console.log(`${threads} thread${threads > 1 ? 's' : ''}: p50 / p90 / p99 ${cells} µs, max ${Math.max(...m).toFixed(0)} µs, mean ${(sum(m) / m.length).toFixed(0)} µs`);
}
console.log(`2 threads over 1 (mean throughput): ${(sum(micros[1]) / sum(micros[2])).toFixed(2)}×`);
process.exit(0);
