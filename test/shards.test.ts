// Sharded indexes (src/shards.ts): a build too large for one memory is split into shards over
// nearby vectors behind a router. The shard bound is lowered here so that small sets split; every
// operation is checked against brute force and against the same calls on the same data.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_ID, ZGQError, ZGQIndex } from '../src/index.js';
import { balancedAssignment, shardBounds, shardCount } from '../src/shards.js';
import { installArenaBytes, workArenaBytes } from '../src/budget.js';
import { resolveOptions } from '../src/options.js';
import { linkCapacity } from '../src/graph.js';
import { shapeOf } from '../src/built.js';
import { defaultZoneCount } from '../src/zones.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { decodeContainer, encodeContainer, crc32 } from '../src/format.js';
import { fileReading } from '../src/io.js';

const wholeMax = fileReading.wholeMax;

const DIM = 16;
const N = 12000;
const NQ = 100;
const SHARDS = 3;
const ds = clusteredGaussian({ n: N, nQueries: NQ, dim: DIM, seed: 21 });
const defaultBound = shardBounds.maxBytes;

/** The bound under which an index of N rows with these options needs exactly SHARDS shards. */
function boundFor(metric: 'l2' | 'cosine'): number {
  const o = resolveOptions({ dim: DIM, metric });
  const part = Math.ceil((N / SHARDS) * 1.1);
  const nZones = defaultZoneCount(part);
  const work = workArenaBytes({ n: part, dim: DIM, m: o.pqSubspaces, degree: o.degree, efConstruction: o.efConstruction, nZones, lanes: 2, half: true, linkCapacity: linkCapacity(o.degree) });
  return Math.max(work, installArenaBytes(shapeOf(part, DIM, o.pqSubspaces, o, nZones, true)));
}

/** The distance the index reports between row r and query q: squared L2, 1 - cosine, or 1 - dot. */
function distanceOf(r: Float32Array, q: Float32Array, metric: 'l2' | 'cosine' | 'ip'): number {
  let d = 0;
  let dot = 0;
  for (let j = 0; j < DIM; j++) {
    d += (r[j] - q[j]) ** 2;
    dot += r[j] * q[j];
  }
  return metric === 'l2' ? d : metric === 'ip' ? 1 - dot : 1 - dot / (Math.hypot(...r) * Math.hypot(...q));
}

/** Ids of the k nearest rows of `rows` to query q under `metric`, among those `allowed` admits. */
function bruteForce(rows: Float32Array, ids: ArrayLike<number>, q: Float32Array, k: number, metric: 'l2' | 'cosine' | 'ip', allowed = (_id: number) => true): number[] {
  const n = rows.length / DIM;
  const scored: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    if (allowed(ids[i])) scored.push([distanceOf(rows.subarray(i * DIM, (i + 1) * DIM), q, metric), ids[i]]);
  }
  scored.sort((a, b) => a[0] - b[0]);
  return scored.slice(0, k).map((s) => s[1]);
}

function recall(found: ArrayLike<number>, truth: number[]): number {
  const want = new Set(truth);
  let hit = 0;
  for (let i = 0; i < found.length; i++) if (want.has(found[i])) hit++;
  return hit / truth.length;
}

/** A row of k results is sorted by distance, holds no id twice, and pads with NO_ID / Infinity only at its end. */
function assertWellFormed(ids: Uint32Array, distances: Float32Array): void {
  const seen = new Set<number>();
  let padded = false;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === NO_ID) {
      padded = true;
      assert.equal(distances[i], Infinity);
      continue;
    }
    assert.ok(!padded, 'a result after the padding');
    assert.ok(!seen.has(ids[i]), `id ${ids[i]} twice`);
    seen.add(ids[i]);
    if (i > 0) assert.ok(distances[i] >= distances[i - 1], 'results out of order');
  }
}

const query = (q: number) => ds.queries.subarray(q * DIM, (q + 1) * DIM);
const ids = Uint32Array.from({ length: N }, (_, i) => 1000 + 3 * i);

describe('sharded index', () => {
  let index: ZGQIndex;
  before(async () => {
    shardBounds.maxBytes = boundFor('l2');
    index = new ZGQIndex({ dim: DIM, seed: 4 });
    const phases: string[] = [];
    await index.build(ds.base, { ids, threads: 2, onProgress: (phase) => phases.at(-1) !== phase && phases.push(phase) });
    assert.deepEqual(phases, ['zones', 'graph', 'tune', 'done']);
  });
  after(() => {
    shardBounds.maxBytes = defaultBound;
  });

  test('a build past the bound is split into the fewest shards that fit it; one below it stays one', () => {
    assert.equal(shardCount(N, resolveOptions({ dim: DIM }), 2), SHARDS);
    const stats = index.stats();
    assert.equal(stats.shards, SHARDS);
    assert.equal(stats.size, N);
    assert.equal(index.size, N);
    shardBounds.maxBytes = defaultBound;
    assert.equal(shardCount(N, resolveOptions({ dim: DIM }), 2), 1);
    shardBounds.maxBytes = boundFor('l2');
  });

  test('search and searchBatch (1 and 2 threads) reach recall@10 >= 0.95 against brute force, results well formed', async () => {
    let single = 0;
    const batch1 = await index.searchBatch(ds.queries, 10, { threads: 1 });
    const batch2 = await index.searchBatch(ds.queries, 10, { threads: 2 });
    let batched = 0;
    for (let q = 0; q < NQ; q++) {
      const truth = bruteForce(ds.base, ids, query(q), 10, 'l2');
      const r = index.search(query(q), 10);
      assertWellFormed(r.ids, r.distances);
      single += recall(r.ids, truth);
      const row = batch1.ids.subarray(q * 10, (q + 1) * 10);
      assertWellFormed(row, batch1.distances.subarray(q * 10, (q + 1) * 10));
      assert.deepEqual(row, batch2.ids.subarray(q * 10, (q + 1) * 10));
      batched += recall(row, truth);
    }
    assert.ok(single / NQ >= 0.95, `search recall@10 ${single / NQ}`);
    assert.ok(batched / NQ >= 0.95, `batch recall@10 ${batched / NQ}`);
  });

  test('every id is in exactly one shard: has and get find each, distances are exact', () => {
    for (let i = 0; i < N; i += 7) {
      assert.ok(index.has(ids[i]));
      const v = index.get(ids[i])!;
      for (let j = 0; j < DIM; j++) assert.ok(Math.abs(v[j] - ds.base[i * DIM + j]) <= Math.abs(ds.base[i * DIM + j]) * 2 ** -10 + 1e-6);
    }
    assert.equal(index.has(1001), false);
    // each stored vector finds itself first
    for (let i = 0; i < N; i += 97) {
      const r = index.search(ds.base.subarray(i * DIM, (i + 1) * DIM), 1);
      assert.equal(r.ids[0], ids[i]);
    }
  });

  test('a filter is searched in every shard: only allowed ids, recall against the filtered brute force', async () => {
    const allowed = (id: number) => id % 4 === 0;
    let got = 0;
    const batch = await index.searchBatch(ds.queries.subarray(0, 20 * DIM), 10, { filter: allowed });
    for (let q = 0; q < 20; q++) {
      const truth = bruteForce(ds.base, ids, query(q), 10, 'l2', allowed);
      const r = index.search(query(q), 10, { filter: allowed });
      assert.ok([...r.ids].every((id) => id === NO_ID || allowed(id)));
      assert.deepEqual(batch.ids.subarray(q * 10, (q + 1) * 10), r.ids);
      got += recall(r.ids, truth);
    }
    assert.ok(got / 20 >= 0.95, `filtered recall@10 ${got / 20}`);
    const prepared = index.prepareFilter(new Set([ids[5], ids[6000], ids[11999]]));
    const r = index.search(query(0), 10, { filter: prepared });
    assert.deepEqual([...r.ids].filter((id) => id !== NO_ID).sort(), [ids[5], ids[6000], ids[11999]].sort());
  });

  test('the scan traversal searches every shard exactly', () => {
    for (let q = 0; q < 10; q++) {
      const r = index.search(query(q), 10, { traversal: 'scan' });
      assert.deepEqual([...r.ids], bruteForce(ds.base, ids, query(q), 10, 'l2'));
    }
  });

  test('toBytes / fromBytes and save / load keep every shard: same answers; damage is CORRUPT_FILE', async () => {
    const bytes = index.toBytes();
    const back = ZGQIndex.fromBytes(bytes);
    assert.equal(back.stats().shards, SHARDS);
    assert.deepEqual(back.options.search, index.options.search);
    const dir = await mkdtemp(join(tmpdir(), 'zgq-shards-'));
    try {
      await index.save(join(dir, 'i.zgq'));
      // read a section (a shard) at a time, as files past 1 GiB are
      fileReading.wholeMax = 0;
      const loaded = await ZGQIndex.load(join(dir, 'i.zgq')).finally(() => (fileReading.wholeMax = wholeMax));
      for (let q = 0; q < NQ; q += 9) {
        assert.deepEqual(back.search(query(q), 10), index.search(query(q), 10));
        assert.deepEqual(loaded.search(query(q), 10), index.search(query(q), 10));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // a damaged byte inside a shard's container is named with its shard
    const decoded = decodeContainer(bytes, 'bytes', crc32);
    const shard1 = decoded.sections.get('S001')!.slice();
    shard1[shard1.length - 5] ^= 0x40;
    const damaged = encodeContainer(decoded.meta, [...decoded.sections].map(([tag, b]) => ({ tag, bytes: tag === 'S001' ? shard1 : b })), crc32);
    assert.throws(() => ZGQIndex.fromBytes(damaged), (e: unknown) => e instanceof ZGQError && e.code === 'CORRUPT_FILE' && /shard 1/.test(e.message));
    // a missing shard
    const missing = encodeContainer(decoded.meta, [...decoded.sections].filter(([tag]) => tag !== 'S002').map(([tag, b]) => ({ tag, bytes: b })), crc32);
    assert.throws(() => ZGQIndex.fromBytes(missing), (e: unknown) => e instanceof ZGQError && e.code === 'CORRUPT_FILE' && /S002/.test(e.message));
    // a shard that is itself sharded
    const nested = encodeContainer({ ...decoded.meta, shards: 1 }, [{ tag: 'S000', bytes }], crc32);
    assert.throws(() => ZGQIndex.fromBytes(nested), (e: unknown) => e instanceof ZGQError && e.code === 'CORRUPT_FILE' && /shard 0\): a shard holds shards/.test(e.message));
    // a shard the header does not name
    const extra = encodeContainer({ ...decoded.meta, shards: 2 }, [...decoded.sections].map(([tag, b]) => ({ tag, bytes: b })), crc32);
    assert.throws(() => ZGQIndex.fromBytes(extra), (e: unknown) => e instanceof ZGQError && e.code === 'CORRUPT_FILE' && /S002/.test(e.message));
  });

  test('remove, add (new ids and replaced ones, in place and laid out afresh) and compact across shards', async () => {
    const copy = ZGQIndex.fromBytes(index.toBytes());
    const removed = Array.from({ length: 600 }, (_, i) => ids[i * 20]);
    assert.equal(copy.remove(removed), 600);
    assert.equal(copy.size, N - 600);
    for (let q = 0; q < 30; q++) assert.ok([...copy.search(query(q), 10).ids].every((id) => !removed.includes(id)));
    // in place: a few new vectors; replaced: ids already present get the vectors of other rows
    const fresh = ds.queries.subarray(0, 5 * DIM);
    const freshIds = [7, 8, 9, 10, 11];
    await copy.add(fresh, freshIds);
    const moved = ds.base.subarray(100 * DIM, 110 * DIM); // rows 100..109 under the ids of rows 5001..5010 (none removed)
    const movedIds = Array.from({ length: 10 }, (_, i) => ids[5001 + i]);
    await copy.add(moved, movedIds);
    // laid out afresh: 400 more
    const many = new Float32Array(400 * DIM);
    for (let i = 0; i < many.length; i++) many[i] = ds.base[(i * 7) % ds.base.length] + 0.01;
    await copy.add(many, Array.from({ length: 400 }, (_, i) => 90000 + i));
    assert.equal(copy.size, N - 600 + 5 + 400);
    for (let i = 0; i < 5; i++) assert.equal(copy.search(fresh.subarray(i * DIM, (i + 1) * DIM), 1).ids[0], freshIds[i]);
    for (let i = 0; i < 10; i++) {
      const r = copy.search(moved.subarray(i * DIM, (i + 1) * DIM), 3);
      assertWellFormed(r.ids, r.distances);
      assert.ok([...r.ids].includes(movedIds[i]), `replaced id ${movedIds[i]} not at its new vector`);
      // its old vector no longer answers to it
      assert.notEqual(copy.search(ds.base.subarray((5001 + i) * DIM, (5002 + i) * DIM), 1).ids[0], movedIds[i]);
    }
    // the adds laid out the shards they reached afresh, without their removed vectors; removals
    // after them stay until compact
    await copy.compact();
    const later = Array.from({ length: 90 }, (_, i) => ids[i * 130 + 1]);
    assert.equal(copy.remove(later), 90);
    removed.push(...later);
    assert.equal(copy.stats().deleted, 90);
    await copy.compact();
    assert.equal(copy.stats().deleted, 0);
    assert.equal(copy.size, N - 690 + 405);
    assert.equal(copy.stats().shards, SHARDS);
    let got = 0;
    const keep = (id: number) => !removed.includes(id) && !movedIds.includes(id);
    for (let q = 20; q < 60; q++) {
      const truth = bruteForce(ds.base, ids, query(q), 10, 'l2', keep);
      got += recall(copy.search(query(q), 10, { ef: 128 }).ids.filter((id) => id < 90000 && !freshIds.includes(id)), truth);
    }
    assert.ok(got / 40 >= 0.9, `recall@10 after the changes ${got / 40}`);
  });
});

// the router compares zones by squared distance; under inner product it gets there through the norms
for (const metric of ['cosine', 'ip'] as const) {
  test(`a sharded ${metric} index: recall against brute force, distances as reported by one index`, async () => {
    shardBounds.maxBytes = boundFor(metric === 'cosine' ? 'cosine' : 'l2');
    try {
      const index = new ZGQIndex({ dim: DIM, metric, seed: metric === 'cosine' ? 2 : 3 });
      await index.build(ds.base, { threads: 1 });
      assert.equal(index.stats().shards, SHARDS);
      const rowIds = Array.from({ length: N }, (_, i) => i);
      let got = 0;
      for (let q = 0; q < 40; q++) {
        const r = index.search(query(q), 10);
        assertWellFormed(r.ids, r.distances);
        got += recall(r.ids, bruteForce(ds.base, rowIds, query(q), 10, metric));
        if (metric === 'ip') {
          // reported as 1 - dot, as for one index
          const dot = 1 - distanceOf(ds.base.subarray(r.ids[0] * DIM, (r.ids[0] + 1) * DIM), query(q), 'ip');
          assert.ok(Math.abs(r.distances[0] - (1 - dot)) <= 1e-3 * Math.max(1, Math.abs(dot)));
        }
      }
      console.log(`# ${metric} recall@10 ${got / 40}`);
      assert.ok(got / 40 >= 0.95, `${metric} recall@10 ${got / 40}`);
    } finally {
      shardBounds.maxBytes = defaultBound;
    }
  });
}

test('balancedAssignment: each part within its capacity, rows to their nearest part while it has room', () => {
  // 10 rows, 2 parts: 8 nearer part 0 by a wide margin, 2 nearer part 1
  const n = 10;
  const dist = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    dist[i * 2] = i < 8 ? 1 : 5;
    dist[i * 2 + 1] = i < 8 ? 1 + i * 0.5 : 1;
  }
  const parts = balancedAssignment(dist, n, 2, 6);
  const count = [0, 0];
  for (const p of parts) count[p]++;
  assert.deepEqual(count, [6, 4]);
  // the rows with the widest margin for part 0 (7, 6, ..., 2) keep it; those nearest both (0, 1) move
  assert.deepEqual([...parts], [1, 1, 0, 0, 0, 0, 0, 0, 1, 1]);
  // with room for all, every row goes to its nearest
  assert.deepEqual([...balancedAssignment(dist, n, 2, 10)], [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
});
