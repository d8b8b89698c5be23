// ZGQCollection (src/collection.ts, src/docs.ts, src/where.ts): documents over an index, filtered on
// metadata. Filtered answers against brute force over the documents the filter admits; the field
// indexes against a direct evaluation of each filter (random filters on random metadata, through
// adds, changes and deletes); upsert's all-or-nothing rules; files and bytes round trips, damage
// and a plain index's file; concurrent updates of one file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ZGQCollection, ZGQIndex, type CollectionRecord, type Metadata, type Where } from '../src/index.js';
import { DocStore } from '../src/docs.js';
import { matches, planWhere, WhereIndex } from '../src/where.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { boundForShards, shardBounds } from '../src/shards.js';
import { resolveOptions } from '../src/options.js';
import { crc32, decodeContainer, encodeContainer } from '../src/format.js';
import { expectCode, expectCodeAsync } from './helpers/expect.js';

const DIM = 16;
const N = 6000;
const NQ = 40;
const ds = clusteredGaussian({ n: N, nQueries: NQ, dim: DIM, seed: 11 });
const vectorOf = (i: number) => ds.base.subarray(i * DIM, (i + 1) * DIM);
const queryOf = (q: number) => ds.queries.subarray(q * DIM, (q + 1) * DIM);
const GENRES = ['jazz', 'rock', 'folk', 'pop'];

function record(i: number): CollectionRecord {
  return {
    id: i % 2 === 0 ? `doc-${i}` : i,
    vector: vectorOf(i),
    metadata: { n: i, genre: GENRES[i % 4], tags: i % 10 === 0 ? ['rare', 'x'] : ['x'], nested: { shard: i % 7 } },
    text: `text of ${i}`,
  };
}

let dir: string;
let collection: ZGQCollection;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zgq-collection-'));
  collection = new ZGQCollection({ dim: DIM, metric: 'l2', seed: 3 });
  await collection.upsert(Array.from({ length: N }, (_, i) => record(i)));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** recall@k of the collection's filtered answers against brute force over the admitted documents. */
function filteredRecall(c: ZGQCollection, where: Where | undefined, k: number): number {
  const plan = where === undefined ? planWhere({}) : planWhere(where);
  let found = 0;
  let expected = 0;
  for (let q = 0; q < NQ; q++) {
    const query = queryOf(q);
    const truth: { id: string | number; d: number }[] = [];
    for (let i = 0; i < N; i++) {
      const doc = c.get(i % 2 === 0 ? `doc-${i}` : i);
      if (!doc || !matches(plan, doc.metadata)) continue;
      let d = 0;
      for (let j = 0; j < DIM; j++) d += (doc.vector[j] - query[j]) ** 2;
      truth.push({ id: doc.id, d });
    }
    truth.sort((a, b) => a.d - b.d);
    const want = new Set(truth.slice(0, k).map((t) => t.id));
    const hits = c.query(query, { k, where });
    for (const hit of hits) assert.ok(matches(plan, hit.metadata), `query ${q}: ${JSON.stringify(hit.id)} does not satisfy the filter`);
    assert.equal(hits.length, Math.min(k, truth.length), `query ${q}: ${hits.length} hits for ${truth.length} admitted`);
    found += hits.filter((h) => want.has(h.id)).length;
    expected += want.size;
  }
  return expected === 0 ? 1 : found / expected;
}

describe('filtered queries', () => {
  const cases: [string, Where][] = [
    ['about 1 %', { n: { $lt: 60 } }],
    ['10 %', { tags: 'rare' }],
    ['25 %, equality', { genre: 'jazz' }],
    ['50 %, $in', { genre: { $in: ['rock', 'folk'] } }],
    ['$or of a range and a nested field', { $or: [{ n: { $gte: 5000 } }, { 'nested.shard': 3 }] }],
    ['$not and $ne', { $not: { genre: 'pop' }, 'nested.shard': { $ne: 0 } }],
  ];
  for (const [name, where] of cases) {
    test(`recall@10 against brute force over the admitted documents: ${name}`, () => {
      const recall = filteredRecall(collection, where, 10);
      assert.ok(recall >= 0.95, `recall@10 ${recall.toFixed(3)}`);
    });
  }

  test('a filter admitting nothing answers nothing; k past the admitted answers all of them', () => {
    assert.deepEqual(collection.query(queryOf(0), { where: { genre: 'blues' } }), []);
    const few = collection.query(queryOf(0), { k: 50, where: { n: { $lt: 8 } } });
    assert.deepEqual(new Set(few.map((h) => (h.metadata as Metadata).n)), new Set([0, 1, 2, 3, 4, 5, 6, 7]));
  });

  test('hits carry what was asked for', () => {
    const [full] = collection.query(vectorOf(4), { k: 1 });
    assert.equal(full.id, 'doc-4');
    assert.equal(full.text, 'text of 4');
    assert.equal((full.metadata as Metadata).genre, 'jazz');
    assert.equal(full.vector, undefined);
    assert.ok(Object.isFrozen(full.metadata), 'metadata handed out is frozen');
    const [lean] = collection.query(vectorOf(4), { k: 1, includeMetadata: false, includeText: false, includeVectors: true });
    assert.deepEqual(Object.keys(lean).sort(), ['distance', 'id', 'vector']);
    // as stored: binary16 rows, within 2^-11 of the vector's length
    const norm = Math.hypot(...vectorOf(4));
    assert.ok(lean.vector!.every((v, j) => Math.abs(v - vectorOf(4)[j]) <= norm / 2048), 'the stored vector');
  });

  test('count, ids, and bad filters named', () => {
    assert.equal(collection.count(), N);
    assert.deepEqual(collection.ids({ n: { $lt: 4 } }), [0, 1, 'doc-2', 3].map((_, i) => record(i).id));
    assert.equal(collection.ids().length, N);
    assert.equal(collection.count({ genre: 'jazz' }), N / 4);
    assert.equal(collection.count({ n: { $gte: 10, $lte: 19 } }), 10);
    expectCode(() => collection.query(queryOf(0), { where: { n: { $between: [1, 2] } } as unknown as Where }), 'INVALID_ARGUMENT', /where\.n\.\$between: unknown operator/);
    expectCode(() => collection.count({ $or: [] }), 'INVALID_ARGUMENT', /where\.\$or: must be a non-empty array/);
    expectCode(() => collection.count({ n: { $gt: 1, $lt: 'z' } }), 'INVALID_ARGUMENT', /compares with a string/);
    expectCode(() => collection.count({ n: Number.NaN }), 'INVALID_ARGUMENT', /where\.n/);
    expectCode(() => collection.count({ 'a..b': 1 }), 'INVALID_ARGUMENT', /empty part/);
    expectCode(() => collection.query(queryOf(0), { filter: new Set([1]) } as never), 'INVALID_ARGUMENT', /'where'/);
    // a filter is checked before the cache of compiled filters is consulted
    collection.count({ n: null });
    expectCode(() => collection.count({ n: Number.NaN }), 'INVALID_ARGUMENT', /where\.n/);
    expectCode(() => collection.count({ n: new Date() as never }), 'INVALID_ARGUMENT', /where\.n/);
  });
});

describe('the field indexes', () => {
  const scalar = fc.oneof(fc.constantFrom('a', 'b', 'c', '1'), fc.integer({ min: -3, max: 3 }), fc.boolean(), fc.constant(null));
  const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.record({ v: scalar }));
  const metadata = fc.dictionary(fc.constantFrom('f', 'g', 'h'), value, { maxKeys: 3 });
  const leaf: fc.Arbitrary<Where> = fc.oneof(
    fc.record({ f: scalar }),
    fc.record({ g: fc.record({ $in: fc.array(scalar, { minLength: 1, maxLength: 3 }) }) }),
    fc.record({ h: fc.record({ $nin: fc.array(scalar, { maxLength: 2 }) }) }),
    fc.record({ 'f.v': fc.record({ $ne: scalar }) }),
    fc.record({ g: fc.record({ $gte: fc.integer({ min: -3, max: 3 }), $lt: fc.integer({ min: -3, max: 3 }) }) }),
    fc.record({ h: fc.record({ $gt: fc.constantFrom('', 'a', 'b') }) }),
    fc.record({ f: fc.record({ $exists: fc.boolean() }) }),
  ) as fc.Arbitrary<Where>;
  const where: fc.Arbitrary<Where> = fc.letrec((tie) => ({
    node: fc.oneof({ maxDepth: 3 }, leaf, fc.record({ $and: fc.array(tie('node'), { minLength: 1, maxLength: 3 }) }), fc.record({ $or: fc.array(tie('node'), { minLength: 1, maxLength: 3 }) }), fc.record({ $not: tie('node') })),
  })).node as fc.Arbitrary<Where>;

  test('select what a direct evaluation admits, through adds, changes and deletes', () => {
    fc.assert(
      fc.property(fc.array(metadata, { minLength: 1, maxLength: 40 }), fc.array(metadata, { maxLength: 10 }), fc.array(where, { minLength: 1, maxLength: 4 }), (first, later, filters) => {
        const store = new DocStore();
        const index = new WhereIndex(store);
        const put = (m: Metadata) => {
          const label = store.reserve(1);
          store.put(label, `d${label}`, m, undefined);
          index.added(label, m);
        };
        first.forEach(put);
        const check = () => {
          for (const w of filters) {
            const plan = planWhere(w);
            const { bits, count } = index.select(plan);
            let expected = 0;
            store.forEachLive((label, m) => {
              const want = matches(plan, m);
              if (want) expected++;
              assert.equal(((bits[label >>> 5] >>> (label & 31)) & 1) === 1, want, `label ${label} ${JSON.stringify(m)} under ${JSON.stringify(w)}`);
            });
            assert.equal(count, expected);
          }
        };
        check(); // builds the indexes the filters name
        later.forEach(put); // appended to them
        check();
        store.drop(0);
        if (store.labelLimit > 2) {
          store.put(1, 'd1', later[0] ?? {}, undefined); // changed in place
          index.changed();
        }
        check();
      }),
      { numRuns: 200, seed: 7 },
    );
  });
});

describe('upsert and delete', () => {
  test('replace a vector, keep or clear metadata and text, change metadata alone', async () => {
    const c = new ZGQCollection({ dim: DIM, metric: 'l2', seed: 1 });
    await c.upsert([record(0), record(1), record(2)]);
    await c.upsert({ id: 'doc-0', vector: vectorOf(100) });
    assert.deepEqual(c.get('doc-0')!.vector, Float32Array.from(vectorOf(100)));
    assert.equal((c.get('doc-0')!.metadata as Metadata).n, 0, 'metadata kept');
    assert.equal(c.get('doc-0')!.text, 'text of 0', 'text kept');
    assert.equal(c.query(vectorOf(100), { k: 1 })[0].id, 'doc-0');
    assert.equal(c.size, 3);
    await c.upsert({ id: 1, metadata: { genre: 'blues' }, text: null });
    assert.deepEqual(c.get(1)!.metadata, { genre: 'blues' });
    assert.equal(c.get(1)!.text, undefined);
    assert.equal(c.count({ genre: 'blues' }), 1);
    assert.equal(c.count({ genre: 'rock' }), 0, 'the old value no longer matches');
    assert.equal(c.query(vectorOf(1), { k: 1 })[0].id, 1, 'vector kept');
    await c.upsert({ id: 'doc-2', vector: vectorOf(2), metadata: null });
    assert.equal(c.get('doc-2')!.metadata, undefined);
  });

  test('compact reclaims deleted and replaced vectors and keeps every document', async () => {
    const c = new ZGQCollection({ dim: DIM, metric: 'l2', seed: 1 });
    await c.upsert(Array.from({ length: 5000 }, (_, i) => record(i)));
    await c.upsert(Array.from({ length: 10 }, (_, i) => ({ id: record(2000 + i).id, vector: vectorOf(i) })));
    await c.delete(Array.from({ length: 1000 }, (_, i) => record(i).id));
    assert.equal(c.stats().index!.deleted, 1010, 'deleted and replaced vectors await compaction');
    await c.compact();
    assert.equal(c.stats().index!.deleted, 0);
    assert.equal(c.size, 4000);
    assert.equal(c.query(vectorOf(3), { k: 1 })[0].id, record(2003).id);
    assert.deepEqual(c.get(1001)!.metadata, record(1001).metadata);
    assert.equal(c.count({ tags: 'rare' }), 400);
  });

  test('metadata is JSON as it is written: array holes are null, a "__proto__" key is a key', async () => {
    const c = new ZGQCollection({ dim: DIM, metric: 'cosine' });
    // eslint-disable-next-line no-sparse-arrays
    await c.upsert({ id: 'holes', vector: vectorOf(0), metadata: { tags: [, 'a'] as never } });
    assert.deepEqual(c.get('holes')!.metadata, { tags: [null, 'a'] });
    assert.equal(c.count({ tags: null }), 1);
    await c.upsert({ id: 'proto', vector: vectorOf(1), metadata: JSON.parse('{"__proto__": {"polluted": "yes"}, "k": 1}') as Metadata });
    const m = c.get('proto')!.metadata as Record<string, unknown>;
    assert.deepEqual(Object.keys(m), ['__proto__', 'k']);
    assert.equal(m.polluted, undefined, 'not a prototype');
    assert.equal(c.count({ '__proto__.polluted': 'yes' }), 1);
    const again = ZGQCollection.fromBytes(await c.toBytes());
    assert.deepEqual(Object.keys(again.get('proto')!.metadata!), ['__proto__', 'k']);
    assert.equal(again.count({ tags: null }), 1);
    await expectCodeAsync(c.upsert([record(5), { id: 'zero', vector: new Float32Array(DIM) }]), 'INVALID_ARGUMENT', /records\[1\]\.vector has zero length/);
  });

  test('1 and "1" are different ids; bad ids are refused', async () => {
    const c = new ZGQCollection({ dim: DIM, metric: 'l2' });
    await c.upsert([{ id: 1, vector: vectorOf(0) }, { id: '1', vector: vectorOf(1) }]);
    assert.equal(c.size, 2);
    assert.deepEqual(c.get(1)!.vector, Float32Array.from(vectorOf(0)));
    for (const id of [1.5, '', Number.MAX_SAFE_INTEGER + 1, null, {}]) {
      await expectCodeAsync(c.upsert({ id: id as never, vector: vectorOf(0) }), 'INVALID_ARGUMENT', /records\[0\]: an id must be|1 to 1024 characters/);
    }
    assert.equal(await c.delete([1, 'missing']), 1);
    assert.equal(c.has(1), false);
    assert.equal(c.has('1'), true);
  });

  test('a call with any bad record changes nothing', async () => {
    const c = new ZGQCollection({ dim: DIM, metric: 'l2' });
    await c.upsert([record(0), record(1)]);
    const bad: [CollectionRecord[], string, RegExp][] = [
      [[record(2), { id: 'x', vector: new Float32Array(DIM - 1) }], 'DIMENSION_MISMATCH', /records\[1\]\.vector has 15 values/],
      [[record(2), { id: 'x', vector: new Float32Array(DIM).fill(Number.NaN) }], 'NOT_FINITE', /records\[1\]\.vector\[0\]/],
      [[record(2), record(2)], 'DUPLICATE_ID', /records\[1\] repeats id "doc-2"/],
      [[record(2), { id: 'new', metadata: { a: 1 } }], 'INVALID_ARGUMENT', /records\[1\] \(id "new"\) has no vector/],
      [[record(2), { id: 'x', vector: vectorOf(3), metadata: { when: new Date() } as never }], 'INVALID_ARGUMENT', /metadata\.when is a Date|metadata holds JSON values only/],
      [[record(2), { id: 'x', vector: vectorOf(3), metadata: { score: Infinity } }], 'INVALID_ARGUMENT', /metadata\.score is Infinity/],
      [[record(2), { id: 'x', vector: vectorOf(3), metadata: { big: 'x'.repeat(70_000) } }], 'INVALID_ARGUMENT', /over the limit of 65536/],
      [[record(2), { id: 'x', vector: vectorOf(3), metadata: [1, 2] as never }], 'INVALID_ARGUMENT', /metadata must be a plain object/],
    ];
    for (const [records, code, pattern] of bad) {
      await expectCodeAsync(c.upsert(records), code as never, pattern);
      assert.equal(c.size, 2);
      assert.equal(c.has('doc-2'), false);
    }
    // the metadata given is copied: changing the caller's object later changes nothing held
    const metadata = { genre: 'jazz' };
    await c.upsert({ id: 'm', vector: vectorOf(5), metadata });
    metadata.genre = 'rock';
    assert.equal(c.count({ genre: 'jazz' }), 2);
  });

  test('writes apply in call order', async () => {
    const c = new ZGQCollection({ dim: DIM, metric: 'l2' });
    const calls = [c.upsert(record(0)), c.delete('doc-0'), c.upsert({ ...record(0), metadata: { v: 2 } }), c.upsert({ id: 'doc-0', metadata: { v: 3 } })];
    await Promise.all(calls);
    assert.deepEqual(c.get('doc-0')!.metadata, { v: 3 });
    assert.equal(c.size, 1);
  });
});

describe('files and bytes', () => {
  test('save and load keep every document and answer alike', async () => {
    const path = join(dir, 'docs.zgq');
    await collection.save(path);
    const loaded = await ZGQCollection.load(path);
    assert.equal(loaded.size, N);
    for (const i of [0, 1, 999, 5998]) assert.deepEqual(loaded.get(record(i).id), collection.get(record(i).id));
    for (let q = 0; q < 10; q++) {
      const where = { genre: GENRES[q % 4] };
      assert.deepEqual(loaded.query(queryOf(q), { where }), collection.query(queryOf(q), { where }));
    }
    // served with the rows left in the file: the same filtered answers from the PQ walk
    const opened = await ZGQCollection.load(path, { rows: 'file' });
    try {
      const pq = { traversal: 'pq' as const, ef: 96, nProbe: 8, rerank: 8 };
      for (let q = 0; q < 5; q++) {
        const where = { genre: GENRES[q % 4] };
        assert.deepEqual(opened.query(queryOf(q), { where, ...pq }), loaded.query(queryOf(q), { where, ...pq }));
      }
      await expectCodeAsync(opened.upsert(record(0)), 'READ_ONLY');
      await expectCodeAsync(opened.upsert({ id: record(0).id, metadata: { changed: true } }), 'READ_ONLY');
      assert.equal(opened.count({ changed: true }), 0);
    } finally {
      opened.close();
    }
    // the file is an index too: its ids are the documents' labels; written back as a plain index it
    // would lose its documents, so that is refused
    const index = await ZGQIndex.load(path);
    assert.equal(index.size, N);
    await expectCodeAsync(index.save(path), 'INVALID_ARGUMENT', /'docs'.*change it with ZGQCollection/);
    expectCode(() => index.toBytes(), 'INVALID_ARGUMENT', /'docs'/);
    await expectCodeAsync(ZGQIndex.update(path, (i) => void i.remove([0])), 'INVALID_ARGUMENT', /'docs'/);
    assert.equal((await ZGQCollection.load(path)).size, N, 'the file is unchanged');
    const bytes = await collection.toBytes();
    assert.equal(ZGQCollection.fromBytes(bytes).size, N);
  });

  test('long texts are written in several blocks and read back whole', async () => {
    const c = new ZGQCollection({ dim: DIM, metric: 'l2' });
    const long = (i: number) => `${i}`.padEnd(1 << 20, 'é"\n');
    await c.upsert(Array.from({ length: 12 }, (_, i) => ({ id: i, vector: vectorOf(i), text: long(i) })));
    const docs = decodeContainer(await c.toBytes(), 'bytes', crc32).sections.get('docs')!;
    let blocks = 0;
    for (let at = 0; at < docs.length; blocks++) at += 4 + new DataView(docs.buffer, docs.byteOffset).getUint32(at, true);
    assert.ok(blocks > 2, `${blocks} blocks (the header and the records)`);
    const again = ZGQCollection.fromBytes(await c.toBytes());
    for (let i = 0; i < 12; i++) assert.equal(again.get(i)!.text, long(i));
  });

  test('a small collection saves (trained on what is staged) and loads', async () => {
    const c = new ZGQCollection({ dim: DIM, metric: 'cosine' });
    await c.upsert([record(0), record(1), record(2)]);
    const again = ZGQCollection.fromBytes(await c.toBytes());
    assert.deepEqual(again.query(vectorOf(1), { k: 3 }).map((h) => h.id), c.query(vectorOf(1), { k: 3 }).map((h) => h.id));
    assert.equal(again.get(1)!.text, 'text of 1');
  });

  test("a plain index's file, damaged documents, documents that disagree with the index", async () => {
    const plain = new ZGQIndex({ dim: DIM, metric: 'l2' });
    await plain.build(ds.base.subarray(0, 200 * DIM), Uint32Array.from({ length: 200 }, (_, i) => i));
    expectCode(() => ZGQCollection.fromBytes(plain.toBytes()), 'INVALID_ARGUMENT', /without documents/);

    const small = new ZGQCollection({ dim: DIM, metric: 'l2' });
    await small.upsert(Array.from({ length: 300 }, (_, i) => record(i)));
    const bytes = await small.toBytes();
    const decoded = decodeContainer(bytes, 'bytes', crc32);
    const sections = [...decoded.sections].map(([tag, b]) => ({ tag, bytes: b.slice() }));
    const withDocs = (docs: Uint8Array) => encodeContainer(decoded.meta, sections.map((s) => (s.tag === 'docs' ? { tag: 'docs', bytes: docs } : s)), crc32);
    const docs = sections.find((s) => s.tag === 'docs')!.bytes;

    const flipped = bytes.slice();
    const docsAt = bytes.length - docs.length; // the last section
    flipped[docsAt + 20] ^= 1;
    expectCode(() => ZGQCollection.fromBytes(flipped), 'CORRUPT_FILE', /checksum/);
    expectCode(() => ZGQCollection.fromBytes(withDocs(docs.subarray(0, docs.length - 3))), 'CORRUPT_FILE', /section 'docs'/);
    const other = new ZGQCollection({ dim: DIM, metric: 'l2' });
    await other.upsert(Array.from({ length: 299 }, (_, i) => record(i)));
    const otherDocs = decodeContainer(await other.toBytes(), 'bytes', crc32).sections.get('docs')!.slice();
    expectCode(() => ZGQCollection.fromBytes(withDocs(otherDocs)), 'CORRUPT_FILE', /299 documents and 300 vectors/);
    const twice = docs.slice();
    const at = Buffer.from(twice).indexOf('"doc-2"');
    twice.set(new TextEncoder().encode('"doc-0"'), at); // same length: only the id changes
    expectCode(() => ZGQCollection.fromBytes(withDocs(twice)), 'CORRUPT_FILE', /id "doc-0" twice/);
  });

  test('the released collection format (version 1) loads and answers as recorded', async () => {
    const expected = JSON.parse(await readFile(new URL('./fixtures/collection-v1.json', import.meta.url), 'utf8')) as {
      query: number[]; where: Where; hits: (string | number)[]; size: number; doc2: Metadata; doc5: { metadata: Metadata; text: string };
    };
    const c = await ZGQCollection.load(new URL('./fixtures/collection-v1.zgq', import.meta.url).pathname);
    assert.equal(c.size, expected.size);
    assert.deepEqual(c.query(Float32Array.from(expected.query), { k: 5, where: expected.where }).map((h) => h.id), expected.hits);
    assert.deepEqual(c.get('doc-2')!.metadata, expected.doc2);
    assert.deepEqual({ metadata: c.get('doc-5')!.metadata, text: c.get('doc-5')!.text }, expected.doc5);
    assert.equal(c.has('doc-1') || c.has(3), false, 'deleted documents stay deleted');
  });

  test('a sharded collection: filtered recall, and its documents saved beside the shards', async () => {
    const options = { dim: DIM, metric: 'l2' as const, seed: 3 };
    const before = shardBounds.maxBytes;
    shardBounds.maxBytes = boundForShards(N, resolveOptions(options), 2, 3);
    const sharded = new ZGQCollection(options);
    try {
      await sharded.upsert(Array.from({ length: N }, (_, i) => record(i)), { threads: 2 });
    } finally {
      shardBounds.maxBytes = before;
    }
    assert.equal(sharded.stats().index!.shards, 3);
    for (const where of [{ genre: 'rock' }, { n: { $lt: 60 } }] as Where[]) {
      const recall = filteredRecall(sharded, where, 10);
      assert.ok(recall >= 0.95, `${JSON.stringify(where)}: recall@10 ${recall.toFixed(3)}`);
    }
    const path = join(dir, 'sharded.zgq');
    await sharded.save(path);
    const loaded = await ZGQCollection.load(path);
    assert.equal(loaded.stats().index!.shards, 3);
    assert.equal(loaded.size, N);
    for (let q = 0; q < 10; q++) assert.deepEqual(loaded.query(queryOf(q), { where: { tags: 'rare' } }), sharded.query(queryOf(q), { where: { tags: 'rare' } }));
  });

  test('concurrent updates of one file all land', async () => {
    const path = join(dir, 'shared.zgq');
    const create = { dim: DIM, metric: 'l2' as const };
    await ZGQCollection.update(path, (c) => c.upsert(Array.from({ length: 50 }, (_, i) => record(i))), { create });
    await Promise.all(Array.from({ length: 4 }, (_, w) => ZGQCollection.update(path, (c) => c.upsert({ id: `w${w}`, vector: vectorOf(100 + w), metadata: { writer: w } }))));
    const c = await ZGQCollection.load(path);
    assert.equal(c.size, 54);
    assert.equal(c.count({ writer: { $exists: true } }), 4);
    await writeFile(join(dir, 'keep'), await readFile(path)); // the file stays readable as bytes
  });
});
