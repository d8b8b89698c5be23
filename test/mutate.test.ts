// A live index: add, remove (tombstones, then compaction), replace, persistence under change, and
// filtered search, each against brute-force ground truth on the data the index should hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_ID, ZGQError, ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { Rng } from '../src/random.js';
import { expectCode, expectCodeAsync } from './helpers/expect.js';

const DIM = 32;
const N = 15000;
const NQ = 200;
const ds = clusteredGaussian({ n: N, nQueries: NQ, dim: DIM, seed: 3 });
const ALL = Array.from({ length: N }, (_, i) => i);

/** Rows of ds.base listed in `rows` (ids are row numbers). */
function rowsOf(rows: number[]): Float32Array {
  const out = new Float32Array(rows.length * DIM);
  rows.forEach((r, i) => out.set(ds.base.subarray(r * DIM, (r + 1) * DIM), i * DIM));
  return out;
}

/** Exact top 10 ids of every query among `rows`. */
function truthAmong(rows: number[]): Uint32Array {
  const t = bruteForceKnn(rowsOf(rows), rows.length, ds.queries, NQ, DIM, 10, 'l2');
  return Uint32Array.from(t.ids, (i) => rows[i]);
}

async function recallOf(index: ZGQIndex, truth: Uint32Array, options = {}): Promise<number> {
  return recallAtK((await index.searchBatch(ds.queries, 10, options)).ids, truth, NQ, 10, 10);
}

async function freshRecall(rows: number[], truth: Uint32Array): Promise<number> {
  const index = new ZGQIndex({ dim: DIM });
  await index.build(rowsOf(rows), { ids: rows });
  return recallOf(index, truth);
}

test('adding 50% more, then removing 30%: recall stays within 0.02 of a fresh build on the same data', async () => {
  const index = new ZGQIndex({ dim: DIM });
  await index.build(rowsOf(ALL.slice(0, 10000)), { ids: ALL.slice(0, 10000) });
  const fractions: number[] = [];
  await index.add(rowsOf(ALL.slice(10000)), ALL.slice(10000), { onProgress: (f) => fractions.push(f), threads: 2 });
  assert.equal(index.size, N);
  assert.equal(fractions.at(-1), 1, 'progress reaches 1');
  const truthAll = truthAmong(ALL);
  const grown = await recallOf(index, truthAll);
  const fresh = await freshRecall(ALL, truthAll);
  console.log(`# after add: recall@10 ${grown.toFixed(4)}, fresh build ${fresh.toFixed(4)}`);
  assert.ok(grown >= fresh - 0.02, `grown ${grown} vs fresh ${fresh}`);
  assert.ok(index.has(14999) && index.has(0) && !index.has(N));

  const perm = new Rng(9).permutation(N);
  const gone = Array.from(perm.subarray(0, 4500));
  const kept = Array.from(perm.subarray(4500)).sort((a, b) => a - b);
  assert.equal(index.remove(gone), 4500);
  assert.equal(index.remove(gone.slice(0, 10)), 0, 'removing again is a no-op');
  assert.equal(index.remove([N + 5]), 0, 'unknown ids are ignored');
  assert.equal(index.size, N - 4500);
  assert.equal(index.stats().deleted, 4500);
  assert.ok(!index.has(gone[0]));
  const goneSet = new Set(gone);
  const truthKept = truthAmong(kept);
  const freshKept = await freshRecall(kept, truthKept);
  const batch = await index.searchBatch(ds.queries, 10);
  assert.ok(!batch.ids.some((id) => goneSet.has(id)), 'removed ids are never returned');
  assert.deepEqual((await index.searchBatch(ds.queries, 10, { threads: 1 })).ids, batch.ids, 'worker lanes skip removed nodes too');
  const one = index.search(ds.base.subarray(gone[0] * DIM, (gone[0] + 1) * DIM), 10);
  assert.ok(!one.ids.some((id) => goneSet.has(id)));
  const tomb = recallAtK(batch.ids, truthKept, NQ, 10, 10);
  await index.compact();
  assert.equal(index.stats().deleted, 0);
  assert.equal(index.size, kept.length);
  const stats = index.stats();
  assert.equal(stats.memory.vectors, stats.capacity * (DIM * 2 + 4));
  assert.ok(stats.capacity >= kept.length && stats.capacity <= kept.length * 1.07 + 256, 'compaction frees the removed vectors, keeping room to grow');
  const compacted = await recallOf(index, truthKept);
  console.log(`# after removing 30%: recall@10 ${tomb.toFixed(4)} (tombstones), ${compacted.toFixed(4)} (compacted), fresh build ${freshKept.toFixed(4)}`);
  assert.ok(tomb >= freshKept - 0.02, `tombstones ${tomb} vs fresh ${freshKept}`);
  assert.ok(compacted >= freshKept - 0.02, `compacted ${compacted} vs fresh ${freshKept}`);
  // the graph holds no link to a dropped node and every node is reachable in search results
  for (const id of kept.slice(0, 50)) {
    const r = index.search(ds.base.subarray(id * DIM, (id + 1) * DIM), 1);
    assert.equal(r.ids[0], id, `stored vector ${id} is its own nearest neighbour`);
  }
});

test('add replaces an existing id; removing then adding an id brings it back; the same seed gives the same result', async () => {
  const index = new ZGQIndex({ dim: DIM });
  await index.build(rowsOf(ALL.slice(0, 3000)), { ids: ALL.slice(0, 3000) });
  const moved = ds.base.slice(4000 * DIM, 4001 * DIM);
  await index.add(moved, [17]);
  assert.equal(index.size, 3000, 'replacing keeps the count');
  const r = index.search(moved, 1);
  assert.equal(r.ids[0], 17);
  assert.ok(r.distances[0] < 1e-3 * Math.max(1, moved.reduce((s, v) => s + v * v, 0)));
  const old = index.search(ds.base.subarray(17 * DIM, 18 * DIM), 3);
  assert.ok(old.ids[0] !== 17 || old.distances[0] > 0, 'the old vector of id 17 is gone');

  index.remove([5]);
  assert.ok(!index.has(5));
  await index.add(ds.base.slice(5 * DIM, 6 * DIM), [5]);
  assert.ok(index.has(5));
  assert.equal(index.search(ds.base.subarray(5 * DIM, 6 * DIM), 1).ids[0], 5);

  const twin = new ZGQIndex({ dim: DIM });
  await twin.build(rowsOf(ALL.slice(0, 3000)), { ids: ALL.slice(0, 3000) });
  await twin.add(moved, [17], { threads: 1 });
  twin.remove([5]);
  await twin.add(ds.base.slice(5 * DIM, 6 * DIM), [5], { threads: 1 });
  const a = await index.searchBatch(ds.queries, 10);
  const b = await twin.searchBatch(ds.queries, 10);
  assert.deepEqual(a.ids, b.ids, 'deterministic for any thread count');
});

test('small adds go in place: one at a time they keep recall, replace ids, and save and load exactly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-append-'));
  try {
    const index = new ZGQIndex({ dim: DIM });
    await index.build(rowsOf(ALL.slice(0, 6000)), { ids: ALL.slice(0, 6000) });
    assert.equal(index.stats().capacity, 6000, 'a fresh build keeps no spare room');
    // the first add lays the index out with room to grow; the next ones append in place
    await index.add(rowsOf([6000]), [6000]);
    assert.equal(index.stats().appended, 0);
    for (let id = 6001; id < 6300; id++) await index.add(rowsOf([id]), [id]);
    const s = index.stats();
    assert.equal(s.appended, 299, 'added in place');
    assert.equal(s.size, 6300);
    index.remove([6100, 10]);
    await index.add(rowsOf([7000]), [6200]); // replaces 6200 in place
    assert.equal(index.stats().appended, 300);
    assert.equal(index.search(rowsOf([7000]), 1).ids[0], 6200);
    const truth = truthAmong(ALL.slice(0, 6300).filter((i) => i !== 6100 && i !== 10 && i !== 6200).concat([7000]).sort((a, b) => a - b))
      .map((id) => (id === 7000 ? 6200 : id));
    const got = await recallOf(index, truth);
    const fresh = new ZGQIndex({ dim: DIM });
    const finalIds = ALL.slice(0, 6300).filter((i) => i !== 6100 && i !== 10);
    await fresh.build(rowsOf(finalIds.map((id) => (id === 6200 ? 7000 : id))), { ids: finalIds });
    const freshRecall = await recallOf(fresh, truth);
    console.log(`# 300 single adds in place: recall@10 ${got.toFixed(4)}, fresh build ${freshRecall.toFixed(4)}`);
    assert.ok(got >= freshRecall - 0.02, `appended ${got} vs fresh ${freshRecall}`);
    for (const id of [6001, 6150, 6299]) assert.equal(index.search(rowsOf([id]), 1).ids[0], id, `appended ${id} is found`);

    const path = join(dir, 'appended.zgq');
    await index.save(path);
    const loaded = await ZGQIndex.load(path);
    assert.equal(loaded.stats().appended, 300);
    assert.equal(loaded.stats().deleted, 3);
    assert.deepEqual((await loaded.searchBatch(ds.queries, 10)).ids, (await index.searchBatch(ds.queries, 10)).ids);
    // a loaded index has no spare room: its next add lays it out, folding the appended nodes into zones
    await loaded.add(rowsOf([6400]), [6400]);
    assert.equal(loaded.stats().appended, 0);
    assert.equal(loaded.stats().deleted, 0);
    assert.equal(loaded.size, 6300 - 2 + 1);
    assert.ok(loaded.has(6200) && loaded.has(6299) && !loaded.has(6100));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a removal during an add holds in the result; concurrent adds all land', async () => {
  const index = new ZGQIndex({ dim: DIM });
  await index.build(rowsOf(ALL.slice(0, 4000)), { ids: ALL.slice(0, 4000) });
  const first = index.add(rowsOf(ALL.slice(4000, 5000)), ALL.slice(4000, 5000));
  const second = index.add(rowsOf(ALL.slice(5000, 5500)), ALL.slice(5000, 5500));
  index.remove([1, 2, 3]);
  await Promise.all([first, second]);
  assert.equal(index.size, 5500 - 3);
  assert.ok(!index.has(1) && !index.has(3) && index.has(4) && index.has(5499) && index.has(4000));
});

test('save and load round-trip a changed index exactly, tombstones included', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-mutate-'));
  try {
    const index = new ZGQIndex({ dim: DIM, metric: 'cosine' });
    await index.build(rowsOf(ALL.slice(0, 4000)), { ids: ALL.slice(0, 4000) });
    await index.add(rowsOf(ALL.slice(4000, 4600)), ALL.slice(4000, 4600));
    index.remove(ALL.slice(100, 400));
    const path = join(dir, 'changed.zgq');
    await index.save(path);
    const loaded = await ZGQIndex.load(path);
    assert.equal(loaded.size, index.size);
    assert.equal(loaded.stats().deleted, 300);
    assert.ok(!loaded.has(150) && loaded.has(4500));
    const a = await index.searchBatch(ds.queries, 10);
    const b = await loaded.searchBatch(ds.queries, 10);
    assert.deepEqual(b.ids, a.ids);
    assert.deepEqual(b.distances, a.distances);
    await loaded.compact();
    await index.compact();
    assert.deepEqual((await loaded.searchBatch(ds.queries, 10)).ids, (await index.searchBatch(ds.queries, 10)).ids);

    // a save is a snapshot: removals and in-place adds made while it writes do not reach the file
    const atSave = await index.searchBatch(ds.queries, 10);
    const saving = index.save(path);
    index.remove(Array.from(atSave.ids.subarray(0, 20)));
    await index.add(rowsOf([4700]), [4700]);
    await saving;
    const snapshot = await ZGQIndex.load(path);
    assert.deepEqual((await snapshot.searchBatch(ds.queries, 10)).ids, atSave.ids);
    assert.ok(!snapshot.has(4700) && index.has(4700));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input to add and remove fails with a typed error and leaves the index as it was', async () => {
  const index = new ZGQIndex({ dim: DIM });
  await index.build(rowsOf(ALL.slice(0, 2000)), { ids: ALL.slice(0, 2000) });
  const before = await index.searchBatch(ds.queries, 10);
  await expectCodeAsync(index.add(new Float32Array(DIM + 1), [1]), 'DIMENSION_MISMATCH');
  await expectCodeAsync(index.add(rowsOf([1, 2]), [7000]), 'INVALID_ARGUMENT', /ids has 1 entries for 2 vectors/);
  await expectCodeAsync(index.add(rowsOf([1, 2]), [7000, 7000]), 'DUPLICATE_ID');
  await expectCodeAsync(index.add(Float32Array.from({ length: DIM }, (_, j) => (j === 3 ? NaN : 1)), [7000]), 'NOT_FINITE');
  await expectCodeAsync(index.add([1, 2] as unknown as Float32Array, [7000]), 'INVALID_ARGUMENT');
  await expectCodeAsync(index.add(rowsOf([1]), undefined as unknown as number[]), 'INVALID_ARGUMENT', /needs the ids/);
  expectCode(() => index.remove([1.5]), 'INVALID_ARGUMENT', /ids\[0\]/);
  expectCode(() => index.remove('7' as unknown as number[]), 'INVALID_ARGUMENT');
  assert.equal(index.size, 2000);
  assert.deepEqual((await index.searchBatch(ds.queries, 10)).ids, before.ids);
});

test('filtered search returns only allowed ids with recall >= 0.9 at 10% selectivity, exact when tiny', async () => {
  const index = new ZGQIndex({ dim: DIM });
  await index.build(ds.base);
  const rng = new Rng(11);
  for (const selectivity of [0.5, 0.1, 0.01]) {
    const allowed = ALL.filter(() => rng.next() < selectivity);
    const set = new Set(allowed);
    const truth = truthAmong(allowed);
    for (const filter of [set, Uint32Array.from(allowed), (id: number) => set.has(id)]) {
      const res = await index.searchBatch(ds.queries, 10, { filter });
      assert.ok(res.ids.every((id) => id === NO_ID || set.has(id)), 'only allowed ids');
      const recall = recallAtK(res.ids, truth, NQ, 10, 10);
      assert.ok(recall >= 0.9, `selectivity ${selectivity}: recall@10 ${recall}`);
      if (selectivity === 0.01) assert.ok(recall >= 0.995, `tiny allow-lists are scanned exactly (on binary16 vectors): ${recall}`);
    }
    if (selectivity === 0.1) {
      // a pool small enough that the widened graph search, not the exact scan, serves the filter
      const graph = recallAtK((await index.searchBatch(ds.queries, 10, { filter: set, ef: 16 })).ids, truth, NQ, 10, 10);
      assert.ok(graph >= 0.9, `graph search through the filter: recall@10 ${graph}`);
    }
    // worker lanes see the filter as the calling thread does
    const one = await index.searchBatch(ds.queries, 10, { filter: set, threads: 1 });
    const two = await index.searchBatch(ds.queries, 10, { filter: set, threads: 2 });
    assert.deepEqual(two.ids, one.ids, 'a filtered batch on 2 threads equals 1 thread');
    // one-at-a-time search agrees with the batch
    const single = index.search(ds.queries.subarray(0, DIM), 10, { filter: set });
    assert.deepEqual(single.ids, (await index.searchBatch(ds.queries.subarray(0, DIM), 10, { filter: set })).ids);
    console.log(`# filter at ${selectivity}: recall@10 ${recallAtK((await index.searchBatch(ds.queries, 10, { filter: set })).ids, truth, NQ, 10, 10).toFixed(4)}`);
  }
  // a prepared filter answers like its source, excludes later removals, and survives an add
  const allowed = ALL.filter((i) => i % 7 === 0);
  const set = new Set(allowed);
  const prepared = index.prepareFilter(set);
  assert.deepEqual((await index.searchBatch(ds.queries, 10, { filter: prepared })).ids, (await index.searchBatch(ds.queries, 10, { filter: set })).ids);
  // resolved once: a later change to its source does not reach it (until the index changes)
  const outsider = index.search(ds.queries.subarray(0, DIM), 20).ids.find((id) => !set.has(id))!;
  set.add(outsider);
  assert.ok(index.search(ds.queries.subarray(0, DIM), 50, { filter: set }).ids.includes(outsider));
  assert.ok(!index.search(ds.queries.subarray(0, DIM), 50, { filter: prepared }).ids.includes(outsider), 'prepared once');
  set.delete(outsider);
  const top = index.search(ds.queries.subarray(0, DIM), 1, { filter: prepared }).ids[0];
  index.remove([top]);
  assert.notEqual(index.search(ds.queries.subarray(0, DIM), 1, { filter: prepared }).ids[0], top, 'removed after preparing: excluded');
  await index.add(ds.queries.subarray(0, DIM).slice(), [top]);
  const afterAdd = index.search(ds.queries.subarray(0, DIM), 10, { filter: prepared });
  assert.ok(afterAdd.ids.every((id) => set.has(id)), 'resolved again after add');
  assert.equal(afterAdd.ids[0], top, 'the id added back, now at the query itself, comes first');
  await index.compact();

  // a filter and removals combine; fewer allowed than k pads with NO_ID
  index.remove([1, 2]);
  const few = index.search(ds.queries.subarray(0, DIM), 5, { filter: [1, 2, 3, 4, 999999] });
  assert.deepEqual(Array.from(few.ids).sort(), [3, 4, NO_ID, NO_ID, NO_ID].sort());
  assert.deepEqual(Array.from(index.search(ds.queries.subarray(0, DIM), 3, { filter: new Set() }).ids), [NO_ID, NO_ID, NO_ID]);
  expectCode(() => index.search(ds.queries.subarray(0, DIM), 3, { filter: ['a'] as unknown as number[] }), 'INVALID_ARGUMENT', /filter \[0\]/);
  expectCode(() => index.search(ds.queries.subarray(0, DIM), 3, { filter: 5 as unknown as number[] }), 'INVALID_ARGUMENT', /filter must be/);
});
