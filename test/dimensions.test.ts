/**
 * The common embedding sizes (768, 1536, 3072), cosine, at the defaults: build, recall@10 of
 * queries from outside the index against brute force, and a save/load round trip that answers the
 * same. The memory per vector printed here is the README's table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZGQIndex } from '../src/index.js';
import { embeddingLike } from '../src/data/synthetic.js';
import { bruteForceKnn } from '../src/data/groundtruth.js';

const K = 10;

for (const dim of [768, 1536, 3072]) {
  test(`${dim} dimensions, cosine, defaults: recall@10 >= 0.95 and a round trip`, async () => {
    const n = 3000;
    const nq = 50;
    const ds = embeddingLike({ n, nQueries: nq, dim, seed: dim });
    const index = new ZGQIndex({ dim, metric: 'cosine' });
    await index.build(ds.base, { threads: 2 });
    const truth = bruteForceKnn(ds.base, n, ds.queries, nq, dim, K, 'cosine').ids;
    const got = await index.searchBatch(ds.queries, K);
    let hits = 0;
    for (let q = 0; q < nq; q++) {
      const t = new Set(truth.subarray(q * K, (q + 1) * K));
      for (let i = 0; i < K; i++) if (t.has(got.ids[q * K + i])) hits++;
    }
    const recall = hits / (nq * K);
    const s = index.stats();
    const perVector = (s.memory.vectors + s.memory.codes + s.memory.graph + s.memory.ids) / s.capacity;
    console.log(`# ${dim}: recall@10 ${recall.toFixed(3)}, ${s.pqSubspaces} PQ bytes, ${Math.round(perVector)} bytes per vector (${JSON.stringify(s.memory)})`);
    assert.ok(recall >= 0.95, `recall@10 ${recall}`);
    const again = ZGQIndex.fromBytes(index.toBytes());
    const same = await again.searchBatch(ds.queries, K);
    assert.deepEqual(same.ids, got.ids);
    assert.deepEqual(same.distances, got.distances);
  });
}
