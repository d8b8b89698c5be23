// A worker of PaperHnsw.searchBatch (bench/paper/hnsw.ts): loads the index file, converts its share
// of the queries once, then searches the share on each { op: 'run', ef } into the shared ids.
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const { HierarchicalNSW } = createRequire(import.meta.url)('hnswlib-node');
const { file, dim, k, queries, from, out } = workerData;
const index = new HierarchicalNSW('l2', dim);
index.readIndexSync(file);
const rows = [];
for (let q = 0; q < queries.length / dim; q++) rows.push(Array.from(queries.subarray(q * dim, (q + 1) * dim)));
const ids = new Uint32Array(out);
parentPort.on('message', ({ ef }) => {
  index.setEf(ef);
  for (let q = 0; q < rows.length; q++) {
    const got = index.searchKnn(rows[q], k).neighbors;
    for (let j = 0; j < k; j++) ids[(from + q) * k + j] = j < got.length ? got[j] : 0xffffffff;
  }
  parentPort.postMessage('done');
});
parentPort.postMessage('ready');
