// Re-ranking rows outside the index's memory (src/rows.ts, src/rowfile.ts): ZGQIndex.open reads
// them from the file for each search, load(path, { rows: 'heap' }) keeps them in JS memory. Both must
// answer exactly as the index loaded whole does with the same PQ walk (same candidates, same
// distances), through every search path, and refuse what needs the rows in memory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_ID, ZGQError, ZGQIndex, type SearchOptions } from '../src/index.js';
import { boundForShards, shardBounds } from '../src/shards.js';
import { resolveOptions } from '../src/options.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { decodeContainer, crc32 } from '../src/format.js';

const DIM = 24;
const N = 6000;
const NQ = 60;
const K = 10;
const ds = clusteredGaussian({ n: N, nQueries: NQ, dim: DIM, seed: 5 });
const query = (q: number) => ds.queries.subarray(q * DIM, (q + 1) * DIM);
const ids = Uint32Array.from({ length: N }, (_, i) => 1000 + 3 * i);

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zgq-rows-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every query answered alike (ids and distances) by `a` with options `oa` and `b` with `ob`. */
function sameAnswers(a: ZGQIndex, b: ZGQIndex, oa: SearchOptions, ob: SearchOptions = oa): void {
  for (let q = 0; q < NQ; q++) {
    const x = a.search(query(q), K, oa);
    const y = b.search(query(q), K, ob);
    assert.deepEqual(y.ids, x.ids, `query ${q}`);
    assert.deepEqual(y.distances, x.distances, `query ${q}`);
  }
}

/** A saved index of ds under `options` (and its build options), loaded whole. */
async function saved(name: string, options: Partial<Parameters<typeof resolveOptions>[0]> = {}): Promise<{ path: string; whole: ZGQIndex }> {
  const index = new ZGQIndex({ dim: DIM, seed: 3, ...options });
  await index.build(ds.base, { ids, threads: 1 });
  const path = join(dir, `${name}.zgq`);
  await index.save(path);
  return { path, whole: await ZGQIndex.load(path) };
}

for (const storage of ['float16', 'float32'] as const) {
  for (const metric of ['l2', 'cosine'] as const) {
    describe(`rows outside memory, ${storage} rows, ${metric}`, () => {
      let path: string;
      let whole: ZGQIndex;
      let opened: ZGQIndex;
      let heap: ZGQIndex;
      before(async () => {
        ({ path, whole } = await saved(`${storage}-${metric}`, { storage, metric }));
        opened = await ZGQIndex.open(path);
        heap = await ZGQIndex.load(path, { rows: 'heap' });
      });
      after(() => opened.close());

      test('search, batches on 1 and 2 threads and get() answer as the whole index does with the same PQ walk', async () => {
        const pq: SearchOptions = { ...opened.options.search, traversal: 'pq' };
        sameAnswers(whole, opened, pq, {});
        sameAnswers(whole, heap, pq, {});
        const want = await whole.searchBatch(ds.queries, K, { ...pq, threads: 1 });
        for (const index of [opened, heap]) {
          for (const threads of [1, 2]) {
            const got = await index.searchBatch(ds.queries, K, { threads });
            assert.deepEqual(got.ids, want.ids);
            assert.deepEqual(got.distances, want.distances);
          }
          for (const id of [ids[0], ids[N - 1], ids[1234]]) assert.deepEqual(index.get(id), whole.get(id));
          assert.equal(index.has(ids[7]), true);
          assert.equal(index.get(7), undefined);
        }
      });

      test('filters: a walk through a bitmap, an exact scan of a few allowed rows, a prepared filter, an empty one', async () => {
        const pq: SearchOptions = { ...opened.options.search, traversal: 'pq' };
        // two thirds of the ids: the walk through a bitmap; a quarter: scanned exactly, their rows
        // copied in and ranked 1,024 at a time (src/filter.ts scanFiltered decides)
        const twoThirds = (id: number) => ((id - 1000) / 3) % 3 !== 0;
        const quarter = new Set(Array.from({ length: 1500 }, (_, i) => ids[i * 4]));
        for (const filter of [twoThirds, quarter, new Set<number>()]) {
          for (const index of [opened, heap]) {
            sameAnswers(whole, index, { ...pq, filter }, { filter });
            const prepared = index.prepareFilter(filter);
            const a = index.search(query(0), K, { filter: prepared });
            assert.deepEqual(a.ids, whole.search(query(0), K, { ...pq, filter }).ids);
            const batch = await index.searchBatch(ds.queries, K, { filter });
            const want = await whole.searchBatch(ds.queries, K, { ...pq, filter });
            assert.deepEqual(batch.ids, want.ids);
          }
        }
        const none = opened.search(query(1), K, { filter: new Set<number>() });
        assert.ok(none.ids.every((id) => id === NO_ID));
      });

      test('stats name where the rows live and count them only in JS memory', () => {
        const w = whole.stats();
        const o = opened.stats();
        const h = heap.stats();
        assert.equal(w.rows, 'memory');
        assert.equal(o.rows, 'file');
        assert.equal(h.rows, 'heap');
        assert.equal(o.memory.vectors, 0);
        assert.equal(h.memory.vectors, N * DIM * (storage === 'float16' ? 2 : 4));
        assert.ok(o.memory.total < w.memory.total - N * DIM);
        assert.equal(o.size, N);
      });
    });
  }
}

describe('an index served with its rows outside memory is read-only and walks on PQ codes', () => {
  let opened: ZGQIndex;
  let heap: ZGQIndex;
  let exactDefaults: SearchOptions;
  before(async () => {
    const { path, whole } = await saved('exact', { search: { traversal: 'exact', ef: 24, rerank: 4 } });
    exactDefaults = whole.options.search;
    opened = await ZGQIndex.open(path);
    heap = await ZGQIndex.load(path, { rows: 'heap' });
  });
  after(() => opened.close());

  test('defaults of the exact walk become the PQ walk with a pool as large as the re-ranking', () => {
    assert.equal(exactDefaults.traversal, 'exact');
    for (const index of [opened, heap]) {
      assert.deepEqual(index.options.search, { ...exactDefaults, traversal: 'pq', ef: 40 });
    }
  });

  test('every change, save and tune fail with READ_ONLY; traversals that read rows with INVALID_ARGUMENT', async () => {
    for (const index of [opened, heap]) {
      const readOnly = (e: unknown) => e instanceof ZGQError && e.code === 'READ_ONLY' && /load it with ZGQIndex\.load/.test(e.message);
      await assert.rejects(index.add(ds.base.subarray(0, DIM), [1]), readOnly);
      assert.throws(() => index.remove([ids[0]]), readOnly);
      await assert.rejects(index.compact(), readOnly);
      await assert.rejects(index.build(ds.base.subarray(0, DIM * 200)), readOnly);
      await assert.rejects(index.tune({ recall: 0.9 }), readOnly);
      await assert.rejects(index.save(join(dir, 'copy.zgq')), readOnly);
      assert.throws(() => index.toBytes(), readOnly);
      assert.equal(index.has(ids[0]), true);
      for (const traversal of ['exact', 'scan', 'fastscan'] as const) {
        assert.throws(() => index.search(query(0), K, { traversal }), (e: unknown) => e instanceof ZGQError && e.code === 'INVALID_ARGUMENT' && e.message.includes(`'${traversal}'`));
        await assert.rejects(index.searchBatch(ds.queries, K, { traversal }), (e: unknown) => e instanceof ZGQError && e.code === 'INVALID_ARGUMENT');
      }
    }
  });

  test('bad load options are named; a closed index fails its searches with IO', async () => {
    const { path } = await saved('closing');
    for (const rows of ['disk', 1, true]) {
      await assert.rejects(ZGQIndex.load(path, { rows: rows as never }), (e: unknown) => e instanceof ZGQError && e.code === 'INVALID_ARGUMENT' && /rows must be/.test(e.message));
    }
    await assert.rejects(ZGQIndex.load(path, null as never), (e: unknown) => e instanceof ZGQError && e.code === 'INVALID_ARGUMENT');
    await assert.rejects(ZGQIndex.open(join(dir, 'missing.zgq')), (e: unknown) => e instanceof ZGQError && e.code === 'IO' && /not found/.test(e.message));
    const index = await ZGQIndex.open(path);
    assert.equal(index.search(query(0), K).ids.length, K);
    index.close();
    index.close();
    assert.throws(() => index.search(query(0), K), (e: unknown) => e instanceof ZGQError && e.code === 'IO' && /closed/.test(e.message));
  });
});

describe('opening damaged files', () => {
  test('a damaged section other than the rows is CORRUPT_FILE; damaged rows are not read (load finds them)', async () => {
    const { path } = await saved('damaged');
    const bytes = new Uint8Array(await readFile(path));
    const decoded = decodeContainer(bytes, 'x', crc32);
    const at = (tag: string) => decoded.sections.get(tag)!.byteOffset;
    const graph = bytes.slice();
    graph[at('ADJC') + 5] ^= 0x40;
    await writeFile(join(dir, 'graph.zgq'), graph);
    await assert.rejects(ZGQIndex.open(join(dir, 'graph.zgq')), (e: unknown) => e instanceof ZGQError && e.code === 'CORRUPT_FILE' && /'ADJC' checksum mismatch/.test(e.message));
    const rows = bytes.slice();
    rows[at('VF16') + 3] ^= 0x01;
    await writeFile(join(dir, 'rows.zgq'), rows);
    const opened = await ZGQIndex.open(join(dir, 'rows.zgq'));
    opened.close();
    await assert.rejects(ZGQIndex.load(join(dir, 'rows.zgq')), (e: unknown) => e instanceof ZGQError && e.code === 'CORRUPT_FILE' && /'VF16' checksum mismatch/.test(e.message));
    await writeFile(join(dir, 'cut.zgq'), bytes.subarray(0, at('VF16') + 100));
    await assert.rejects(ZGQIndex.open(join(dir, 'cut.zgq')), (e: unknown) => e instanceof ZGQError && e.code === 'CORRUPT_FILE');
  });
});

describe('a sharded index opened', () => {
  test('each shard reads its rows from its own section; answers as the whole index does', async () => {
    const o = resolveOptions({ dim: DIM, seed: 3 });
    shardBounds.maxBytes = boundForShards(N, o, 2, 3);
    let path: string;
    let whole: ZGQIndex;
    try {
      ({ path, whole } = await saved('sharded'));
    } finally {
      shardBounds.maxBytes = 3 * 1024 ** 3;
    }
    assert.equal(whole.stats().shards, 3);
    const opened = await ZGQIndex.open(path);
    try {
      assert.equal(opened.stats().shards, 3);
      assert.equal(opened.stats().memory.vectors, 0);
      sameAnswers(whole, opened, { ...opened.options.search, traversal: 'pq' }, {});
      const got = await opened.searchBatch(ds.queries, K, { threads: 2 });
      const want = await whole.searchBatch(ds.queries, K, { ...opened.options.search, traversal: 'pq', threads: 2 });
      assert.deepEqual(got.ids, want.ids);
      for (const id of [ids[0], ids[N - 1]]) assert.deepEqual(opened.get(id), whole.get(id));
    } finally {
      opened.close();
    }
  });
});
