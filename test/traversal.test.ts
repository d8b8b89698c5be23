// traversal 'exact': the graph walk on the stored vectors themselves (no PQ table, no re-ranking),
// checked against brute force for every metric and storage, with filters, removals, in-place adds,
// worker threads, and queries too large for the scaled dot-product form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { loadSiftsmall } from './helpers/siftsmall.js';
import { Rng } from '../src/random.js';

const EXACT = { traversal: 'exact' } as const;

/** One search() per query, flat like a batch. */
function searchEach(index: ZGQIndex, queries: Float32Array, nq: number, dim: number, options: object): { ids: Uint32Array; distances: Float32Array } {
  const ids = new Uint32Array(nq * 10);
  const distances = new Float32Array(nq * 10);
  for (let i = 0; i < nq; i++) {
    const r = index.search(queries.subarray(i * dim, (i + 1) * dim), 10, options);
    ids.set(r.ids, i * 10);
    distances.set(r.distances, i * 10);
  }
  return { ids, distances };
}

test('siftsmall: the exact walk reaches recall 0.95, reports the distances PQ traversal reports, and matches on worker threads', async (t) => {
  const sift = await loadSiftsmall(t);
  if (!sift) return;
  const { base, queries, gt } = sift;
  const index = new ZGQIndex({ dim: base.dim });
  await index.build(base.data);
  const options = { ...EXACT, ef: 16, nProbe: 1 };
  const exact = searchEach(index, queries.data, queries.n, base.dim, options);
  const recall = recallAtK(exact.ids, gt.data, queries.n, 10, gt.dim);
  console.log(`# siftsmall exact walk ef 16 nProbe 1: recall@10 ${recall.toFixed(4)}`);
  assert.ok(recall >= 0.95, `recall@10 ${recall}`);
  // the same id gets the same distance from both traversals (both re-score the stored row)
  const pq = searchEach(index, queries.data, queries.n, base.dim, { ef: 64 });
  let shared = 0;
  for (let i = 0; i < exact.ids.length; i++) {
    const j = pq.ids.subarray(i - (i % 10), i - (i % 10) + 10).indexOf(exact.ids[i]);
    if (j < 0) continue;
    shared++;
    assert.equal(exact.distances[i], pq.distances[i - (i % 10) + j], `distance of id ${exact.ids[i]}`);
  }
  assert.ok(shared > 900);
  for (const threads of [1, 2]) {
    const batch = await index.searchBatch(queries.data, 10, { ...options, threads });
    assert.deepEqual(batch.ids, exact.ids, `searchBatch on ${threads} threads`);
    assert.deepEqual(batch.distances, exact.distances);
  }
});

for (const metric of ['l2', 'ip', 'cosine'] as const) {
  for (const storage of ['float16', 'float32'] as const) {
    test(`exact walk, metric ${metric}, ${storage} rows: recall against brute force, also through a filter and after removals`, async () => {
      const dim = 32;
      const ds = clusteredGaussian({ n: 5000, nQueries: 100, dim, seed: 21 });
      const truth = bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, dim, 10, metric);
      const index = new ZGQIndex({ dim, metric, storage, seed: 5 });
      await index.build(ds.base);
      const options = { ...EXACT, ef: 64, nProbe: 4 };
      const found = searchEach(index, ds.queries, ds.nQueries, dim, options);
      const recall = recallAtK(found.ids, truth.ids, ds.nQueries, 10, 10);
      assert.ok(recall >= 0.95, `${metric} ${storage} recall@10 ${recall}`);
      // distances as brute force gives them for the same id (binary16: within its precision)
      for (let i = 0; i < ds.nQueries * 10; i += 10) {
        const rank = Array.from(truth.ids.subarray(i, i + 10)).indexOf(found.ids[i]);
        if (rank < 0) continue;
        const want = truth.distances[i + rank];
        assert.ok(Math.abs(found.distances[i] - want) < 2e-3 * Math.max(1, Math.abs(want)), `query ${i / 10}: ${found.distances[i]} vs ${want}`);
      }

      // every third id, then the same after removing a fifth of them
      const allowed = Array.from({ length: ds.nBase }, (_, i) => i).filter((i) => i % 3 === 0);
      const removed = new Set(allowed.filter((_, j) => j % 5 === 0));
      const filteredTruth = (ids: number[]) => {
        const rows = new Float32Array(ids.length * dim);
        ids.forEach((id, j) => rows.set(ds.base.subarray(id * dim, (id + 1) * dim), j * dim));
        return Uint32Array.from(bruteForceKnn(rows, ids.length, ds.queries, ds.nQueries, dim, 10, metric).ids, (j) => ids[j]);
      };
      const filter = new Set(allowed);
      const viaFilter = searchEach(index, ds.queries, ds.nQueries, dim, { ...options, filter });
      assert.ok(viaFilter.ids.every((id) => filter.has(id)), 'only ids the filter admits');
      assert.ok(recallAtK(viaFilter.ids, filteredTruth(allowed), ds.nQueries, 10, 10) >= 0.9);
      index.remove([...removed]);
      const kept = allowed.filter((id) => !removed.has(id));
      const afterRemove = searchEach(index, ds.queries, ds.nQueries, dim, { ...options, filter });
      assert.ok(afterRemove.ids.every((id) => !removed.has(id)), 'removed ids never come back');
      assert.ok(recallAtK(afterRemove.ids, filteredTruth(kept), ds.nQueries, 10, 10) >= 0.9);
    });
  }
}

test('exact walk over every node is exact: queries within and beyond the scaled form, rows added in place', async () => {
  // small integers: binary16 holds them exactly, so brute force on the same values is the truth
  const dim = 16;
  const n = 600;
  const rng = new Rng(8);
  const base = Float32Array.from({ length: n * dim }, () => rng.int(21) - 10);
  const index = new ZGQIndex({ dim, zones: 6 });
  await index.build(base);
  // every zone scanned and a pool as large as the index: the walk must find the true k nearest
  const everything = { ...EXACT, ef: 2 * n, nProbe: 6, scan: 6, scanRatio: 1e30 };
  const expectExact = (rows: Float32Array, count: number, q: Float32Array, what: string) => {
    const truth = bruteForceKnn(rows, count, q, 1, dim, 10, 'l2');
    const got = index.search(q, 10, everything);
    // ties are common among small integers: compare the distances, each to within f32 rounding
    got.distances.forEach((d, i) => assert.ok(Math.abs(d - truth.distances[i]) <= 1e-6 * truth.distances[i], `${what}: rank ${i} ${d} vs ${truth.distances[i]}`));
  };
  for (let t = 0; t < 5; t++) {
    const q = Float32Array.from({ length: dim }, () => rng.int(21) - 10);
    expectExact(base, n, q, 'query within range');
    // |q| >= 32768 would overflow q * 2^112: the walk decodes rows in full instead
    expectExact(base, n, q.map((v) => v * 40000), 'query beyond the scaled form');
  }
  // rows added in place get their norms: far rows pointing the query's way must not look near
  // (the first add after a build lays the index out afresh; the second goes in place)
  const first = base.slice(0, dim);
  await index.add(first, [n]);
  const far = Float32Array.from({ length: 4 * dim }, (_, i) => (i % dim === 0 ? 400 : 0));
  const capacity = index.stats().capacity;
  await index.add(far, [n + 1, n + 2, n + 3, n + 4]);
  assert.equal(index.stats().capacity, capacity, 'added in place');
  const grown = new Float32Array((n + 5) * dim);
  grown.set(base);
  grown.set(first, n * dim);
  grown.set(far, (n + 1) * dim);
  for (let t = 0; t < 5; t++) {
    const q = Float32Array.from({ length: dim }, (_, i) => (i === 0 ? 10 : rng.int(21) - 10));
    expectExact(grown, n + 5, q, 'after an add in place');
  }
});

test('traversal as an index default: kept by toBytes / fromBytes, used by calls without options, overridden per call', async () => {
  const dim = 16;
  const ds = clusteredGaussian({ n: 3000, nQueries: 20, dim, seed: 9 });
  // a small walk, so that the two traversals return different neighbours for some queries
  const index = new ZGQIndex({ dim, search: { traversal: 'exact', ef: 10, nProbe: 1, scan: 0, rerank: 1 } });
  await index.build(ds.base);
  const loaded = ZGQIndex.fromBytes(index.toBytes());
  assert.equal(loaded.options.search.traversal, 'exact');
  let differ = 0;
  for (let i = 0; i < ds.nQueries; i++) {
    const q = ds.queries.subarray(i * dim, (i + 1) * dim);
    const byDefault = loaded.search(q, 10);
    assert.deepEqual(byDefault, index.search(q, 10, { traversal: 'exact' }));
    const pq = loaded.search(q, 10, { traversal: 'pq' });
    assert.deepEqual(pq, index.search(q, 10, { traversal: 'pq' }));
    if (JSON.stringify(pq) !== JSON.stringify(byDefault)) differ++;
  }
  assert.ok(differ > 0, 'the traversals differ on some query (else this test could not tell them apart)');
});
