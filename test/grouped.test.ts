// Batches whose zone scans are grouped by zone (assembly/grouped.ts) against the same queries
// searched one at a time: the rows that seed each walk are chosen on rounded integers, every
// distance the walk orders by and every distance returned are the exact ones, so nearly every query
// gets exactly its one-at-a-time result, and recall against brute force stays where it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZGQIndex, type Metric } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { groupTuning } from '../src/batch.js';

const K = 10;

/** One search() per query, flat like a batch. */
function searchEach(index: ZGQIndex, queries: Float32Array, dim: number, options: object): { ids: Uint32Array; distances: Float32Array } {
  const nq = queries.length / dim;
  const ids = new Uint32Array(nq * K);
  const distances = new Float32Array(nq * K);
  for (let i = 0; i < nq; i++) {
    const r = index.search(queries.subarray(i * dim, (i + 1) * dim), K, options);
    ids.set(r.ids, i * K);
    distances.set(r.distances, i * K);
  }
  return { ids, distances };
}

/** Slices searched with grouped zone scans so far (all lanes). */
function groupedSlices(index: ZGQIndex): number {
  return (index as unknown as { built: { lanes: { stats: { grouped: number } } } }).built.lanes.stats.grouped;
}

/** Queries whose k results differ from the reference's (ids or distances). */
function differing(a: { ids: Uint32Array; distances: Float32Array }, b: { ids: Uint32Array; distances: Float32Array }): number {
  let count = 0;
  for (let q = 0; q < a.ids.length / K; q++) {
    for (let j = 0; j < K; j++) {
      const i = q * K + j;
      if (a.ids[i] !== b.ids[i] || a.distances[i] !== b.distances[i]) {
        count++;
        break;
      }
    }
  }
  return count;
}

for (const [metric, dim] of [['l2', 64], ['ip', 64], ['l2', 100], ['cosine', 36]] as [Metric, number][]) {
  test(`grouped zone scans, ${metric}, ${dim} dimensions: the one-at-a-time results and recall, on 1 and 2 threads`, async () => {
    const ds = clusteredGaussian({ n: 6000, nQueries: 500, dim, seed: 7, outlierFraction: 0.3 });
    const index = new ZGQIndex({ dim, metric, seed: 3 });
    await index.build(ds.base);
    const options = { traversal: 'exact', ef: 16, nProbe: 6, scan: 6, scanRatio: 4 } as const;
    const alone = searchEach(index, ds.queries, dim, options);
    const truth = bruteForceKnn(ds.base, 6000, ds.queries, 500, dim, K, metric);
    for (const threads of [1, 2]) {
      const before = groupedSlices(index);
      const batch = await index.searchBatch(ds.queries, K, { ...options, threads });
      assert.ok(groupedSlices(index) > before, 'the batch went through grouped zone scans');
      const differ = differing(batch, alone);
      assert.ok(differ <= 5, `${differ} of 500 queries differ from their one-at-a-time results`);
      const recallBatch = recallAtK(batch.ids, truth.ids, 500, K, K);
      const recallAlone = recallAtK(alone.ids, truth.ids, 500, K, K);
      assert.ok(recallBatch >= recallAlone - 0.002, `recall ${recallBatch} against ${recallAlone} one at a time`);
      // every returned distance is the exact one: a result shared with the reference has its distance
      const exact = new Map<string, number>();
      for (let i = 0; i < alone.ids.length; i++) exact.set(`${Math.floor(i / K)}:${alone.ids[i]}`, alone.distances[i]);
      for (let i = 0; i < batch.ids.length; i++) {
        const d = exact.get(`${Math.floor(i / K)}:${batch.ids[i]}`);
        if (d !== undefined) assert.equal(batch.distances[i], d);
      }
    }
  });
}

test('grouped zone scans: queries too large for the scaled form, small batches, filters and float32 rows take the one-at-a-time path', async () => {
  const dim = 32;
  const ds = clusteredGaussian({ n: 4000, nQueries: 300, dim, seed: 11 });
  const index = new ZGQIndex({ dim, seed: 5 });
  await index.build(ds.base);
  const options = { traversal: 'exact', ef: 12, nProbe: 4, scan: 4, scanRatio: 8, threads: 1 } as const;
  // every 7th query scaled far up: it cannot be scaled for half rows and is searched alone, in the same slice
  const queries = ds.queries.slice();
  for (let q = 0; q < 300; q += 7) for (let d = 0; d < dim; d++) queries[q * dim + d] *= 1e5;
  const before = groupedSlices(index);
  const batch = await index.searchBatch(queries, K, options);
  assert.ok(groupedSlices(index) > before);
  const alone = searchEach(index, queries, dim, options);
  for (let q = 0; q < 300; q += 7) {
    assert.deepEqual(batch.ids.subarray(q * K, (q + 1) * K), alone.ids.subarray(q * K, (q + 1) * K), `query ${q}`);
  }
  assert.ok(differing(batch, alone) <= 3);
  // below the crossover (a handful of queries for 63 zones) and through a filter: not grouped
  const small = groupedSlices(index);
  await index.searchBatch(ds.queries.subarray(0, 4 * dim), K, options);
  await index.searchBatch(ds.queries, K, { ...options, filter: (id: number) => id % 2 === 0 });
  assert.equal(groupedSlices(index), small);
  // float32 rows: the exact walk without half rows is never grouped
  const float32 = new ZGQIndex({ dim, seed: 5, storage: 'float32' });
  await float32.build(ds.base);
  const f = groupedSlices(float32);
  const r = await float32.searchBatch(ds.queries, K, options);
  assert.equal(groupedSlices(float32), f);
  assert.equal(differing(r, searchEach(float32, ds.queries, dim, options)), 0);
});

test('grouped zone scans: the same results whether the batch is grouped or not, with groupTuning forcing each', async () => {
  const dim = 48;
  const ds = clusteredGaussian({ n: 5000, nQueries: 400, dim, seed: 13, outlierFraction: 0.3 });
  const index = new ZGQIndex({ dim, seed: 9 });
  await index.build(ds.base);
  const options = { traversal: 'exact', ef: 10, nProbe: 8, scan: 8, scanRatio: 100, threads: 2 } as const;
  const saved = groupTuning.minShare;
  try {
    groupTuning.minShare = Infinity;
    const plain = await index.searchBatch(ds.queries, K, options);
    groupTuning.minShare = 0;
    const grouped = await index.searchBatch(ds.queries, K, options);
    assert.ok(differing(plain, grouped) <= 4, `${differing(plain, grouped)} queries differ`);
  } finally {
    groupTuning.minShare = saved;
  }
});

test('grouped zone scans on 2 threads: back-to-back batches of other sizes and settings while workers still leave the last one', async () => {
  const dim = 32;
  const ds = clusteredGaussian({ n: 5000, nQueries: 700, dim, seed: 17, outlierFraction: 0.3 });
  const index = new ZGQIndex({ dim, seed: 2 });
  await index.build(ds.base);
  const settings = [
    { traversal: 'exact', ef: 10, nProbe: 8, scan: 8, scanRatio: 100 },
    { traversal: 'exact', ef: 24, nProbe: 3, scan: 3, scanRatio: 100 },
    { traversal: 'exact', ef: 12, nProbe: 16, scan: 16, scanRatio: 2 },
  ] as const;
  const sizes = [700, 130, 450, 64];
  const expected = new Map<string, Uint32Array>();
  for (const [s, o] of settings.entries()) {
    for (const n of sizes) expected.set(`${s}:${n}`, (await index.searchBatch(ds.queries.subarray(0, n * dim), K, { ...o, threads: 1 })).ids);
  }
  const { laneTuning } = await import('../src/lanes.js');
  const saved = laneTuning.stealAfterMs;
  laneTuning.stealAfterMs = -Infinity; // the calling thread takes every open slice at once: workers end up leaving batches late
  try {
    for (let round = 0; round < 12; round++) {
      for (const [s, o] of settings.entries()) {
        const n = sizes[(round + s) % sizes.length];
        const got = await index.searchBatch(ds.queries.subarray(0, n * dim), K, { ...o, threads: 2 });
        assert.deepEqual(got.ids, expected.get(`${s}:${n}`), `round ${round}, setting ${s}, ${n} queries`);
      }
    }
  } finally {
    laneTuning.stealAfterMs = saved;
  }
});

test('grouped zone scans after a save and load, and with rows appended in place past the zones', async () => {
  const dim = 40;
  const ds = clusteredGaussian({ n: 5000, nQueries: 400, dim, seed: 23, outlierFraction: 0.3 });
  const index = new ZGQIndex({ dim, seed: 4 });
  await index.build(ds.base.subarray(0, 4000 * dim));
  const options = { traversal: 'exact', ef: 14, nProbe: 6, scan: 6, scanRatio: 100, threads: 2 } as const;
  await index.searchBatch(ds.queries, K, options); // rounds the zoned rows
  // appended rows lie outside the zone ranges the grouped scans read: found by the walk, as one at a time
  await index.add(ds.base.subarray(4000 * dim), Uint32Array.from({ length: 1000 }, (_, i) => 4000 + i));
  const truth = bruteForceKnn(ds.base, 5000, ds.queries, 400, dim, K, 'l2');
  const before = groupedSlices(index);
  const batch = await index.searchBatch(ds.queries, K, options);
  assert.ok(groupedSlices(index) > before);
  const alone = searchEach(index, ds.queries, dim, options);
  assert.ok(differing(batch, alone) <= 4, `${differing(batch, alone)} queries differ after an add`);
  assert.ok(recallAtK(batch.ids, truth.ids, 400, K, K) >= recallAtK(alone.ids, truth.ids, 400, K, K) - 0.002);
  const loaded = ZGQIndex.fromBytes(index.toBytes());
  const again = await loaded.searchBatch(ds.queries, K, options);
  assert.ok(differing(again, searchEach(loaded, ds.queries, dim, options)) <= 4, 'after a load');
});

test('grouped zone scans: a batch aborted while the rows are being rounded leaves the next batches working', async () => {
  const { pacing } = await import('../src/pace.js');
  const dim = 32;
  const ds = clusteredGaussian({ n: 4000, nQueries: 300, dim, seed: 11 });
  const index = new ZGQIndex({ dim, seed: 5 });
  await index.build(ds.base);
  const options = { traversal: 'exact', ef: 12, nProbe: 4, scan: 4, scanRatio: 8, threads: 1 } as const;
  const saved = pacing.everyMs;
  pacing.everyMs = 0; // a turn of the event loop, and an abort check, before every step
  try {
    const controller = new AbortController();
    const aborted = index.searchBatch(ds.queries, K, { ...options, signal: controller.signal });
    controller.abort('stop');
    await assert.rejects(aborted, /abort/i);
  } finally {
    pacing.everyMs = saved;
  }
  const before = groupedSlices(index);
  const batch = await index.searchBatch(ds.queries, K, options);
  assert.ok(groupedSlices(index) > before, 'grouped once the rounding is complete');
  assert.ok(differing(batch, searchEach(index, ds.queries, dim, options)) <= 3);
});
