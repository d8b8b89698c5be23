// ZGQIndex end to end: recall against brute-force ground truth with default options, metrics,
// ids, k larger than the index, determinism, and save/load round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_ID, ZGQIndex, type BatchSearchResult } from '../src/index.js';
import { Rng } from '../src/random.js';
import { laneTuning } from '../src/lanes.js';
import type { Arena } from '../src/memory.js';
import { LANE_WORDS } from '../src/worker.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { loadSiftsmall } from './helpers/siftsmall.js';
import { buildRows } from '../src/budget.js';
import { crc32, decodeContainer } from '../src/format.js';

test('recall@10 >= 0.95 on 20K x 64 clustered data with default options', async () => {
  const ds = clusteredGaussian({ n: 20000, nQueries: 300, dim: 64, seed: 7 });
  const truth = bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, 64, 10, 'l2');
  const index = new ZGQIndex({ dim: 64 });
  await index.build(ds.base);
  const batch = await index.searchBatch(ds.queries, 10);
  const recall = recallAtK(batch.ids, truth.ids, ds.nQueries, 10, 10);
  console.log(`# synthetic 20K x 64 recall@10 = ${recall.toFixed(4)}`);
  assert.ok(recall >= 0.95, `recall@10 ${recall}`);

  // one-at-a-time search returns exactly the batch rows, nearest first, with true distances
  for (let q = 0; q < 20; q++) {
    const one = index.search(ds.queries.subarray(q * 64, q * 64 + 64), 10);
    assert.deepEqual(one.ids, batch.ids.subarray(q * 10, q * 10 + 10));
    for (let i = 1; i < 10; i++) assert.ok(one.distances[i - 1] <= one.distances[i]);
    const id = one.ids[0];
    let d = 0;
    for (let j = 0; j < 64; j++) d += (ds.queries[q * 64 + j] - ds.base[id * 64 + j]) ** 2;
    assert.ok(Math.abs(d - one.distances[0]) <= 1e-3 * Math.max(1, d));
  }

  const stats = index.stats();
  assert.equal(stats.size, 20000);
  assert.equal(stats.zones, Math.round(Math.sqrt(20000)) - (Math.round(Math.sqrt(20000)) - stats.zones)); // zones dropped only if empty
  assert.ok(stats.zones > 100 && stats.zones <= 141);
  assert.ok(stats.zoneGroups > 0, 'many zones use the selection tree');
  assert.equal(stats.storage, 'float16');
  assert.equal(stats.memory.vectors, 20000 * (64 * 2 + 4), 'binary16 re-ranking vectors and their squared norms');
  assert.ok(stats.meanDegree > 4 && stats.meanDegree <= stats.degree);

  // the two-level zone tree loses (almost) nothing against the exact centroid scan
  const exact = (index as unknown as { built: { searcher: { exactZones: boolean } } }).built.searcher;
  exact.exactZones = true;
  const exactBatch = await index.searchBatch(ds.queries, 10);
  exact.exactZones = false;
  const exactRecall = recallAtK(exactBatch.ids, truth.ids, ds.nQueries, 10, 10);
  assert.ok(recall >= exactRecall - 0.02, `tree ${recall} vs exact scan ${exactRecall}`);

  // the graph walk alone (no zone scans) and the scans with little walking both work
  const walkOnly = await index.searchBatch(ds.queries, 10, { scan: 0, ef: 128 });
  assert.ok(recallAtK(walkOnly.ids, truth.ids, ds.nQueries, 10, 10) >= 0.95, 'graph walk without zone scans');
  const scanHeavy = await index.searchBatch(ds.queries, 10, { scan: 16, scanRatio: 100, ef: 32 });
  assert.ok(recallAtK(scanHeavy.ids, truth.ids, ds.nQueries, 10, 10) >= 0.9, 'zone scans with a short walk');
});

test('a build past buildRows.halfAbove links the graph on binary16 rows: the same stored rows and codes, recall as high', async () => {
  const ds = clusteredGaussian({ n: 8000, nQueries: 200, dim: 32, seed: 11 });
  const truth = bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, 32, 10, 'l2');
  const built = async (halfAbove: number) => {
    const before = buildRows.halfAbove;
    buildRows.halfAbove = halfAbove;
    try {
      const index = new ZGQIndex({ dim: 32, seed: 5, search: { ef: 48, traversal: 'pq' } });
      await index.build(ds.base, { threads: 1 });
      return index;
    } finally {
      buildRows.halfAbove = before;
    }
  };
  const float32 = await built(Infinity);
  const half = await built(0);
  const sections = (index: ZGQIndex) => decodeContainer(index.toBytes(), 'index', crc32).sections;
  const [a, b] = [sections(float32), sections(half)];
  for (const tag of ['VF16', 'CODE', 'PQCB', 'CENT', 'IDS_']) assert.deepEqual(b.get(tag), a.get(tag), tag);
  assert.notDeepEqual(b.get('ADJC'), a.get('ADJC'), 'linked on other distances');
  // the large build lays its index out in its own memory: the components are in it
  for (const index of [float32, half]) {
    const m = index.stats().memory;
    assert.ok(m.arena >= m.total - m.ids && m.arena < 4 * m.total, `arena ${m.arena}, total ${m.total}`);
  }
  const recall = async (index: ZGQIndex) => recallAtK((await index.searchBatch(ds.queries, 10)).ids, truth.ids, ds.nQueries, 10, 10);
  const [r32, r16] = [await recall(float32), await recall(half)];
  assert.ok(r16 >= 0.95 && r16 >= r32 - 0.01, `binary16 rows ${r16}, float32 ${r32}`);
});

test('recall@10 >= 0.95 on siftsmall with default options', async (t) => {
  const sift = await loadSiftsmall(t);
  if (!sift) return;
  const { base, queries, gt } = sift;
  const index = new ZGQIndex({ dim: base.dim });
  await index.build(base.data);
  const batch = await index.searchBatch(queries.data, 10);
  const recall = recallAtK(batch.ids, gt.data, queries.n, 10, gt.dim);
  console.log(`# siftsmall recall@10 = ${recall.toFixed(4)}`);
  assert.ok(recall >= 0.95, `recall@10 ${recall}`);
});

for (const metric of ['ip', 'cosine'] as const) {
  test(`metric ${metric}: recall against brute force, distances as documented`, async () => {
    const dim = 32;
    const ds = clusteredGaussian({ n: 5000, nQueries: 100, dim, seed: 11 });
    const truth = bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, dim, 10, metric);
    const index = new ZGQIndex({ dim, metric, seed: 3 });
    await index.build(ds.base);
    const batch = await index.searchBatch(ds.queries, 10, { ef: 128 });
    const recall = recallAtK(batch.ids, truth.ids, ds.nQueries, 10, 10);
    assert.ok(recall >= 0.9, `${metric} recall@10 ${recall}`);
    // the reported distance of a found id equals the brute-force distance for that id
    const q0 = batch.ids[0];
    const rank = Array.from(truth.ids.subarray(0, 10)).indexOf(q0);
    // binary16 storage: distances within its 2^-11 relative precision of the exact ones
    if (rank >= 0) assert.ok(Math.abs(batch.distances[0] - truth.distances[rank]) < 2e-3 * Math.max(1, Math.abs(truth.distances[rank])));
  });
}

test('caller ids come back; k larger than the index pads with NO_ID and Infinity', async () => {
  const dim = 8;
  const ds = clusteredGaussian({ n: 50, nQueries: 1, dim, seed: 5 });
  const ids = Uint32Array.from({ length: 50 }, (_, i) => 1000 + i * 7);
  const index = new ZGQIndex({ dim, storage: 'float32' });
  await index.build(ds.base, { ids });
  const hit = index.search(ds.base.subarray(3 * dim, 4 * dim), 60, { ef: 100 });
  assert.equal(hit.ids.length, 60);
  assert.equal(hit.ids[0], 1000 + 3 * 7, 'a stored vector finds itself first');
  assert.equal(hit.distances[0], 0, 'float32 storage: exact distance');
  const found = Array.from(hit.ids.subarray(0, 50)).sort((a, b) => a - b);
  assert.deepEqual(found, Array.from(ids).sort((a, b) => a - b), 'all 50 ids, each once');
  for (let i = 50; i < 60; i++) {
    assert.equal(hit.ids[i], NO_ID);
    assert.equal(hit.distances[i], Infinity);
  }
});

test('same seed and data give the same index byte for byte; save/load round trip answers identically', async () => {
  const dim = 24;
  // large enough that the graph is built in batches on worker threads
  const ds = clusteredGaussian({ n: 8000, nQueries: 50, dim, seed: 9 });
  const dir = mkdtempSync(join(tmpdir(), 'zgq-'));
  try {
    const a = new ZGQIndex({ dim, seed: 1 });
    await a.build(ds.base, { threads: 1 });
    const b = new ZGQIndex({ dim, seed: 1 });
    await b.build(ds.base, { threads: 2 });
    await a.save(join(dir, 'a.zgq'));
    await b.save(join(dir, 'b.zgq'));
    assert.deepEqual(readFileSync(join(dir, 'a.zgq')), readFileSync(join(dir, 'b.zgq')), 'one thread and two threads build the same index');

    const loaded = await ZGQIndex.load(join(dir, 'a.zgq'));
    assert.deepEqual(loaded.options, a.options);
    for (const opts of [undefined, { ef: 16, nProbe: 1, rerank: 1 }, { ef: 200, nProbe: 8 }]) {
      const before = await a.searchBatch(ds.queries, 10, opts);
      const after = await loaded.searchBatch(ds.queries, 10, opts);
      assert.deepEqual(after.ids, before.ids);
      assert.deepEqual(after.distances, before.distances);
    }
    assert.deepEqual(loaded.stats().zoneSizes, a.stats().zoneSizes);
    await loaded.save(join(dir, 'c.zgq'));
    assert.deepEqual(readFileSync(join(dir, 'c.zgq')), readFileSync(join(dir, 'a.zgq')), 'load then save reproduces the file');

    const other = new ZGQIndex({ dim, seed: 2 });
    await other.build(ds.base);
    await other.save(join(dir, 'd.zgq'));
    assert.notDeepEqual(readFileSync(join(dir, 'd.zgq')), readFileSync(join(dir, 'a.zgq')), 'another seed, another index');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('plain (non-residual) PQ and exact-zone scans also reach high recall', async () => {
  const dim = 32;
  const ds = clusteredGaussian({ n: 8000, nQueries: 100, dim, seed: 13 });
  const truth = bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, dim, 10, 'l2');
  const index = new ZGQIndex({ dim, residual: false, pqSubspaces: 16, zones: 40 });
  await index.build(ds.base);
  assert.equal(index.stats().zoneGroups, 0, 'few zones are scanned exactly');
  const batch = await index.searchBatch(ds.queries, 10, { ef: 128 });
  assert.ok(recallAtK(batch.ids, truth.ids, ds.nQueries, 10, 10) >= 0.9);
});

test('binary16 storage: near-exact distances, half the bytes; data beyond its range stays float32', async () => {
  const dim = 16;
  const ds = clusteredGaussian({ n: 2000, nQueries: 20, dim, seed: 17 });
  const half = new ZGQIndex({ dim });
  await half.build(ds.base);
  const full = new ZGQIndex({ dim, storage: 'float32' });
  await full.build(ds.base);
  // binary16 rows keep their squared norms beside them (4 bytes each) for the exact walk
  assert.equal(half.stats().memory.vectors, 2000 * (dim * 2 + 4));
  assert.equal(full.stats().memory.vectors, 2000 * dim * 4);
  const a = await half.searchBatch(ds.queries, 10);
  const b = await full.searchBatch(ds.queries, 10);
  let same = 0;
  for (let i = 0; i < a.ids.length; i++) {
    if (a.ids[i] === b.ids[i]) same++;
    assert.ok(Math.abs(a.distances[i] - b.distances[i]) <= 2e-3 * Math.max(1, b.distances[i]));
  }
  assert.ok(same >= a.ids.length * 0.98, `${same} of ${a.ids.length} result slots agree`);

  const big = ds.base.map((v) => v * 1e5);
  const wide = new ZGQIndex({ dim });
  await wide.build(big);
  assert.equal(wide.stats().storage, 'float32', 'values beyond ±65504 are kept as float32');
});

test('searchBatch on worker threads returns exactly what one thread returns', async () => {
  const dim = 32;
  const ds = clusteredGaussian({ n: 6000, nQueries: 400, dim, seed: 19, outlierFraction: 0.3 });
  for (const metric of ['l2', 'cosine'] as const) {
    const index = new ZGQIndex({ dim, metric });
    await index.build(ds.base);
    const one = await index.searchBatch(ds.queries, 10, { threads: 1 });
    const two = await index.searchBatch(ds.queries, 10, { threads: 2 });
    assert.deepEqual(two.ids, one.ids);
    assert.deepEqual(two.distances, one.distances);
    // batches run one at a time even when started together, with other options
    const [a, b] = await Promise.all([index.searchBatch(ds.queries, 5, { threads: 2, ef: 32 }), index.searchBatch(ds.queries, 10, { threads: 2 })]);
    assert.deepEqual(b.ids, one.ids);
    for (let q = 0; q < 400; q += 37) {
      const single = index.search(ds.queries.subarray(q * dim, (q + 1) * dim), 5, { ef: 32 });
      assert.deepEqual(a.ids.subarray(q * 5, q * 5 + 5), single.ids);
    }
  }
});

test('back-to-back batches handed to waiting worker lanes match one thread, across other indexes, builds and a grown memory', async () => {
  const dim = 24;
  const ds = clusteredGaussian({ n: 5000, nQueries: 300, dim, seed: 29, outlierFraction: 0.3 });
  const index = new ZGQIndex({ dim });
  await index.build(ds.base);
  const other = new ZGQIndex({ dim, metric: 'cosine' });
  await other.build(ds.base.subarray(0, 3000 * dim));
  const variants = [{ k: 10, ef: 64 }, { k: 5, ef: 16 }, { k: 20, ef: 128, nProbe: 4 }];
  const expected = [];
  for (const { k, ...opts } of variants) expected.push(await index.searchBatch(ds.queries, k, { ...opts, threads: 1 }));
  const otherExpected = await other.searchBatch(ds.queries, 10, { threads: 1 });
  const check = async (round: number) => {
    const v = round % variants.length;
    const { k, ...opts } = variants[v];
    const got = await index.searchBatch(ds.queries, k, { ...opts, threads: 2 });
    assert.deepEqual(got.ids, expected[v].ids, `round ${round}`);
    assert.deepEqual(got.distances, expected[v].distances, `round ${round}`);
  };
  // back to back: the lanes of one batch wait for the next
  for (let round = 0; round < 24; round++) await check(round);
  // another index takes the threads, then this one again
  for (let round = 0; round < 6; round++) {
    const got = await other.searchBatch(ds.queries, 10, { threads: 2 });
    assert.deepEqual(got.ids, otherExpected.ids);
    await check(round);
  }
  // a parallel build in between
  const third = new ZGQIndex({ dim });
  await third.build(ds.base.subarray(0, 2000 * dim), { threads: 2 });
  await check(0);
  // a batch large enough to grow the memory: lanes waiting on kernels made for the smaller one are replaced
  const memoryBytes = () => (index as unknown as { built: { kernels: { arena: { memory: WebAssembly.Memory } } } }).built.kernels.arena.memory.buffer.byteLength;
  const before = memoryBytes();
  const repeats = 40;
  const many = new Float32Array(ds.queries.length * repeats);
  for (let r = 0; r < repeats; r++) many.set(ds.queries, r * ds.queries.length);
  const big = await index.searchBatch(many, 10, { ef: 64, threads: 2 });
  for (let r = 0; r < repeats; r += 13) assert.deepEqual(big.ids.subarray(r * 3000, (r + 1) * 3000), expected[0].ids);
  assert.ok(memoryBytes() > before, 'the batch grew the memory (the case this part checks)');
  for (let round = 0; round < 6; round++) await check(round);
});

test('slices a worker still holds are searched on the calling thread: results match one thread', async () => {
  const dim = 24;
  const ds = clusteredGaussian({ n: 5000, nQueries: 300, dim, seed: 31, outlierFraction: 0.3 });
  const index = new ZGQIndex({ dim });
  await index.build(ds.base);
  const expected = [await index.searchBatch(ds.queries, 10, { threads: 1 }), await index.searchBatch(ds.queries, 4, { ef: 24, threads: 1 })];
  const stats = (index as unknown as { built: { lanes: { stats: { stolen: number; satOut: number } } } }).built.lanes.stats;
  const saved = laneTuning.stealAfterMs;
  laneTuning.stealAfterMs = -Infinity; // every slice still open when this thread's share is done
  try {
    for (let round = 0; round < 40; round++) {
      const got = await index.searchBatch(ds.queries, round % 2 ? 4 : 10, { ef: round % 2 ? 24 : undefined, threads: 2 });
      assert.deepEqual(got.ids, expected[round % 2].ids, `round ${round}`);
      assert.deepEqual(got.distances, expected[round % 2].distances, `round ${round}`);
    }
  } finally {
    laneTuning.stealAfterMs = saved;
  }
  console.log(`# slices taken from workers: ${stats.stolen}, lanes that sat a batch out: ${stats.satOut}`);
  assert.ok(stats.stolen > 0, 'the calling thread searched slices a worker held (the case this test checks)');
});

test('a batch whose new lane slot grows the memory answers like one thread', async () => {
  const dim = 16;
  const ds = clusteredGaussian({ n: 3000, nQueries: 192, dim, seed: 37 });
  const index = new ZGQIndex({ dim });
  await index.build(ds.base);
  const expected = await index.searchBatch(ds.queries, 10, { threads: 1 });
  // the first lane slot this batch allocates starts exactly where the memory ends, so it grows it
  // after every other allocation of the batch (contexts, slice words, scratch)
  const { arena } = (index as unknown as { built: { kernels: { arena: Arena } } }).built.kernels;
  const alloc = arena.alloc.bind(arena);
  let grown = false;
  arena.alloc = (bytes: number): number => {
    if (!grown && bytes === LANE_WORDS * 4) {
      grown = true;
      const top = (arena.used + 15) & ~15;
      const free = arena.memory.buffer.byteLength - top;
      if (free > 0) alloc(free);
      const before = arena.memory.buffer.byteLength;
      const slot = alloc(bytes);
      assert.ok(arena.memory.buffer.byteLength > before && slot >= before, 'the slot lies in new memory (the case this test checks)');
      return slot;
    }
    return alloc(bytes);
  };
  try {
    const got = await index.searchBatch(ds.queries, 10, { threads: 2 });
    assert.ok(grown);
    assert.deepEqual(got.ids, expected.ids);
    assert.deepEqual(got.distances, expected.distances);
  } finally {
    arena.alloc = alloc;
  }
  assert.deepEqual((await index.searchBatch(ds.queries, 10, { threads: 2 })).ids, expected.ids);
});

test('many batches of changing size, k and filter, with search() calls in between, match one thread', async () => {
  const dim = 24;
  const ds = clusteredGaussian({ n: 6000, nQueries: 400, dim, seed: 5, outlierFraction: 0.3 });
  const index = new ZGQIndex({ dim });
  await index.build(ds.base);
  const even = new Set(Array.from({ length: 3000 }, (_, i) => i * 2));
  const variants = [{ k: 10 }, { k: 3, ef: 24 }, { k: 20, ef: 96, nProbe: 4 }, { k: 10, filter: even }];
  const sizes = [64, 100, 400];
  const expected = new Map<string, BatchSearchResult>();
  for (let v = 0; v < variants.length; v++) {
    for (const size of sizes) {
      const { k, ...options } = variants[v];
      expected.set(`${v}/${size}`, await index.searchBatch(ds.queries.subarray(0, size * dim), k, { ...options, threads: 1 }));
    }
  }
  const one = ds.queries.subarray(0, dim);
  const single = index.search(one, 10).ids;
  const rng = new Rng(11);
  const saved = laneTuning.stealAfterMs;
  try {
    for (let round = 0; round < 600; round++) {
      // now and then every open slice is taken from the workers at once
      laneTuning.stealAfterMs = round % 3 === 1 ? -Infinity : saved;
      const v = rng.int(variants.length);
      const size = sizes[rng.int(sizes.length)];
      const { k, ...options } = variants[v];
      const batch = index.searchBatch(ds.queries.subarray(0, size * dim), k, { ...options, threads: 2 });
      // search() calls run while the batch may be waiting (they share its first lane's context)
      const between = new Promise<Uint32Array>((resolve) => setImmediate(() => resolve(index.search(one, 10).ids)));
      const [got, alone] = await Promise.all([batch, between]);
      assert.deepEqual(alone, single, `round ${round}: search() between`);
      assert.deepEqual(got.ids, expected.get(`${v}/${size}`)!.ids, `round ${round}: variant ${v}, ${size} queries`);
      assert.deepEqual(got.distances, expected.get(`${v}/${size}`)!.distances, `round ${round}`);
      // let the worker leave its slot now and then, so that later batches post tasks again
      if (round % 150 === 149) await new Promise((resolve) => setTimeout(resolve, 40));
    }
  } finally {
    laneTuning.stealAfterMs = saved;
  }
});

test('default nProbe and scan follow the zone count; options the caller fixed stay', async () => {
  const dim = 8;
  const ds = clusteredGaussian({ n: 12000, nQueries: 0, dim, seed: 23 });
  const many = new ZGQIndex({ dim, zones: 1024, efConstruction: 32 });
  await many.build(ds.base);
  const zones = many.stats().zones;
  assert.ok(zones > 512, `${zones} zones`);
  assert.equal(many.options.search.nProbe, Math.ceil(zones / 32));
  assert.equal(many.options.search.scan, Math.ceil(zones / 32));
  const fixed = new ZGQIndex({ dim, zones: 1024, efConstruction: 32, search: { nProbe: 8 } });
  await fixed.build(ds.base);
  assert.equal(fixed.options.search.nProbe, 8);
  const few = new ZGQIndex({ dim, zones: 100, efConstruction: 32 });
  await few.build(ds.base);
  assert.equal(few.options.search.nProbe, 16);
  assert.equal(few.options.search.scan, 16);
});

test('memory released by temporaries reads as zeros when allocated again: worker lanes made after a fast-scan training search correctly', async () => {
  // the fast scan trains its codebooks in temporaries it releases; a worker's search context
  // allocated there later once read a stale value as its filter bitmap and trapped
  const dim = 128;
  const ds = clusteredGaussian({ n: 10000, nQueries: 300, dim, seed: 1, outlierFraction: 0.3 });
  const index = new ZGQIndex({ dim, seed: 42 });
  await index.build(ds.base, { threads: 1 });
  index.search(ds.queries.subarray(0, dim), 10, { traversal: 'fastscan' });
  const options = { ef: 16, nProbe: 4, traversal: 'exact' } as const;
  const one = await index.searchBatch(ds.queries, 10, { ...options, threads: 1 });
  for (const size of [118, 300]) {
    const two = await index.searchBatch(ds.queries.subarray(0, size * dim), 10, { ...options, threads: 2 });
    assert.deepEqual(two.ids, one.ids.subarray(0, size * 10));
  }
  const { arena } = (index as unknown as { built: { kernels: { arena: Arena } } }).built.kernels;
  const mark = arena.mark();
  const scratch = arena.alloc(4096);
  arena.bytes.fill(0xab, scratch, scratch + 4096);
  arena.release(mark);
  const again = arena.alloc(4096);
  assert.equal(again, scratch);
  assert.ok(arena.bytes.subarray(again, again + 4096).every((b) => b === 0), 'a released region comes back zeroed');
});
