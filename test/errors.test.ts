// Bad input gets a ZGQError with a stable code naming the problem; nothing is lost on failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { NO_ID, ZGQError, ZGQIndex } from '../src/index.js';
import { expectCode, expectCodeAsync } from './helpers/expect.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { crc32 as portableCrc32, decodeContainer, encodeContainer } from '../src/format.js';

const dim = 16;
const ds = clusteredGaussian({ n: 600, nQueries: 5, dim, seed: 21 });

test('constructor options are checked', () => {
  expectCode(() => new ZGQIndex({ dim: 0 }), 'INVALID_ARGUMENT', /dim/);
  expectCode(() => new ZGQIndex({ dim: 2.5 }), 'INVALID_ARGUMENT', /dim/);
  expectCode(() => new ZGQIndex({ dim: 8, metric: 'hamming' as never }), 'INVALID_ARGUMENT', /metric/);
  expectCode(() => new ZGQIndex({ dim: 8, pqSubspaces: 9 }), 'INVALID_ARGUMENT', /pqSubspaces/);
  expectCode(() => new ZGQIndex({ dim: 8, alpha: 0.5 }), 'INVALID_ARGUMENT', /alpha/);
  expectCode(() => new ZGQIndex({ dim: 8, search: { ef: 0 } }), 'INVALID_ARGUMENT', /ef/);
  expectCode(() => new ZGQIndex({ dim: 8, search: { traversal: 'EXACT' as never } }), 'INVALID_ARGUMENT', /traversal/);
});

test('build rejects empty, misshapen, non-finite input and bad ids, and keeps the previous index', async () => {
  const index = new ZGQIndex({ dim });
  await expectCodeAsync(() => index.build(new Float32Array(0)), 'EMPTY_INPUT');
  await expectCodeAsync(() => index.build(new Float32Array(dim * 3 + 1)), 'DIMENSION_MISMATCH', /not a multiple of dim 16/);
  // a flat number[] is not an array of rows
  await expectCodeAsync(() => index.build([1, 2, 3] as never), 'INVALID_ARGUMENT', /vectors\[0\] must be an array or typed array of 16 numbers; got number/);
  await expectCodeAsync(() => index.build(new Uint8Array(16) as never), 'INVALID_ARGUMENT', /Float32Array .* Float64Array, or an array of rows; got Uint8Array/);
  const withNaN = ds.base.slice();
  withNaN[5 * dim + 3] = NaN;
  await expectCodeAsync(() => index.build(withNaN), 'NOT_FINITE', /vector 5 .* position 3/);
  const withInf = ds.base.slice();
  withInf[7] = Infinity;
  await expectCodeAsync(() => index.build(withInf), 'NOT_FINITE', /Infinity/);
  const dup = Uint32Array.from({ length: 600 }, (_, i) => i);
  dup[10] = 3;
  await expectCodeAsync(() => index.build(ds.base, { ids: dup }), 'DUPLICATE_ID', /id 3/);
  await expectCodeAsync(() => index.build(ds.base, { ids: [1, 2] }), 'INVALID_ARGUMENT', /ids has 2 entries/);
  await expectCodeAsync(() => index.build(ds.base, { threads: 0 }), 'INVALID_ARGUMENT', /threads/);
  await expectCodeAsync(() => index.build(ds.base, { ids: Array.from({ length: 600 }, (_, i) => (i === 4 ? -1 : i)) }), 'INVALID_ARGUMENT', /ids\[4\]/);
  // an index with nothing in it answers with empty slots (test/lifecycle.test.ts grows one by add)
  assert.ok(index.search(ds.queries.subarray(0, dim), 10).ids.every((id) => id === NO_ID));
  assert.ok((await index.searchBatch(ds.queries, 10)).ids.every((id) => id === NO_ID));
  expectCode(() => index.stats(), 'NOT_BUILT');
  await expectCodeAsync(() => index.save(join(tmpdir(), 'never.zgq')), 'NOT_BUILT');

  await index.build(ds.base);
  const before = index.search(ds.queries.subarray(0, dim), 5);
  await expectCodeAsync(() => index.build(withNaN), 'NOT_FINITE');
  assert.deepEqual(index.search(ds.queries.subarray(0, dim), 5), before, 'a failed build leaves the built index as it was');
  assert.equal(index.size, 600);
});

test('search rejects wrong dimension, non-finite queries, bad k and bad options', async () => {
  const index = new ZGQIndex({ dim, metric: 'cosine' });
  await index.build(ds.base);
  const q = ds.queries.subarray(0, dim);
  expectCode(() => index.search(new Float32Array(dim - 1), 10), 'DIMENSION_MISMATCH', /15 values; the index dim is 16/);
  const bad = q.slice();
  bad[2] = NaN;
  expectCode(() => index.search(bad, 10), 'NOT_FINITE', /position 2/);
  expectCode(() => index.search(new Float32Array(dim), 10), 'INVALID_ARGUMENT', /zero length/);
  for (const k of [-1, 1.5, NaN, 2 ** 21]) expectCode(() => index.search(q, k), 'INVALID_ARGUMENT', /k must be/);
  expectCode(() => index.search(q, 10, { ef: -3 }), 'INVALID_ARGUMENT', /ef/);
  expectCode(() => index.search(q, 10, { nProbe: 0 }), 'INVALID_ARGUMENT', /nProbe/);
  expectCode(() => index.search(q, 10, { rerank: 0.5 }), 'INVALID_ARGUMENT', /rerank/);
  expectCode(() => index.search(q, 10, { traversal: 'graph' as never }), 'INVALID_ARGUMENT', /traversal must be 'pq', 'exact', 'scan' or 'fastscan'/);
  expectCode(() => index.search(null as never, 10), 'INVALID_ARGUMENT');
  await expectCodeAsync(() => index.searchBatch(new Float32Array(dim * 2 + 1), 10), 'DIMENSION_MISMATCH');
  const badBatch = ds.queries.slice();
  badBatch[dim * 3 + 1] = -Infinity;
  await expectCodeAsync(() => index.searchBatch(badBatch, 10), 'NOT_FINITE', /query 3/);
  // every value is checked, the last ones of an odd-length batch too (the check runs four at a time)
  const odd = new ZGQIndex({ dim: 7 });
  await odd.build(Float32Array.from({ length: 7 * 300 }, (_, i) => Math.sin(i)));
  const oddBatch = Float32Array.from({ length: 7 * 3 }, (_, i) => Math.cos(i));
  for (const [at, value] of [[20, -Infinity], [0, NaN], [13, Infinity]] as const) {
    const bad = oddBatch.slice();
    bad[at] = value;
    await expectCodeAsync(() => odd.searchBatch(bad, 5), 'NOT_FINITE', new RegExp(`query ${Math.floor(at / 7)} has a non-finite value ${value} at position ${at % 7}`));
  }
  assert.equal((await odd.searchBatch(oddBatch, 5)).nq, 3);
  for (const threads of [0, 1.5, -2]) await expectCodeAsync(() => index.searchBatch(ds.queries, 10, { threads }), 'INVALID_ARGUMENT', /threads/);
  // a plain number array of the right length is accepted for one query
  assert.equal(index.search(Array.from(q), 3).ids.length, 3);
});

test('load detects truncated, corrupted and foreign files; a failed save keeps the old file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-err-'));
  try {
    const index = new ZGQIndex({ dim });
    await index.build(ds.base);
    const path = join(dir, 'good.zgq');
    await index.save(path);
    const good = readFileSync(path);

    await expectCodeAsync(() => ZGQIndex.load(join(dir, 'missing.zgq')), 'IO', /missing\.zgq/);
    for (const cut of [0, 10, 100, good.length >> 1, good.length - 1]) {
      writeFileSync(join(dir, 'cut.zgq'), good.subarray(0, cut));
      await expectCodeAsync(() => ZGQIndex.load(join(dir, 'cut.zgq')), 'CORRUPT_FILE');
    }
    for (const at of [3, 40, 200, good.length >> 1, good.length - 5]) {
      const flipped = Buffer.from(good);
      flipped[at] ^= 0x10;
      writeFileSync(join(dir, 'flip.zgq'), flipped);
      await assert.rejects(() => ZGQIndex.load(join(dir, 'flip.zgq')), (err: unknown) => err instanceof ZGQError && (err.code === 'CORRUPT_FILE' || err.code === 'UNSUPPORTED_VERSION'));
    }
    writeFileSync(join(dir, 'text.zgq'), 'hello, not an index at all........................................');
    await expectCodeAsync(() => ZGQIndex.load(join(dir, 'text.zgq')), 'CORRUPT_FILE', /not a ZGQ index/);
    // a newer version with a valid header checksum asks for an upgrade; a damaged version byte
    // (checksum not matching) is damage, not a newer file
    const newer = Buffer.from(good);
    newer.writeUInt32LE(99, 8);
    writeFileSync(join(dir, 'damaged-version.zgq'), newer);
    await expectCodeAsync(() => ZGQIndex.load(join(dir, 'damaged-version.zgq')), 'CORRUPT_FILE');
    const sections = newer.readUInt32LE(24);
    newer.writeUInt32LE(crc32(newer.subarray(0, 32 + 32 * sections)), 32 + 32 * sections);
    writeFileSync(join(dir, 'newer.zgq'), newer);
    await expectCodeAsync(() => ZGQIndex.load(join(dir, 'newer.zgq')), 'UNSUPPORTED_VERSION', /99/);

    // saving into a path whose directory is missing fails cleanly
    await expectCodeAsync(() => index.save(join(dir, 'no-such-dir', 'x.zgq')), 'IO');
    // saving over a directory fails and leaves it alone; no temporary files remain
    mkdirSync(join(dir, 'adir.zgq'));
    await expectCodeAsync(() => index.save(join(dir, 'adir.zgq')), 'IO');
    assert.deepEqual(readFileSync(path), good, 'the good file is untouched');
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the stored format version 1 fixture loads and answers as recorded', async () => {
  const fixture = new URL('./fixtures/v1-small.zgq', import.meta.url);
  const expected = JSON.parse(readFileSync(new URL('./fixtures/v1-small.json', import.meta.url), 'utf8')) as { ids: number[]; query: number[] };
  const index = await ZGQIndex.load(fixture.pathname);
  assert.deepEqual(Array.from(index.search(Float32Array.from(expected.query), 5).ids), expected.ids);
});

test('a file whose live nodes repeat an id is refused; a removed node may share its id with its replacement', async () => {
  const dim = 8;
  const n = 400;
  const x = Float32Array.from({ length: n * dim }, (_, i) => Math.sin(i * 0.37) + (i % dim));
  const index = new ZGQIndex({ dim, seed: 2 });
  await index.build(x, { ids: Uint32Array.from({ length: n }, (_, i) => 10 * i), threads: 1 });
  await index.add(x.subarray(0, dim), [30]); // replaces id 30: its old node stays, removed, until compaction
  const bytes = index.toBytes();
  assert.equal(ZGQIndex.fromBytes(bytes).size, n);
  const decoded = decodeContainer(bytes, 'bytes', portableCrc32);
  const sections = [...decoded.sections].map(([tag, b]) => ({ tag, bytes: b.slice() }));
  const ids = new Uint32Array(sections.find((s) => s.tag === 'IDS_')!.bytes.buffer);
  const live = ids.findIndex((id) => id === 50);
  ids[live + 1] = 50;
  expectCode(() => ZGQIndex.fromBytes(encodeContainer(decoded.meta, sections, portableCrc32)), 'CORRUPT_FILE', new RegExp(`id 50 at ${live + 1} is repeated`));
});
