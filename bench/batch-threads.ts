// searchBatch on one and on two threads over the same queries, in one process: QPS of each and
// the ratio (medians of alternating passes), with the results checked identical. `--shards N`
// builds the index in N shards (each batch then runs shard by shard).
//   node --import tsx bench/batch-threads.ts [siftsmall | synthetic] [passes] [batch size, default 5000 / 10000] [search options as JSON] [--shards N]
import { fileURLToPath } from 'node:url';
import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { readFvecs } from '../src/data/vecs.js';
import { median } from '../src/bench/metrics.js';

const shardsAt = process.argv.indexOf('--shards');
const shards = shardsAt > 0 ? Number(process.argv[shardsAt + 1]) : 1;
const args = shardsAt > 0 ? process.argv.filter((_, i) => i !== shardsAt && i !== shardsAt + 1) : process.argv;
const which = args[2] ?? 'synthetic';
const passes = Number(args[3] ?? 7);
const batchSize = Number(args[4] ?? (which === 'siftsmall' ? 5000 : 10000));
const searchOptions = JSON.parse(args[5] ?? '{}') as Record<string, number>;
let base: Float32Array;
let queries: Float32Array;
let dim: number;
if (which === 'siftsmall') {
  const dir = fileURLToPath(new URL('../../shared/data/siftsmall/', import.meta.url));
  const b = await readFvecs(dir + 'siftsmall_base.fvecs');
  const q = await readFvecs(dir + 'siftsmall_query.fvecs');
  dim = b.dim;
  base = b.data;
  // the 100 SIFT queries, repeated to the batch size
  queries = new Float32Array(batchSize * dim);
  for (let i = 0; i < batchSize; i++) queries.set(q.data.subarray((i % q.n) * dim, (i % q.n + 1) * dim), i * dim);
} else {
  const ds = clusteredGaussian({ n: 100000, nQueries: batchSize, dim: 128, seed: 42 });
  ({ base, queries } = ds);
  dim = 128;
}
const index = new ZGQIndex({ dim });
await index.build(base, { shards });
const nq = queries.length / dim;
const qps: Record<number, number[]> = { 1: [], 2: [] };
let reference: Uint32Array | undefined;
await index.searchBatch(queries, 10, { ...searchOptions, threads: 2 }); // warm the workers
// a pass searches at least 1,000 queries, a small batch back to back as often as needed (as the bench does)
const repeat = Math.max(1, Math.ceil(1000 / nq));
for (let p = 0; p < passes; p++) {
  for (const threads of [1, 2]) {
    const t = performance.now();
    for (let r = 0; r < repeat; r++) {
      const { ids } = await index.searchBatch(queries, 10, { ...searchOptions, threads });
      if (!reference) reference = ids;
      else if (ids.some((id, i) => id !== reference![i])) throw new Error('thread counts disagree');
    }
    qps[threads].push((repeat * nq) / ((performance.now() - t) / 1000));
  }
}
console.log(`${which}${shards > 1 ? ` in ${shards} shards` : ''}: ${nq} queries ${JSON.stringify(searchOptions)}, ${passes} passes of ${repeat} batches: 1 thread ${median(qps[1]).toFixed(0)} QPS, 2 threads ${median(qps[2]).toFixed(0)} QPS, ratio ${(median(qps[2]) / median(qps[1])).toFixed(2)}`);
const ratios = qps[1].map((q1, i) => qps[2][i] / q1);
console.log(`per-pass ratios: ${ratios.map((r) => r.toFixed(2)).join(' ')}`);
process.exit(0);
