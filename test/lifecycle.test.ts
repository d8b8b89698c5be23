// An index's life from empty: adds before there is anything to train on (searched exactly), the
// training once enough have come, mutations applied in the order they are called whether awaited
// or not, k = 0, and ids of the wrong type named with their type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_ID, ZGQError, ZGQIndex } from '../src/index.js';
import { TRAIN_AT } from '../src/staging.js';
import { expectCode, expectCodeAsync } from './helpers/expect.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';

const DIM = 16;
const N = TRAIN_AT + 1500;
const ds = clusteredGaussian({ n: N, nQueries: 50, dim: DIM, seed: 21 });
const rows = (from: number, to: number) => ds.base.slice(from * DIM, to * DIM);
const range = (from: number, to: number) => Uint32Array.from({ length: to - from }, (_, i) => from + i);


for (const metric of ['l2', 'cosine'] as const) {
  test(`an empty index grows by add(), answers exactly until it trains, then as a built one (${metric})`, async () => {
    const index = new ZGQIndex({ dim: DIM, metric, seed: 3 });
    assert.equal(index.size, 0);
    const empty = index.search(ds.queries.subarray(0, DIM), 5);
    assert.deepEqual([...empty.ids], Array(5).fill(NO_ID));

    await index.add(rows(0, 300), range(0, 300));
    index.remove([7, 8]);
    assert.equal(index.size, 298);
    assert.equal(index.has(7), false);
    expectCode(() => index.stats(), 'NOT_BUILT', /298 vectors are staged/);
    const kept = [...range(0, 300)].filter((id) => id !== 7 && id !== 8);
    const keptRows = new Float32Array(kept.length * DIM);
    kept.forEach((id, i) => keptRows.set(ds.base.subarray(id * DIM, (id + 1) * DIM), i * DIM));
    const truth = bruteForceKnn(keptRows, kept.length, ds.queries, 50, DIM, 10, metric);
    const batch = await index.searchBatch(ds.queries, 10);
    for (let q = 0; q < 50; q++) {
      const one = index.search(ds.queries.subarray(q * DIM, (q + 1) * DIM), 10);
      assert.deepEqual(one.ids, batch.ids.subarray(q * 10, q * 10 + 10));
      for (let i = 0; i < 10; i++) {
        assert.equal(one.ids[i], kept[truth.ids[q * 10 + i]], `query ${q} rank ${i}`);
        assert.ok(Math.abs(one.distances[i] - truth.distances[q * 10 + i]) <= 1e-4 * Math.max(1, truth.distances[q * 10 + i]));
      }
    }
    // filters apply before training too
    const odd = index.search(ds.queries.subarray(0, DIM), 10, { filter: (id) => id % 2 === 1 });
    assert.ok([...odd.ids].every((id) => id % 2 === 1));

    // enough vectors: zones and codebooks are trained on everything staged, once
    await index.add(rows(300, N), range(300, N));
    const stats = index.stats();
    assert.equal(stats.size, N - 2);
    assert.ok(stats.zones > 1);
    const all = [...range(0, N)].filter((id) => id !== 7 && id !== 8);
    const allRows = new Float32Array(all.length * DIM);
    all.forEach((id, i) => allRows.set(ds.base.subarray(id * DIM, (id + 1) * DIM), i * DIM));
    const t = bruteForceKnn(allRows, all.length, ds.queries, 50, DIM, 10, metric);
    const got = await index.searchBatch(ds.queries, 10);
    assert.ok(recallAtK(got.ids, Uint32Array.from(t.ids, (i) => all[i]), 50, 10) >= 0.95);
  });
}

test('save() of an index not trained yet trains it on what it holds, and the file answers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-grow-'));
  try {
    const index = new ZGQIndex({ dim: DIM, seed: 3 });
    await index.add(rows(0, 60), range(0, 60));
    await index.save(join(dir, 'small.zgq'));
    const loaded = await ZGQIndex.load(join(dir, 'small.zgq'));
    assert.equal(loaded.size, 60);
    for (let i = 0; i < 60; i += 7) assert.equal(loaded.search(ds.base.subarray(i * DIM, (i + 1) * DIM), 1).ids[0], i);
    // saving an empty index is refused, and writes nothing
    await assert.rejects(new ZGQIndex({ dim: DIM }).save(join(dir, 'empty.zgq')), (e: unknown) => e instanceof ZGQError && e.code === 'NOT_BUILT');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a remove called while an add is pending applies after that add (in place, re-laid out, staged)', async () => {
  const built = new ZGQIndex({ dim: DIM, seed: 3 });
  await built.build(rows(0, 3000));
  // the first add after a build lays the index out afresh; the second goes in place
  for (const from of [3000, 3003]) {
    const p = built.add(rows(from, from + 3), range(from, from + 3));
    assert.equal(built.remove([from + 1]), 1);
    await p;
    assert.equal(built.has(from), true);
    assert.equal(built.has(from + 1), false);
    assert.notEqual(built.search(ds.base.subarray((from + 1) * DIM, (from + 2) * DIM), 1).ids[0], from + 1);
  }
  // an id both indexed and re-added by the pending add: counted once, gone after it
  const replaced = built.add(rows(10, 11), [5]);
  assert.equal(built.remove([5]), 1);
  await replaced;
  assert.equal(built.has(5), false);

  const staged = new ZGQIndex({ dim: DIM, seed: 3 });
  const p = staged.add(rows(0, 3), [7001, 7002, 7003]);
  assert.equal(staged.remove([7002]), 1);
  await p;
  assert.deepEqual([7001, 7002, 7003].map((id) => staged.has(id)), [true, false, true]);

  // build not awaited, then add, then remove: each after the one before
  const fresh = new ZGQIndex({ dim: DIM, seed: 3 });
  const b = fresh.build(rows(0, 2000));
  const a = fresh.add(rows(2000, 2010), range(2000, 2010));
  assert.equal(fresh.remove([1, 2005]), 2);
  await Promise.all([b, a]);
  assert.deepEqual([0, 1, 2004, 2005].map((id) => fresh.has(id)), [true, false, true, false]);
  assert.equal(fresh.size, 2008);
});

test('k = 0 gives empty results; ids of the wrong type are named with their type', async () => {
  const index = new ZGQIndex({ dim: DIM, seed: 3 });
  await index.build(rows(0, 500));
  assert.equal(index.search(ds.queries.subarray(0, DIM), 0).ids.length, 0);
  const batch = await index.searchBatch(ds.queries, 0);
  assert.equal(batch.ids.length, 0);
  assert.equal(batch.nq, 50);
  // a bad query is still refused with k = 0
  expectCode(() => index.search(new Float32Array(DIM).fill(NaN), 0), 'NOT_FINITE');
  await assert.rejects(index.add(rows(0, 1), ['5' as unknown as number]), (e: unknown) => e instanceof ZGQError && e.code === 'INVALID_ARGUMENT' && /"5" \(a string\)/.test(e.message));
  await assert.rejects(index.add(rows(0, 1), [5n as unknown as number]), (e: unknown) => e instanceof ZGQError && /5n \(a bigint\)/.test(e.message));
  expectCode(() => index.remove(['5' as unknown as number]), 'INVALID_ARGUMENT', /"5" \(a string\)/);
  expectCode(() => index.search(ds.queries.subarray(0, DIM), 2.5), 'INVALID_ARGUMENT', /got 2\.5/);
});

test("searchBatch with invalidQueries 'skip' answers the valid queries and names the others", async () => {
  const index = new ZGQIndex({ dim: DIM, metric: 'cosine', seed: 3 });
  await index.build(rows(0, 2000));
  const queries = ds.queries.slice(0, 6 * DIM);
  queries[2 * DIM + 3] = NaN;
  queries.fill(0, 4 * DIM, 5 * DIM);
  await assert.rejects(index.searchBatch(queries, 5), (e: unknown) => e instanceof ZGQError && e.code === 'NOT_FINITE' && /query 2 /.test(e.message));
  const got = await index.searchBatch(queries, 5, { invalidQueries: 'skip' });
  assert.deepEqual(got.errors.map((e) => [e.query, e.error.code]), [[2, 'NOT_FINITE'], [4, 'INVALID_ARGUMENT']]);
  assert.match(got.errors[1].error.message, /query 4 has zero length/);
  const clean = await index.searchBatch(ds.queries.slice(0, 6 * DIM), 5);
  for (const q of [0, 1, 3, 5]) assert.deepEqual(got.ids.subarray(q * 5, q * 5 + 5), clean.ids.subarray(q * 5, q * 5 + 5));
  for (const q of [2, 4]) assert.ok(got.ids.subarray(q * 5, q * 5 + 5).every((id) => id === NO_ID));
  assert.deepEqual((await index.searchBatch(ds.queries, 5, { invalidQueries: 'skip' })).errors, []);
  await assert.rejects(index.searchBatch(ds.queries, 5, { invalidQueries: 'ignore' as 'skip' }), (e: unknown) => e instanceof ZGQError && e.code === 'INVALID_ARGUMENT');
});

test('a staged id removed while the index trains stays removed; save() includes adds called before it', async () => {
  const index = new ZGQIndex({ dim: DIM, seed: 3 });
  await index.add(rows(0, TRAIN_AT - 100), range(0, TRAIN_AT - 100));
  // this add reaches TRAIN_AT: it trains on a copy of the staged rows while the event loop turns
  const p = index.add(rows(TRAIN_AT - 100, TRAIN_AT + 100), range(TRAIN_AT - 100, TRAIN_AT + 100));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(index.remove([5]), 1);
  await p;
  assert.equal(index.has(5), false);
  assert.notEqual(index.search(ds.base.subarray(5 * DIM, 6 * DIM), 1).ids[0], 5);

  const dir = mkdtempSync(join(tmpdir(), 'zgq-order-'));
  try {
    // an add not awaited before save(), and one inside update() whose promise fn does not return
    const added = index.add(rows(TRAIN_AT + 100, TRAIN_AT + 110), range(TRAIN_AT + 100, TRAIN_AT + 110));
    await index.save(join(dir, 'a.zgq'));
    await added;
    assert.equal((await ZGQIndex.load(join(dir, 'a.zgq'))).has(TRAIN_AT + 105), true);
    await ZGQIndex.update(join(dir, 'a.zgq'), (loaded) => {
      void loaded.add(rows(TRAIN_AT + 110, TRAIN_AT + 120), range(TRAIN_AT + 110, TRAIN_AT + 120));
    });
    assert.equal((await ZGQIndex.load(join(dir, 'a.zgq'))).has(TRAIN_AT + 115), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // a removal of many ids while a re-laying add is pending (no argument-list limits)
  const many = Array.from({ length: 300000 }, (_, i) => 10_000_000 + i);
  const q = index.add(rows(0, 300), range(20_000, 20_300));
  assert.equal(index.remove(many.concat([20_001])), 1);
  await q;
  assert.equal(index.has(20_001), false);
  assert.equal(index.has(20_002), true);
});

test('build, add and searchBatch take number[][], Float32Array[] and Float64Array; get(id) returns the stored vector', async () => {
  const flat = rows(0, 600);
  const nested = Array.from({ length: 600 }, (_, i) => Array.from(flat.subarray(i * DIM, (i + 1) * DIM)));
  const typed = nested.map((r) => Float32Array.from(r));
  const reference = new ZGQIndex({ dim: DIM, seed: 3, storage: 'float32' });
  await reference.build(flat);
  const want = (await reference.searchBatch(ds.queries, 10)).ids;
  for (const input of [nested, typed, Float64Array.from(flat)]) {
    const index = new ZGQIndex({ dim: DIM, seed: 3, storage: 'float32' });
    await index.build(input);
    assert.deepEqual((await index.searchBatch(ds.queries, 10)).ids, want);
    assert.deepEqual((await index.searchBatch(Array.from({ length: 50 }, (_, q) => Array.from(ds.queries.subarray(q * DIM, (q + 1) * DIM))), 10)).ids, want);
  }
  await reference.add([Array.from(rows(700, 701))], [700]);
  assert.deepEqual(reference.get(700), rows(700, 701));
  assert.deepEqual(reference.get(17), rows(17, 18));
  assert.equal(reference.get(99999), undefined);
  reference.remove([17]);
  assert.equal(reference.get(17), undefined);
  // binary16 storage: the stored (rounded) vector, within 2^-11 of its length
  const half = new ZGQIndex({ dim: DIM, seed: 3 });
  await half.build(flat);
  const got = half.get(3)!;
  const x = rows(3, 4);
  const norm = Math.hypot(...x);
  assert.ok(Math.hypot(...got.map((v, j) => v - x[j])) <= norm * 2 ** -11);
  // before training, from the staged rows
  const staged = new ZGQIndex({ dim: DIM });
  await staged.add(nested.slice(0, 3), [1, 2, 3]);
  assert.deepEqual(staged.get(2), rows(1, 2));
  // rows of the wrong shape or type are named
  await expectCodeAsync(new ZGQIndex({ dim: DIM }).build([Array(DIM).fill(0), Array(DIM - 1).fill(0)]), 'DIMENSION_MISMATCH', /vectors\[1\] has 15 values/);
  await expectCodeAsync(new ZGQIndex({ dim: DIM }).build([Array(DIM).fill('1')]), 'INVALID_ARGUMENT', /vectors\[0\]\[0\] must be a number; got "1" \(a string\)/);
  await expectCodeAsync(new ZGQIndex({ dim: DIM }).build(Float64Array.from({ length: DIM }, () => 1e39)), 'NOT_FINITE');
});
