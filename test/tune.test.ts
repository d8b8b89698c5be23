/**
 * Recall on request: the 'scan' traversal against brute force over the stored rows, the defaults
 * calibrated at build on data with no structure, tune() and targetRecall, what is saved, and the
 * refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZGQIndex, type SearchOptions } from '../src/index.js';
import { randomSphere, clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn } from '../src/data/groundtruth.js';
import { decodeContainer } from '../src/format.js';
import { expectCode, expectCodeAsync } from './helpers/expect.js';
import { calibrateSearch, calibration, type TuneTarget } from '../src/tune.js';
import { DEFAULT_SEARCH, resolveSearch } from '../src/options.js';

const K = 10;

/** recall@K of a batch against exact ids. */
async function recallOf(index: ZGQIndex, queries: Float32Array, nq: number, truth: Uint32Array, options?: SearchOptions): Promise<number> {
  const r = await index.searchBatch(queries, K, { ...options, threads: 1 });
  let hits = 0;
  for (let q = 0; q < nq; q++) {
    const t = new Set(truth.subarray(q * K, (q + 1) * K));
    for (let i = 0; i < K; i++) if (t.has(r.ids[q * K + i])) hits++;
  }
  return hits / (nq * K);
}

/** The index's stored rows (binary16-rounded by default), by id 0..n-1. */
function storedRows(index: ZGQIndex, n: number, dim: number): Float32Array {
  const rows = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) rows.set(index.get(i)!, i * dim);
  return rows;
}

test("traversal 'scan' is brute force over the stored rows: float16 and float32, filters, removals, batches", async () => {
  const dim = 24;
  const ds = clusteredGaussian({ n: 3000, nQueries: 40, dim, seed: 11 });
  for (const storage of ['float16', 'float32'] as const) {
    const index = new ZGQIndex({ dim, seed: 1, storage });
    await index.build(ds.base, { threads: 1 });
    const rows = storedRows(index, 3000, dim);
    index.remove([3, 50, 700]);
    const allowed = (id: number) => id % 3 !== 0 && id !== 3 && id !== 50 && id !== 700;
    const batch = await index.searchBatch(ds.queries, K, { traversal: 'scan', threads: 1 });
    for (let q = 0; q < ds.nQueries; q++) {
      const query = ds.queries.subarray(q * dim, (q + 1) * dim);
      for (const filter of [undefined, (id: number) => id % 3 !== 0]) {
        const keep = filter ? allowed : (id: number) => id !== 3 && id !== 50 && id !== 700;
        const ids = Array.from({ length: 3000 }, (_, i) => i).filter(keep);
        const base = new Float32Array(ids.length * dim);
        ids.forEach((id, i) => base.set(rows.subarray(id * dim, (id + 1) * dim), i * dim));
        const exact = bruteForceKnn(base, ids.length, query, 1, dim, K);
        const got = index.search(query, K, { traversal: 'scan', filter });
        assert.deepEqual(Array.from(got.ids), Array.from(exact.ids, (i) => ids[i]), `${storage} query ${q} filter ${!!filter}`);
        for (let i = 0; i < K; i++) assert.ok(Math.abs(got.distances[i] - exact.distances[i]) <= 1e-4 * Math.max(1, exact.distances[i]));
      }
      assert.deepEqual(Array.from(batch.ids.subarray(q * K, (q + 1) * K)), Array.from(index.search(query, K, { traversal: 'scan' }).ids));
    }
  }
});

test('build calibrates the defaults on data with no structure: recall@10 >= 0.95 on held-out queries, the same on any thread count', async () => {
  const dim = 96;
  const ds = randomSphere({ n: 10000, nQueries: 200, dim, seed: 2 });
  const truth = bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, dim, K).ids;
  const phases: string[] = [];
  const one = new ZGQIndex({ dim, seed: 5 });
  await one.build(ds.base, { threads: 1, onProgress: (phase) => phases.at(-1) !== phase && phases.push(phase) });
  assert.deepEqual(phases, ['zones', 'pq', 'graph', 'tune', 'done']);
  // the static defaults (ef 64 on PQ codes) fall short here; the calibrated ones do not
  const fixedDefaults = await recallOf(one, ds.queries, ds.nQueries, truth, { ef: 64, traversal: 'pq' });
  const calibrated = await recallOf(one, ds.queries, ds.nQueries, truth);
  console.log(`# static defaults ${fixedDefaults}, calibrated ${calibrated}`);
  assert.ok(fixedDefaults < 0.95, `the static defaults reach ${fixedDefaults}`);
  assert.ok(calibrated >= 0.95, `recall@10 at the calibrated defaults: ${calibrated}`);
  const two = new ZGQIndex({ dim, seed: 5 });
  await two.build(ds.base, { threads: 2 });
  assert.deepEqual(two.toBytes(), one.toBytes(), 'calibration is decided on recall alone');
  // saved with the index
  const again = ZGQIndex.fromBytes(one.toBytes());
  assert.deepEqual(await recallOf(again, ds.queries, ds.nQueries, truth), calibrated);
  // options the caller fixed are kept
  const fixed = new ZGQIndex({ dim, seed: 5, search: { ef: 32 } });
  await fixed.build(ds.base, { threads: 1 });
  assert.ok((await recallOf(fixed, ds.queries, ds.nQueries, truth)) < fixedDefaults);
});

test('tune({ recall }) picks options reaching the target on real queries and makes them the defaults; scan defaults are saved as a required feature', async () => {
  const dim = 32;
  const ds = randomSphere({ n: 5000, nQueries: 200, dim, seed: 3 });
  const truth = bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, dim, K).ids;
  const index = new ZGQIndex({ dim, seed: 1, search: { ef: 16 } });
  await index.build(ds.base, { threads: 1 });
  assert.ok((await recallOf(index, ds.queries, ds.nQueries, truth)) < 0.9, 'the fixed ef 16 falls short');
  const fractions: number[] = [];
  const rerank = index.options.search.rerank;
  const report = await index.tune({ recall: 0.97, queries: 200, onProgress: (f) => fractions.push(f) });
  assert.equal(report.reached, true);
  assert.ok(report.recall >= 0.97 && report.qps > 0);
  assert.deepEqual([report.target, report.k, report.queries], [0.97, 10, 200]);
  assert.ok(report.tried.some((t) => t.search.traversal === 'pq') && report.tried.some((t) => t.search.traversal === 'scan'));
  // the PQ walk is tried at the default re-rank depth and at 4x it
  assert.deepEqual([...new Set(report.tried.filter((t) => t.search.traversal === 'pq').map((t) => t.search.rerank))].sort((a, b) => a - b), [rerank, 4 * rerank]);
  assert.ok(fractions.length > 3 && fractions.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= fractions[i - 1])));
  const real = await recallOf(index, ds.queries, ds.nQueries, truth);
  assert.ok(real >= 0.95, `recall@10 of held-out queries at the tuned defaults: ${real} (sample: ${report.recall})`);
  const loaded = ZGQIndex.fromBytes(index.toBytes());
  assert.deepEqual(await recallOf(loaded, ds.queries, ds.nQueries, truth), real);

  const scanning = new ZGQIndex({ dim, seed: 1, search: { traversal: 'scan' } });
  await scanning.build(ds.base, { threads: 1 });
  assert.deepEqual(decodeContainer(scanning.toBytes()).meta.requires, ['scan-traversal']);
  assert.equal(await recallOf(ZGQIndex.fromBytes(scanning.toBytes()), ds.queries, ds.nQueries, truth), 1);
});

test('tune and targetRecall refuse bad targets, small and unbuilt indexes', async () => {
  const dim = 8;
  const ds = clusteredGaussian({ n: 500, nQueries: 1, dim, seed: 4 });
  const index = new ZGQIndex({ dim, seed: 1 });
  await expectCodeAsync(() => index.tune({ recall: 0.9 }), 'NOT_BUILT');
  for (const recall of [0, -0.5, 1.5, NaN, '0.9' as unknown as number]) {
    await expectCodeAsync(() => index.build(ds.base, { targetRecall: recall }), 'INVALID_ARGUMENT', /targetRecall must be a number in \(0, 1\]/);
  }
  await index.build(ds.base, { threads: 1, targetRecall: 0.9 });
  for (const recall of [0, 1.01, NaN]) await expectCodeAsync(() => index.tune({ recall }), 'INVALID_ARGUMENT', /recall must be a number in \(0, 1\]/);
  await expectCodeAsync(() => index.tune({ recall: 0.9, k: 0 }), 'INVALID_ARGUMENT', /k must be an integer/);
  await expectCodeAsync(() => index.tune({ recall: 0.9, queries: 2.5 }), 'INVALID_ARGUMENT', /queries must be a positive integer/);
  await expectCodeAsync(() => index.tune({ recall: 0.9, k: 499 }), 'EMPTY_INPUT', /more than k \+ 1 = 500 vectors/);
  // removed vectors are neither queries nor answers of the sample
  index.remove(Array.from({ length: 200 }, (_, i) => i * 2));
  const afterRemoval = await index.tune({ recall: 0.9, queries: 250 });
  assert.equal(afterRemoval.queries, 250);
  assert.ok(afterRemoval.reached && afterRemoval.recall >= 0.9);
  const aborted = new AbortController();
  aborted.abort();
  const before = index.toBytes();
  await expectCodeAsync(() => index.tune({ recall: 0.99, signal: aborted.signal }), 'ABORTED');
  assert.deepEqual(index.toBytes(), before, 'an aborted tune leaves the defaults');
  expectCode(() => index.search(ds.base.subarray(0, dim), 5, { traversal: 'walk' as never }), 'INVALID_ARGUMENT', /'pq', 'exact', 'scan' or 'fastscan'/);
});

test("traversal 'fastscan': recall on data with no structure, exact with filters and removals, codes follow adds", async () => {
  const dim = 40;
  const ds = randomSphere({ n: 8000, nQueries: 100, dim, seed: 6 });
  const truth = bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, dim, K).ids;
  const index = new ZGQIndex({ dim, seed: 2 });
  await index.build(ds.base, { threads: 1 });
  const shallow = await recallOf(index, ds.queries, ds.nQueries, truth, { traversal: 'fastscan', rerank: 2 });
  const deep = await recallOf(index, ds.queries, ds.nQueries, truth, { traversal: 'fastscan', rerank: 64 });
  assert.ok(shallow < deep && deep >= 0.98, `recall@10 at rerank 2: ${shallow}, at 64: ${deep}`);
  // single searches and batches agree
  const batch = await index.searchBatch(ds.queries, K, { traversal: 'fastscan', rerank: 16, threads: 2 });
  for (let q = 0; q < 10; q++) {
    const one = index.search(ds.queries.subarray(q * dim, (q + 1) * dim), K, { traversal: 'fastscan', rerank: 16 });
    assert.deepEqual(Array.from(batch.ids.subarray(q * K, (q + 1) * K)), Array.from(one.ids));
  }
  // through a filter the scan is exact
  const filter = (id: number) => id % 5 !== 0;
  for (let q = 0; q < 10; q++) {
    const query = ds.queries.subarray(q * dim, (q + 1) * dim);
    assert.deepEqual(index.search(query, K, { traversal: 'fastscan', filter }).ids, index.search(query, K, { traversal: 'scan', filter }).ids);
  }
  // vectors added after the codes were made are found: the codes are made again
  const extra = randomSphere({ n: 50, nQueries: 0, dim, seed: 99 }).base;
  await index.add(extra, Array.from({ length: 50 }, (_, i) => 100_000 + i));
  for (let i = 0; i < 50; i += 7) {
    assert.equal(index.search(extra.subarray(i * dim, (i + 1) * dim), K, { traversal: 'fastscan', rerank: 8 }).ids[0], 100_000 + i);
  }
  // and after removals, exact
  index.remove([1, 2, 3]);
  const query = ds.queries.subarray(0, dim);
  assert.deepEqual(index.search(query, K, { traversal: 'fastscan' }).ids, index.search(query, K, { traversal: 'scan' }).ids);
});

test("'fastscan' answers the same whatever was searched before (its candidate buffer's history)", async () => {
  // few subquantizers and no re-rank depth: many rows tie at the cut, and the cut is the answer
  const dim = 8;
  const ds = randomSphere({ n: 4000, nQueries: 30, dim, seed: 8 });
  const a = new ZGQIndex({ dim, seed: 3 });
  await a.build(ds.base, { threads: 1 });
  const b = ZGQIndex.fromBytes(a.toBytes());
  // a has searched deep first (a large candidate buffer), b has not
  a.search(ds.queries.subarray(0, dim), K, { traversal: 'fastscan', rerank: 256 });
  for (let q = 0; q < ds.nQueries; q++) {
    const query = ds.queries.subarray(q * dim, (q + 1) * dim);
    assert.deepEqual(a.search(query, K, { traversal: 'fastscan', rerank: 1 }), b.search(query, K, { traversal: 'fastscan', rerank: 1 }), `query ${q}`);
  }
});

test('calibration keeps the walk that came nearest instead of the scan above calibration.scanMax vectors', async () => {
  // a stand-in index: the scan is exact; every walk misses the last 4 of 10 neighbours below ef 40
  // and the last 2 from there on, so no walk reaches the target
  const k = 10;
  const target: TuneTarget = {
    size: 1000,
    seed: 1,
    defaults: resolveSearch({ ef: 16, traversal: 'pq' }, DEFAULT_SEARCH),
    sample: (count) => ({
      ids: Uint32Array.from({ length: count }, (_, q) => q),
      search: (q, n, o) => {
        const wrong = o.traversal === 'scan' ? 0 : (o.ef ?? 0) < 40 ? 4 : 2;
        const ids = Uint32Array.from({ length: n }, (_, r) => (r >= n - wrong ? 900_000 + r : 10_000 + q * 100 + r));
        const distances = Float32Array.from({ length: n }, (_, r) => (r >= n - wrong ? 1000 + r : r));
        return { ids, distances };
      },
    }),
  };
  const small = await calibrateSearch(target, { recall: 0.96, k, queries: 20 });
  assert.equal(small.traversal, 'scan');
  const scanMax = calibration.scanMax;
  calibration.scanMax = 999;
  try {
    const large = await calibrateSearch(target, { recall: 0.96, k, queries: 20 });
    assert.deepEqual([large.traversal, large.ef], ['pq', 40]);
  } finally {
    calibration.scanMax = scanMax;
  }
});
