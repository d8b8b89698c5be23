// Memory past 2 GiB and at the limit: index data placed beyond 2^31 (offsets must stay unsigned all
// the way to the kernels and the worker lanes) answers exactly as at the usual base; work that
// cannot fit is refused with OUT_OF_MEMORY before it starts, and a refused call leaves the index
// as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_ID, ZGQError, ZGQIndex } from '../src/index.js';
import { ARENA_BASE, ARENA_LIMIT, arenaBounds } from '../src/memory.js';
import { installArenaBytes, workArenaBytes } from '../src/budget.js';
import { clusteredGaussian } from '../src/data/synthetic.js';

const DIM = 24;
const N = 3000;
const ds = clusteredGaussian({ n: N, nQueries: 64, dim: DIM, seed: 11 });

/** Run fn with new arenas starting at `base` and ending at `limit`, then restore the usual bounds. */
async function withBounds<T>(bounds: { base?: number; limit?: number }, fn: () => Promise<T>): Promise<T> {
  arenaBounds.base = bounds.base ?? ARENA_BASE;
  arenaBounds.limit = bounds.limit ?? ARENA_LIMIT;
  try {
    return await fn();
  } finally {
    arenaBounds.base = ARENA_BASE;
    arenaBounds.limit = ARENA_LIMIT;
  }
}

/** Build, search, batch on two threads, add in place and by re-layout, remove, compact: every answer and the final bytes. */
async function lifecycle(metric: 'l2' | 'cosine'): Promise<{ answers: Uint32Array[]; bytes: Uint8Array }> {
  const index = new ZGQIndex({ dim: DIM, metric, seed: 5 });
  await index.build(ds.base.subarray(0, (N - 400) * DIM), { threads: 2 });
  const answers: Uint32Array[] = [];
  const batch = async () => answers.push((await index.searchBatch(ds.queries, 10, { threads: 2 })).ids);
  answers.push(index.search(ds.queries.subarray(0, DIM), 10).ids);
  await batch();
  await index.add(ds.base.subarray(0, 10 * DIM), Uint32Array.from({ length: 10 }, (_, i) => N + i)); // first add: re-layout
  await index.add(ds.base.subarray((N - 400) * DIM, (N - 390) * DIM), Uint32Array.from({ length: 10 }, (_, i) => N - 400 + i)); // in place
  await batch();
  await index.add(ds.base.subarray((N - 390) * DIM), Uint32Array.from({ length: 390 }, (_, i) => N - 390 + i));
  index.remove(Array.from({ length: 500 }, (_, i) => i * 3));
  await batch();
  await index.compact();
  await batch();
  const again = ZGQIndex.fromBytes(index.toBytes());
  answers.push((await again.searchBatch(ds.queries, 10, { threads: 1 })).ids);
  return { answers, bytes: index.toBytes() };
}

for (const metric of ['l2', 'cosine'] as const) {
  test(`an index whose data lies past 2 GiB answers as one below it (${metric})`, async () => {
    const low = await lifecycle(metric);
    const high = await withBounds({ base: 2 ** 31 + 3 * 65536 }, () => lifecycle(metric));
    assert.equal(high.answers.length, low.answers.length);
    high.answers.forEach((ids, i) => assert.deepEqual(ids, low.answers[i], `answer ${i}`));
    assert.deepEqual(high.bytes, low.bytes);
    // placed high, the first search buffers sit past 2^31 too: the answers above went through them
    assert.ok(high.answers[1].some((id) => id !== NO_ID));
  });
}

const SHAPE = { n: N, dim: DIM, m: 6, degree: 32, efConstruction: 200, nZones: Math.round(Math.sqrt(N)), lanes: 1 };

test('the build estimate is an upper bound: a build fits in exactly the memory it asks for', async () => {
  for (const storage of ['float32', 'float16'] as const) {
    const half = storage === 'float16';
    const work = workArenaBytes({ ...SHAPE, half });
    const installed = installArenaBytes({
      capacity: N, dim: DIM, m: 6, degree: 32, nZones: SHAPE.nZones, nGroups: Math.ceil(Math.sqrt(SHAPE.nZones)), half, residual: true,
      rowNorms: half, paired: true,
    });
    const index = new ZGQIndex({ dim: DIM, storage, pqSubspaces: 6, seed: 5 });
    await withBounds({ limit: Math.max(work, installed) }, () => index.build(ds.base, { threads: 1 }));
    assert.equal(index.size, N);
    // and the estimate is not wildly above what a build takes: at 60 % of it the build is refused
    const phases: string[] = [];
    const refused = new ZGQIndex({ dim: DIM, storage, pqSubspaces: 6, seed: 5 });
    await assert.rejects(
      withBounds({ limit: Math.floor(0.6 * Math.max(work, installed)) }, () => refused.build(ds.base, { threads: 1, onProgress: (p) => phases.push(p) })),
      (e: unknown) => e instanceof ZGQError && e.code === 'OUT_OF_MEMORY' && /needs about .* holds at most/.test(e.message),
    );
    assert.deepEqual(phases, [], 'refused before any work');
  }
});

test('an add that cannot fit is refused up front and leaves the index as it was', async () => {
  const index = new ZGQIndex({ dim: DIM, seed: 5 });
  await index.build(ds.base.subarray(0, 2000 * DIM), { threads: 1 });
  const before = await index.searchBatch(ds.queries, 10, { threads: 1 });
  await withBounds({ limit: 1 << 20 }, async () => {
    const added = Uint32Array.from({ length: 1000 }, (_, i) => 2000 + i);
    await assert.rejects(index.add(ds.base.subarray(2000 * DIM), added), (e: unknown) => e instanceof ZGQError && e.code === 'OUT_OF_MEMORY');
    index.remove([1, 2, 3]);
    await assert.rejects(index.compact(), (e: unknown) => e instanceof ZGQError && e.code === 'OUT_OF_MEMORY');
  });
  assert.equal(index.size, 1997);
  assert.equal(index.has(2000), false);
  const after = await index.searchBatch(ds.queries, 10, { threads: 1 });
  for (let i = 0; i < after.ids.length; i++) {
    if ([1, 2, 3].includes(before.ids[i])) continue;
    assert.ok(after.ids.includes(before.ids[i]) || after.ids[i] === before.ids[i]);
  }
  await index.compact();
  assert.equal(index.stats().deleted, 0);
});

test('a batch with a huge k runs (the batch goes through the arena in chunks) and the index stays usable', async () => {
  const index = new ZGQIndex({ dim: DIM, seed: 5 });
  await index.build(ds.base.subarray(0, 2000 * DIM), { threads: 1 });
  const small = await index.searchBatch(ds.queries, 10, { threads: 2 });
  const k = 1 << 20;
  const huge = await index.searchBatch(ds.queries.subarray(0, 12 * DIM), k, { threads: 2 });
  for (let q = 0; q < 12; q++) {
    const row = huge.ids.subarray(q * k, (q + 1) * k);
    assert.equal(new Set(row.subarray(0, 2000)).size, 2000, `query ${q} returns every vector`);
    assert.ok(row.subarray(2000).every((id) => id === NO_ID));
    assert.deepEqual(row.subarray(0, 10), small.ids.subarray(q * 10, q * 10 + 10));
  }
  assert.deepEqual((await index.searchBatch(ds.queries, 10, { threads: 2 })).ids, small.ids);
});

test('a search whose scratch cannot grow fails with OUT_OF_MEMORY and later searches are unharmed', async () => {
  const index = new ZGQIndex({ dim: DIM, seed: 5 });
  const q = ds.queries.subarray(0, DIM);
  // an arena with about 1 MiB of room above the index: a pool for k = 2^20 (8 MiB) cannot fit
  const limit = installArenaBytes({
    capacity: 2000, dim: DIM, m: 6, degree: 32, nZones: 45, nGroups: 7, half: true, residual: true, rowNorms: true, paired: true,
  }) + (1 << 20);
  await withBounds({ limit: Math.max(limit, workArenaBytes({ ...SHAPE, n: 2000, nZones: 45, half: true })) }, () =>
    index.build(ds.base.subarray(0, 2000 * DIM), { threads: 1 }),
  );
  const before = index.search(q, 10);
  assert.throws(() => index.search(q, 1 << 20), (e: unknown) => e instanceof ZGQError && e.code === 'OUT_OF_MEMORY');
  assert.deepEqual(index.search(q, 10), before);
  const wider = index.search(q, 50);
  assert.deepEqual(wider.ids.subarray(0, 10), before.ids);
});
