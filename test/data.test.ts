import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { ZGQError } from '../src/errors.js';
import { Rng } from '../src/random.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import {
  bvecsToFloat32,
  encodeBvecs,
  encodeFvecs,
  encodeIvecs,
  parseBvecs,
  parseFvecs,
  parseIdxImages,
  parseIvecs,
  readFvecs,
  readIdxImages,
  readIvecs,
  writeFvecs,
  writeIvecs,
} from '../src/data/vecs.js';
import { bruteForceKnn, recallAtK, type KnnMetric } from '../src/data/groundtruth.js';
import { l2 as sqL2 } from '../src/kernels/reference/distance.js';
import { loadSiftsmall } from './helpers/siftsmall.js';
import { dump } from 'npyjs';
import { readIdFile, readVectorFile } from '../src/data/files.js';
import { readJsonVectors } from '../src/data/json.js';
import { readHdf5Vectors } from '../src/data/hdf5.js';
import { readCsvVectors } from '../src/data/csv.js';
import h5wasm from 'h5wasm/node';

const FMNIST_DIR = fileURLToPath(new URL('../../shared/data/fashion-mnist/', import.meta.url));

function bytesOf(a: Float32Array | Int32Array | Uint32Array | Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Asserts that `fn` throws (or rejects with) a ZGQError with `code`, and returns it for message checks. */
async function expectZgq(fn: () => unknown, code: string): Promise<ZGQError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ZGQError, `expected ZGQError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ZGQError ${code}, nothing was thrown`);
}

// ---------------------------------------------------------------------------------------------
// synthetic data

test('clusteredGaussian: same seed gives identical bytes, different seed differs', () => {
  const opts = { n: 500, nQueries: 40, dim: 16, seed: 123, outlierFraction: 0.25 };
  const a = clusteredGaussian(opts);
  const b = clusteredGaussian(opts);
  assert.ok(bytesOf(a.base).equals(bytesOf(b.base)));
  assert.ok(bytesOf(a.queries).equals(bytesOf(b.queries)));
  assert.ok(bytesOf(a.queryKind!).equals(bytesOf(b.queryKind!)));
  assert.equal(a.name, b.name);

  const c = clusteredGaussian({ ...opts, seed: 124 });
  assert.ok(!bytesOf(a.base).equals(bytesOf(c.base)));
  assert.ok(!bytesOf(a.queries).equals(bytesOf(c.queries)));
});

test('clusteredGaussian: shapes, defaults and outlier count', () => {
  const d = clusteredGaussian({ n: 3000, nQueries: 50, dim: 8, outlierFraction: 0.1 });
  assert.equal(d.nBase, 3000);
  assert.equal(d.nQueries, 50);
  assert.equal(d.dim, 8);
  assert.equal(d.base.length, 3000 * 8);
  assert.equal(d.queries.length, 50 * 8);
  assert.equal(d.centres!.length, 10 * 8, 'default clusters = max(10, round(n/1000)) = 10');
  assert.equal(d.queryKind!.reduce((s, v) => s + v, 0), 5);
  const big = clusteredGaussian({ n: 25_400, nQueries: 0, dim: 2 });
  assert.equal(big.centres!.length, 25 * 2);
  assert.ok(d.base.every(Number.isFinite) && d.queries.every(Number.isFinite));
});

test('clusteredGaussian: invalid options throw INVALID_ARGUMENT naming the option', async () => {
  const good = { n: 10, nQueries: 2, dim: 4 };
  const cases: [Record<string, unknown>, string][] = [
    [{ ...good, n: 0 }, 'n'],
    [{ ...good, n: 2.5 }, 'n'],
    [{ ...good, nQueries: -1 }, 'nQueries'],
    [{ ...good, dim: 0 }, 'dim'],
    [{ ...good, dim: Number.NaN }, 'dim'],
    [{ ...good, clusters: 0 }, 'clusters'],
    [{ ...good, spread: -0.1 }, 'spread'],
    [{ ...good, spread: Infinity }, 'spread'],
    [{ ...good, outlierFraction: 1.5 }, 'outlierFraction'],
    [{ ...good, outlierFraction: Number.NaN }, 'outlierFraction'],
    [{ ...good, seed: 0.5 }, 'seed'],
  ];
  for (const [opts, name] of cases) {
    const err = await expectZgq(() => clusteredGaussian(opts as never), 'INVALID_ARGUMENT');
    assert.match(err.message, new RegExp(`'${name}'`));
  }
});

test('clusteredGaussian: queries are fresh draws, not copies of base vectors', () => {
  const d = clusteredGaussian({ n: 2000, nQueries: 100, dim: 16, seed: 5 });
  const nn = bruteForceKnn(d.base, d.nBase, d.queries, d.nQueries, d.dim, 1, 'l2');
  for (let q = 0; q < d.nQueries; q++) assert.ok(nn.distances[q] > 1e-3, `query ${q} duplicates base ${nn.ids[q]}`);
});

test('clusteredGaussian: cluster structure (spread, mixture vs outlier queries)', () => {
  const spread = 0.3;
  const dim = 32;
  const d = clusteredGaussian({ n: 4000, nQueries: 200, dim, seed: 11, spread, outlierFraction: 0.25 });
  const centres = d.centres!;
  const assign = d.baseCluster!;

  // Mean squared distance of a base vector to its own centre is spread^2 * dim in expectation
  // (chi-square with dim degrees of freedom, scaled); 4000 * 32 samples give ~1% standard error.
  let sum = 0;
  for (let i = 0; i < d.nBase; i++) sum += sqL2(d.base, i * dim, centres, assign[i] * dim, dim);
  const expected = spread * spread * dim;
  const meanSq = sum / d.nBase;
  assert.ok(Math.abs(meanSq - expected) / expected < 0.05, `mean sq dist to centre ${meanSq}, expected ~${expected}`);

  // Nearest base vector of a mixture query is within its cluster (~2 spread^2 dim at most);
  // an outlier query is ~dim away from every centre.
  const nn = bruteForceKnn(d.base, d.nBase, d.queries, d.nQueries, dim, 1, 'l2');
  let maxMixture = 0;
  let minOutlier = Infinity;
  let nOut = 0;
  for (let q = 0; q < d.nQueries; q++) {
    if (d.queryKind![q] === 1) {
      nOut++;
      minOutlier = Math.min(minOutlier, nn.distances[q]);
    } else {
      maxMixture = Math.max(maxMixture, nn.distances[q]);
    }
  }
  assert.equal(nOut, 50);
  assert.ok(maxMixture < 2 * spread * spread * dim * 1.5, `mixture nn dist ${maxMixture}`);
  assert.ok(minOutlier > 3 * maxMixture, `outlier nn dist ${minOutlier} vs mixture ${maxMixture}`);
});

// ---------------------------------------------------------------------------------------------
// texmex / IDX formats

test('fvecs / ivecs / bvecs: write then read round trip', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zgq-data-test-'));
  try {
    const rng = new Rng(3);
    const dim = 7;
    const n = 13;
    const f = new Float32Array(n * dim);
    for (let i = 0; i < f.length; i++) f[i] = rng.normal() * 1e3;
    f[5] = -0;
    f[6] = 3.4028234663852886e38; // float32 max
    const fPath = join(dir, 'x.fvecs');
    await writeFvecs(fPath, f, dim);
    const fr = await readFvecs(fPath);
    assert.equal(fr.n, n);
    assert.equal(fr.dim, dim);
    assert.ok(bytesOf(fr.data).equals(bytesOf(f)), 'fvecs bytes survive the round trip');

    const iv = new Int32Array(n * dim);
    for (let i = 0; i < iv.length; i++) iv[i] = (rng.nextU32() | 0) - (i % 2);
    const iPath = join(dir, 'x.ivecs');
    await writeIvecs(iPath, iv, dim);
    const ir = await readIvecs(new URL(`file://${iPath}`));
    assert.equal(ir.n, n);
    assert.equal(ir.dim, dim);
    assert.deepEqual(ir.data, iv);

    // On-disk layout: int32 dim, then little-endian values.
    const raw = encodeFvecs(new Float32Array([1.5, -2]), 2);
    assert.deepEqual([...raw], [2, 0, 0, 0, 0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0]);

    const bv = new Uint8Array([0, 1, 255, 7, 8, 9]);
    const br = parseBvecs(encodeBvecs(bv, 3), 'b');
    assert.equal(br.n, 2);
    assert.equal(br.dim, 3);
    assert.deepEqual(br.data, bv);
    assert.deepEqual(bvecsToFloat32(br.data), new Float32Array([0, 1, 255, 7, 8, 9]));

    // Empty file = zero records.
    const empty = parseFvecs(new Uint8Array(0), 'empty');
    assert.equal(empty.n, 0);
    assert.equal(empty.data.length, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('fvecs parser copes with an unaligned input view', () => {
  const enc = encodeFvecs(new Float32Array([1, 2, 3, 4, 5, 6]), 3);
  const backing = new Uint8Array(enc.length + 1);
  backing.set(enc, 1);
  const r = parseFvecs(backing.subarray(1), 'unaligned');
  assert.deepEqual(r.data, new Float32Array([1, 2, 3, 4, 5, 6]));
});

test('corrupt vecs files throw CORRUPT_FILE naming file, offset and problem', async () => {
  const good = encodeFvecs(new Float32Array(12).fill(1), 4); // 3 records of 20 bytes

  let err = await expectZgq(() => parseFvecs(good.subarray(0, good.length - 3), 'trunc.fvecs'), 'CORRUPT_FILE');
  assert.match(err.message, /trunc\.fvecs/);
  assert.match(err.message, /byte offset 40/);
  assert.match(err.message, /record 2/);

  err = await expectZgq(() => parseFvecs(good.subarray(0, 2), 'tiny.fvecs'), 'CORRUPT_FILE');
  assert.match(err.message, /tiny\.fvecs/);

  const badDim = good.slice();
  new DataView(badDim.buffer).setInt32(0, 0, true);
  err = await expectZgq(() => parseFvecs(badDim, 'zero.fvecs'), 'CORRUPT_FILE');
  assert.match(err.message, /dimension 0/);
  new DataView(badDim.buffer).setInt32(0, -5, true);
  await expectZgq(() => parseIvecs(badDim, 'neg.ivecs'), 'CORRUPT_FILE');
  new DataView(badDim.buffer).setInt32(0, (1 << 20) + 1, true);
  err = await expectZgq(() => parseFvecs(badDim, 'huge.fvecs'), 'CORRUPT_FILE');
  assert.match(err.message, /huge\.fvecs/);

  const mixed = good.slice();
  new DataView(mixed.buffer).setInt32(20, 5, true);
  err = await expectZgq(() => parseFvecs(mixed, 'mixed.fvecs'), 'CORRUPT_FILE');
  assert.match(err.message, /record 1 at byte offset 20 has dimension 5/);

  // A genuinely different-dim record in the middle (so the size no longer matches either).
  const a = encodeIvecs(new Int32Array([1, 2, 3]), 3);
  const b = encodeIvecs(new Int32Array([4, 5]), 2);
  const joined = new Uint8Array([...a, ...b, ...a]);
  err = await expectZgq(() => parseIvecs(joined, 'joined.ivecs'), 'CORRUPT_FILE');
  assert.match(err.message, /record 1 at byte offset 16 has dimension 2/);

  // Through the file reader too, so the path is in the message.
  const dir = await mkdtemp(join(tmpdir(), 'zgq-data-test-'));
  try {
    const p = join(dir, 'bad.fvecs');
    await writeFile(p, good.subarray(0, 45));
    err = await expectZgq(() => readFvecs(p), 'CORRUPT_FILE');
    assert.ok(err.message.includes(p), err.message);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('missing files throw IO naming the path', async () => {
  const p = join(tmpdir(), `zgq-definitely-missing-${process.pid}.fvecs`);
  for (const read of [readFvecs, readIvecs, readIdxImages]) {
    const err = await expectZgq(() => read(p), 'IO');
    assert.ok(err.message.includes(p), err.message);
  }
  await expectZgq(() => writeFvecs(join(p, 'nope', 'x.fvecs'), new Float32Array(2), 2), 'IO');
});

test('IDX image parser: header checks and gzip input', async () => {
  const header = (magic: number, n: number, r: number, c: number): Uint8Array => {
    const h = new Uint8Array(16);
    const v = new DataView(h.buffer);
    v.setInt32(0, magic, false);
    v.setInt32(4, n, false);
    v.setInt32(8, r, false);
    v.setInt32(12, c, false);
    return h;
  };
  const pixels = new Uint8Array(2 * 6).map((_, i) => i * 20);
  const ok = new Uint8Array([...header(2051, 2, 2, 3), ...pixels]);
  const r = parseIdxImages(ok, 'ok');
  assert.equal(r.n, 2);
  assert.equal(r.dim, 6);
  assert.deepEqual(r.data, pixels);

  let err = await expectZgq(() => parseIdxImages(new Uint8Array([...header(2049, 2, 2, 3), ...pixels]), 'lab'), 'CORRUPT_FILE');
  assert.match(err.message, /labels/);
  err = await expectZgq(() => parseIdxImages(ok.subarray(0, ok.length - 1), 'short'), 'CORRUPT_FILE');
  assert.match(err.message, /short/);
  await expectZgq(() => parseIdxImages(new Uint8Array([...header(2051, 2, 0, 3), ...pixels]), 'zero'), 'CORRUPT_FILE');
  await expectZgq(() => parseIdxImages(ok.subarray(0, 10), 'hdr'), 'CORRUPT_FILE');

  const dir = await mkdtemp(join(tmpdir(), 'zgq-data-test-'));
  try {
    const p = join(dir, 'img-idx3-ubyte.gz');
    await writeFile(p, gzipSync(ok));
    const g = await readIdxImages(p);
    assert.deepEqual(g.data, pixels);
    const bad = join(dir, 'bad.gz');
    await writeFile(bad, gzipSync(ok).subarray(0, 20));
    err = await expectZgq(() => readIdxImages(bad), 'CORRUPT_FILE');
    assert.ok(err.message.includes(bad), err.message);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// the files users have (issue 17): .npy of any integer dtype, JSON lines and JSON arrays

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'zgq-files-test-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function npyFile(dir: string, name: string, data: Parameters<typeof dump>[0], shape: number[]): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, new Uint8Array(dump(data, shape)));
  return p;
}

test('.npy ids: every integer dtype whose values fit, int64 included; others refused by value', async () => {
  await withDir(async (dir) => {
    const want = [0, 5, 127];
    const arrays = [Int8Array, Uint8Array, Int16Array, Uint16Array, Int32Array, Uint32Array, Float64Array];
    for (const T of arrays) {
      assert.deepEqual([...(await readIdFile(await npyFile(dir, `${T.name}.npy`, T.from(want), [3])))], want, T.name);
    }
    assert.deepEqual([...(await readIdFile(await npyFile(dir, 'i8.npy', BigInt64Array.from(want.map(BigInt)), [3])))], want);
    // the top of the id range, exactly (float32 would round 4294967293 to 4294967296)
    const top = [4294967294, 4294967293, 16777217];
    assert.deepEqual([...(await readIdFile(await npyFile(dir, 'u8.npy', BigUint64Array.from(top.map(BigInt)), [3])))], top);
    assert.deepEqual([...(await readIdFile(await npyFile(dir, 'u4.npy', Uint32Array.from(top), [3])))], top);
    assert.deepEqual([...(await readIdFile(await npyFile(dir, 'column.npy', BigInt64Array.from([1n, 2n]), [2, 1])))], [1, 2]);

    const refused: [string, Parameters<typeof dump>[0], RegExp][] = [
      ['neg.npy', BigInt64Array.from([1n, -1n]), /id -1 at position 1 is not an integer in \[0, 4294967294\]/],
      ['big.npy', BigInt64Array.from([0n, 1n, 4294967295n]), /id 4294967295 at position 2/],
      ['huge.npy', BigUint64Array.from([2n ** 63n]), /id 9223372036854775808 at position 0/],
      ['half.npy', Float64Array.from([1, 2.5]), /id 2\.5 at position 1/],
      ['i4neg.npy', Int32Array.from([-3]), /id -3 at position 0/],
    ];
    for (const [name, data, message] of refused) {
      const p = await npyFile(dir, name, data, [data.length]);
      const err = await expectZgq(() => readIdFile(p), 'INVALID_ARGUMENT');
      assert.match(err.message, message);
      assert.ok(err.message.includes(p), err.message);
    }
    const grid = await npyFile(dir, 'grid.npy', Int32Array.from([1, 2, 3, 4]), [2, 2]);
    assert.match((await expectZgq(() => readIdFile(grid), 'CORRUPT_FILE')).message, /id files hold a 1-D array; found shape \[2, 2\]/);
  });
});

test('.npy vectors: int64 and other integers converted exactly to float32, or refused naming row, column and value', async () => {
  await withDir(async (dir) => {
    const values = [0, -1, 16777216, -16777216, 2 ** 40, 3];
    for (const [name, data] of [['i8.npy', BigInt64Array.from(values.map(BigInt))], ['f8.npy', Float64Array.from(values)]] as const) {
      const r = await readVectorFile(await npyFile(dir, name, data, [3, 2]));
      assert.deepEqual([r.n, r.dim], [3, 2]);
      assert.deepEqual([...r.data], values, name);
    }
    const u8 = await readVectorFile(await npyFile(dir, 'u8.npy', BigUint64Array.from([1n, 2n ** 63n]), [1, 2]));
    assert.deepEqual([...u8.data], [1, 2 ** 63]);
    const refused: [string, Parameters<typeof dump>[0], RegExp][] = [
      ['i8odd.npy', BigInt64Array.from([1n, 2n, 3n, 16777217n]), /value 16777217 at row 1, column 1 is not exactly representable as float32/],
      ['i8far.npy', BigInt64Array.from([0n, 0n, 2n ** 62n + 1n, 0n]), /value 4611686018427387905 at row 1, column 0/],
      ['u4.npy', Uint32Array.from([4294967295, 0, 0, 0]), /value 4294967295 at row 0, column 0/],
    ];
    for (const [name, data, message] of refused) {
      const p = await npyFile(dir, name, data, [2, 2]);
      const err = await expectZgq(() => readVectorFile(p), 'INVALID_ARGUMENT');
      assert.match(err.message, message);
      assert.ok(err.message.includes(p), err.message);
    }
  });
});

test('JSON lines: "vector", "embedding" or "values"; ids all or none; string ids refused naming the line', async () => {
  await withDir(async (dir) => {
    const p = join(dir, 'v.jsonl');
    const lines = [
      '{"id": 3, "embedding": [1, 2], "text": "a"}',
      '',
      '{"id": 4, "vector": [3, 4.5]}',
      '{"values": [5, 6], "id": 9, "metadata": {"k": [1, 2, 3]}}',
    ];
    await writeFile(p, '\ufeff' + lines.join('\r\n') + '\n');
    const r = await readVectorFile(p);
    assert.deepEqual([r.n, r.dim, [...r.data], [...r.ids!]], [3, 2, [1, 2, 3, 4.5, 5, 6], [3, 4, 9]]);

    const cases: [string, string, RegExp][] = [
      ['{"id": "doc-17", "embedding": [1]}', 'INVALID_ARGUMENT', /line 1: "id" is the string "doc-17"; an index takes integer ids.*zgq collection upsert/],
      ['[1, 2]\n{"id": -1, "vector": [1, 2]}', 'INVALID_ARGUMENT', /line 2: "id" -1 is not an integer in \[0, 4294967294\]/],
      ['{"id": 1, "vector": [1]}\n{"vector": [2]}', 'CORRUPT_FILE', /line 2 has no "id"; line 1 has one: give every row an "id" or none/],
      ['{"vector": [1]}\n{"id": 2, "vector": [2]}', 'CORRUPT_FILE', /line 2 has an "id"; line 1 has none/],
      ['{"vector": [1], "embedding": [1]}', 'CORRUPT_FILE', /line 1 has both "vector" and "embedding"; keep one/],
      ['{"id": 1}', 'CORRUPT_FILE', /line 1 has no "vector", "embedding" or "values" array/],
      ['[1, "2"]', 'CORRUPT_FILE', /line 1: value 1 is "2", not a number/],
      ['[1, 1e39]', 'INVALID_ARGUMENT', /line 1: value 1 is 1e\+39, outside the float32 range/],
    ];
    for (const [text, code, message] of cases) {
      await writeFile(p, text + '\n');
      assert.match((await expectZgq(() => readVectorFile(p), code)).message, message);
    }
  });
});

test('JSON array files: [[...]] and [{"id", "embedding"}, ...], pretty-printed or not, read in chunks', async () => {
  await withDir(async (dir) => {
    const rng = new Rng(17);
    const n = 3000;
    const dim = 5;
    const want = new Float32Array(n * dim).map(() => rng.normal());
    const rows = Array.from({ length: n }, (_, i) => Array.from(want.subarray(i * dim, (i + 1) * dim)));
    // metadata with brackets, commas, escaped quotes and multi-byte text across chunk boundaries
    const docs = rows.map((v, i) => ({ id: 7 * i, note: `[x], "q" \\ é ${'ü'.repeat(i % 50)}`, embedding: v, tags: [{ a: ']' }] }));
    for (const [name, text] of [
      ['plain.json', JSON.stringify(rows)],
      ['pretty.json', JSON.stringify(rows, null, 2)],
      ['docs.json', JSON.stringify(docs)],
      ['docs-pretty.json', '\ufeff' + JSON.stringify(docs, null, 1) + '\n\n'],
    ]) {
      const p = join(dir, name);
      await writeFile(p, text);
      const r = await readVectorFile(p);
      assert.deepEqual([r.n, r.dim], [n, dim], name);
      assert.ok(bytesOf(r.data).equals(bytesOf(want)), `${name}: values`);
      assert.equal(r.data.length, n * dim, `${name}: trimmed to the rows read`);
      if (name.startsWith('docs')) assert.deepEqual([...r.ids!], docs.map((d) => d.id));
      else assert.equal(r.ids, null);
    }

    // every character at a chunk boundary once: escapes, multi-byte text, brackets in strings
    const few = join(dir, 'few.json');
    await writeFile(few, JSON.stringify(docs.slice(0, 40), null, 1));
    for (const chunkBytes of [1, 2, 3, 5, 7, 64]) {
      const r = await readJsonVectors(few, { chunkBytes });
      assert.ok(bytesOf(r.data).equals(bytesOf(want.subarray(0, 40 * dim))), `chunks of ${chunkBytes}: values`);
      assert.deepEqual([...r.ids!], docs.slice(0, 40).map((d) => d.id));
    }

    const p = join(dir, 'a.json');
    await writeFile(p, '[]');
    assert.equal((await readVectorFile(p)).n, 0);
    const cases: [string, string, RegExp][] = [
      ['[[1, 2], [3]]', 'CORRUPT_FILE', /row 2 \(line 1\) has 1 numbers; earlier rows have 2/],
      ['[[1, 2],\n [3, 4]] x', 'CORRUPT_FILE', /line 2: unexpected 'x' after the closing '\]'/],
      ['[[1, 2],\n [3, 4', 'CORRUPT_FILE', /ends inside row 2 \(line 2\)/],
      ['[[1, 2],\n [3, 4]', 'CORRUPT_FILE', /ends before the closing '\]' \(after row 2\)/],
      ['[[1, 2] [3, 4]]', 'CORRUPT_FILE', /line 1: expected ',' or '\]' after row 1, found '\['/],
      ['[[1, 2], 3]', 'CORRUPT_FILE', /row 2 \(line 1\) is not an array or an object/],
      ['[[1, 2],\n\n  [1, 2}]', 'CORRUPT_FILE', /row 2 \(line 3\) is not valid JSON/],
      ['[{"id": "a", "embedding": [1]}]', 'INVALID_ARGUMENT', /row 1 \(line 1\): "id" is the string "a"; an index takes integer ids.*zgq collection upsert/],
    ];
    for (const [text, code, message] of cases) {
      await writeFile(p, text);
      const err = await expectZgq(() => readVectorFile(p), code);
      assert.match(err.message, message);
      assert.ok(err.message.startsWith(`${p}: `), err.message);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// brute force and recall

// HDF5 in the ann-benchmarks layout and CSV/TSV (issue 17); fixtures written here with h5wasm and as text

async function hdf5File(dir: string, name: string, datasets: Record<string, { data: Float32Array | Float64Array | Int32Array; shape: number[]; chunks?: number[] }>): Promise<string> {
  await h5wasm.ready;
  const p = join(dir, name);
  const f = new h5wasm.File(p, 'w');
  try {
    for (const [key, d] of Object.entries(datasets)) {
      f.create_dataset({ name: key, data: d.data, shape: d.shape, ...(d.chunks ? { chunks: d.chunks, compression: 'gzip' as const } : {}) });
    }
  } finally {
    f.close();
  }
  return p;
}

test('HDF5 (ann-benchmarks layout): train / test by name, float32 gzip-chunked and float64, read across slices', async () => {
  await withDir(async (dir) => {
    const train = Float32Array.from({ length: 37 * 5 }, (_, i) => i * 0.25 - 3);
    const test64 = Float64Array.from({ length: 4 * 5 }, (_, i) => 1 / (i + 1));
    const p = await hdf5File(dir, 'glove.hdf5', {
      train: { data: train, shape: [37, 5], chunks: [8, 5] },
      test: { data: test64, shape: [4, 5] },
      neighbors: { data: new Int32Array(4 * 3), shape: [4, 3] },
      distances: { data: new Float32Array(4 * 3), shape: [4, 3] },
    });
    for (const sliceRows of [undefined, 1, 6, 37, 100]) {
      const r = await readHdf5Vectors(p, 'train', { sliceRows });
      assert.equal(r.n, 37);
      assert.equal(r.dim, 5);
      assert.deepEqual(r.data, train, `sliceRows ${sliceRows}`);
    }
    const q = await readHdf5Vectors(p, 'test', { sliceRows: 3 });
    assert.deepEqual(q.data, Float32Array.from(test64));
    // readVectorFile: .hdf5 and .h5, 'train' unless a dataset is named
    const viaCli = await readVectorFile(p);
    assert.deepEqual(viaCli.data, train);
    assert.equal(viaCli.ids, null);
    assert.equal((await readVectorFile(p, { dataset: 'test' })).n, 4);
    const h5 = join(dir, 'copy.h5');
    await writeFile(h5, await readFile(p));
    assert.equal((await readVectorFile(h5)).n, 37);
  });
});

test('HDF5 errors: missing dataset lists those present; integer, 1-D and non-HDF5 files refused; float64 out of range named', async () => {
  await withDir(async (dir) => {
    const p = await hdf5File(dir, 'a.hdf5', {
      train: { data: new Float32Array(6), shape: [3, 2] },
      neighbors: { data: new Int32Array(6), shape: [3, 2] },
      flat: { data: new Float32Array(6), shape: [6] },
      big: { data: Float64Array.from([0, 1, 2, 3e39]), shape: [2, 2] },
    });
    let err = await expectZgq(() => readHdf5Vectors(p, 'test'), 'CORRUPT_FILE');
    assert.match(err.message, /a\.hdf5: no dataset 'test'; it has .*'train'/);
    assert.match(err.message, /'neighbors'/);
    err = await expectZgq(() => readHdf5Vectors(p, 'neighbors'), 'CORRUPT_FILE');
    assert.match(err.message, /dataset 'neighbors' has type <i; vectors are float32 or float64/);
    err = await expectZgq(() => readHdf5Vectors(p, 'flat'), 'CORRUPT_FILE');
    assert.match(err.message, /dataset 'flat' has shape \[6\]; vectors are a 2-D array/);
    err = await expectZgq(() => readHdf5Vectors(p, 'big'), 'INVALID_ARGUMENT');
    assert.match(err.message, /dataset 'big', row 1, column 1: value 3e\+39 is outside the float32 range/);
    const notHdf5 = join(dir, 'not.hdf5');
    await writeFile(notHdf5, 'train,test\n1,2\n');
    err = await expectZgq(() => readVectorFile(notHdf5), 'CORRUPT_FILE');
    assert.match(err.message, /not\.hdf5: not an HDF5 file/);
    err = await expectZgq(() => readVectorFile(join(dir, 'missing.h5')), 'IO');
    assert.match(err.message, /missing\.h5/);
  });
});

test('CSV / TSV: optional header, optional id column, quoted cells, CRLF and a byte-order mark', async () => {
  await withDir(async (dir) => {
    const plain = join(dir, 'plain.csv');
    await writeFile(plain, '1,2,3\n4.5,-6e-1,+7\n\n.5,1E2,0\n');
    let r = await readVectorFile(plain);
    assert.deepEqual([r.n, r.dim, r.ids], [3, 3, null]);
    assert.deepEqual(Array.from(r.data), [1, 2, 3, 4.5, -0.6, 7, 0.5, 100, 0].map(Math.fround));

    const header = join(dir, 'header.csv');
    await writeFile(header, '\ufeffx0,x1\r\n1,2\r\n"3",4\r\n');
    r = await readVectorFile(header);
    assert.deepEqual([r.n, r.dim, r.ids, Array.from(r.data)], [2, 2, null, [1, 2, 3, 4]]);

    const withIds = join(dir, 'ids.tsv');
    await writeFile(withIds, 'ID\ta\tb\n10\t1\t2\n4294967294\t3\t4\n');
    r = await readVectorFile(withIds);
    assert.deepEqual([r.n, r.dim, Array.from(r.data)], [2, 2, [1, 2, 3, 4]]);
    assert.deepEqual(Array.from(r.ids!), [10, 4294967294]);

    // many rows: past the small first blocks, values kept exactly
    const many = Float32Array.from({ length: 3000 * 3 }, (_, i) => Math.fround(Math.sin(i)));
    const manyPath = join(dir, 'many.csv');
    await writeFile(manyPath, Array.from({ length: 3000 }, (_, i) => Array.from(many.subarray(i * 3, i * 3 + 3)).join(',')).join('\n'));
    const big = await readCsvVectors(manyPath);
    assert.equal(big.n, 3000);
    assert.deepEqual(big.data, many);
  });
});

test('CSV errors: ragged rows, a non-number cell by line and column (and header name), bad ids, quotes', async () => {
  await withDir(async (dir) => {
    const file = async (name: string, text: string) => {
      const p = join(dir, name);
      await writeFile(p, text);
      return p;
    };
    let err = await expectZgq(async () => readVectorFile(await file('ragged.csv', '1,2,3\n4,5\n')), 'CORRUPT_FILE');
    assert.match(err.message, /ragged\.csv: line 2 has 2 cells; line 1 has 3/);
    err = await expectZgq(async () => readVectorFile(await file('raggedh.csv', 'a,b\n1,2\n3,4,5\n')), 'CORRUPT_FILE');
    assert.match(err.message, /line 3 has 3 cells; the header \(line 1\) has 2/);
    err = await expectZgq(async () => readVectorFile(await file('word.csv', 'a,b,c\n1,2,3\n4,five,6\n')), 'CORRUPT_FILE');
    assert.match(err.message, /word\.csv: line 3, column 2 \("b"\): "five" is not a number/);
    err = await expectZgq(async () => readVectorFile(await file('empty.tsv', '1\t2\n3\t\n')), 'CORRUPT_FILE');
    assert.match(err.message, /empty\.tsv: line 2, column 2: "" is not a number/);
    err = await expectZgq(async () => readVectorFile(await file('hex.csv', '1,2\n0x1f,2\n')), 'CORRUPT_FILE');
    assert.match(err.message, /line 2, column 1: "0x1f" is not a number/);
    err = await expectZgq(async () => readVectorFile(await file('badid.csv', 'id,x\n1,2\n-3,4\n')), 'INVALID_ARGUMENT');
    assert.match(err.message, /badid\.csv: line 3, column 1 \("id"\): "-3" is not an integer in \[0, 4294967294\]/);
    err = await expectZgq(async () => readVectorFile(await file('range.csv', '1,1e39\n')), 'INVALID_ARGUMENT');
    assert.match(err.message, /range\.csv: line 1, column 2: value 1e39 is outside the float32 range/);
    err = await expectZgq(async () => readVectorFile(await file('quote.csv', '1,2\n"3,4\n')), 'CORRUPT_FILE');
    assert.match(err.message, /quote\.csv: .*quote/i);
    err = await expectZgq(() => readVectorFile(join(dir, 'missing.csv')), 'IO');
    assert.match(err.message, /missing\.csv/);
  });
});

/** Straightforward reference: full distance row, stable sort by (distance, id). */
function naiveKnn(
  base: Float32Array,
  nBase: number,
  queries: Float32Array,
  nQueries: number,
  dim: number,
  k: number,
  metric: KnnMetric,
): { ids: number[][]; dists: number[][] } {
  const norm = (x: Float32Array, o: number): number => {
    let s = 0;
    for (let j = 0; j < dim; j++) s += x[o + j] * x[o + j];
    return Math.sqrt(s);
  };
  const ids: number[][] = [];
  const dists: number[][] = [];
  for (let q = 0; q < nQueries; q++) {
    const row: { id: number; d: number }[] = [];
    for (let b = 0; b < nBase; b++) {
      let d: number;
      if (metric === 'l2') {
        d = sqL2(queries, q * dim, base, b * dim, dim);
      } else {
        let dot = 0;
        for (let j = 0; j < dim; j++) dot += queries[q * dim + j] * base[b * dim + j];
        d = metric === 'ip' ? 1 - dot : 1 - dot / (norm(queries, q * dim) * norm(base, b * dim));
      }
      row.push({ id: b, d });
    }
    row.sort((x, y) => x.d - y.d || x.id - y.id);
    ids.push(row.slice(0, k).map((e) => e.id));
    dists.push(row.slice(0, k).map((e) => e.d));
  }
  return { ids, dists };
}

test('bruteForceKnn matches a naive reference for l2, ip and cosine', () => {
  const rng = new Rng(99);
  // Odd sizes exercise every kernel tail: dim % 4, nBase odd, nQueries not a multiple of 4/16.
  for (const [nBase, nQueries, dim, k] of [
    [301, 37, 13, 10],
    [64, 5, 4, 64],
    [9, 1, 1, 3],
  ]) {
    const base = new Float32Array(nBase * dim);
    const queries = new Float32Array(nQueries * dim);
    for (let i = 0; i < base.length; i++) base[i] = rng.normal();
    for (let i = 0; i < queries.length; i++) queries[i] = rng.normal();
    for (const metric of ['l2', 'ip', 'cosine'] as const) {
      const got = bruteForceKnn(base, nBase, queries, nQueries, dim, k, metric);
      const ref = naiveKnn(base, nBase, queries, nQueries, dim, k, metric);
      assert.equal(got.ids.length, nQueries * k);
      for (let q = 0; q < nQueries; q++) {
        assert.deepEqual([...got.ids.subarray(q * k, (q + 1) * k)], ref.ids[q], `${metric} q${q} ids`);
        for (let r = 0; r < k; r++) {
          const want = ref.dists[q][r];
          assert.ok(Math.abs(got.distances[q * k + r] - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${metric} q${q} r${r}`);
        }
      }
    }
  }
});

test('bruteForceKnn breaks ties by lower id and validates arguments', async () => {
  // Base: ids 0..5 on a line, with duplicates at the same distance from the query.
  const base = new Float32Array([5, 1, -1, 1, 3, -3]);
  const r = bruteForceKnn(base, 6, new Float32Array([0]), 1, 1, 6, 'l2');
  assert.deepEqual([...r.ids], [1, 2, 3, 4, 5, 0]);
  assert.deepEqual([...r.distances], [1, 1, 1, 9, 9, 25]);

  await expectZgq(() => bruteForceKnn(base, 6, new Float32Array([0]), 1, 1, 7, 'l2'), 'INVALID_ARGUMENT');
  await expectZgq(() => bruteForceKnn(base, 6, new Float32Array([0]), 1, 1, 0, 'l2'), 'INVALID_ARGUMENT');
  await expectZgq(() => bruteForceKnn(base, 5, new Float32Array([0]), 1, 1, 1, 'l2'), 'DIMENSION_MISMATCH');
  await expectZgq(() => bruteForceKnn(base, 6, new Float32Array([0]), 1, 1, 1, 'hamming' as KnnMetric), 'INVALID_ARGUMENT');
  assert.equal(bruteForceKnn(base, 6, new Float32Array(0), 0, 1, 2).ids.length, 0);
});

test('recallAtK on a hand-made example', async () => {
  // Two queries, k = 3, truth has 4 columns (only the first 3 count).
  const truth = new Int32Array([0, 1, 2, 3, 10, 11, 12, 13]);
  const found = new Uint32Array([2, 0, 3, 12, 99, 98]);
  // q0: {2,0} of {0,1,2} -> 2/3; q1: {12} of {10,11,12} -> 1/3.
  assert.equal(recallAtK(found, truth, 2, 3, 4), 0.5);
  assert.equal(recallAtK(new Uint32Array([0, 1, 2, 10, 11, 12]), truth, 2, 3, 4), 1);
  // Duplicates in found cannot count twice.
  assert.equal(recallAtK(new Uint32Array([0, 0, 0]), new Int32Array([0, 1, 2]), 1, 3), 1 / 3);
  await expectZgq(() => recallAtK(found, truth, 2, 3, 2), 'INVALID_ARGUMENT');
  await expectZgq(() => recallAtK(found, truth, 3, 3, 4), 'DIMENSION_MISMATCH');
});

// ---------------------------------------------------------------------------------------------
// real data (skipped when /work/shared/data is not present)

test('siftsmall: shapes and brute force reproduces the shipped ground truth', async (t) => {
  const sift = await loadSiftsmall(t);
  if (!sift) return;
  const { base, queries: query, gt } = sift;
  assert.deepEqual([base.n, base.dim], [10000, 128]);
  assert.deepEqual([query.n, query.dim], [100, 128]);
  assert.deepEqual([gt.n, gt.dim], [100, 100]);

  const k = 100;
  const res = bruteForceKnn(base.data, base.n, query.data, query.n, 128, k, 'l2');
  let tieTolerantHits = 0;
  for (let q = 0; q < query.n; q++) {
    // SIFT values are whole numbers, so the squared distances are exact integers.
    for (let r = 0; r < k; r++) {
      const truthDist = sqL2(query.data, q * 128, base.data, gt.data[q * 100 + r] * 128, 128);
      assert.equal(res.distances[q * k + r], truthDist, `query ${q} rank ${r}`);
    }
    const tenth = res.distances[q * k + 9];
    for (let r = 0; r < 10; r++) if (res.distances[q * k + r] <= tenth) tieTolerantHits++;
  }
  assert.equal(tieTolerantHits / (query.n * 10), 1);
  // Plain id recall is 1 for the top 10 too (the README's tie reorderings are deeper in the list).
  const recall10 = recallAtK(res.ids, gt.data, query.n, 10, 100, k);
  assert.equal(recall10, 1);
  assert.ok(recallAtK(res.ids, gt.data, query.n, 100, 100, k) > 0.99);
});

test('fashion-mnist: IDX t10k images and ground truth spot check', async (t) => {
  const t10k = join(FMNIST_DIR, 't10k-images-idx3-ubyte.gz');
  if (!existsSync(t10k)) {
    t.skip(`fashion-mnist not found at ${FMNIST_DIR}`);
    return;
  }
  const q = await readIdxImages(t10k);
  assert.deepEqual([q.n, q.dim, q.rows, q.cols, q.data.length], [10000, 784, 28, 28, 10000 * 784]);
  assert.ok(q.data.some((v) => v > 0));

  const trainPath = join(FMNIST_DIR, 'train-images-idx3-ubyte.gz');
  const gtPath = join(FMNIST_DIR, 'fashion-mnist_groundtruth.ivecs');
  const sqPath = join(FMNIST_DIR, 'fashion-mnist_groundtruth_sqdist.ivecs');
  if (!existsSync(trainPath) || !existsSync(gtPath) || !existsSync(sqPath)) return;
  const train = await readIdxImages(trainPath);
  assert.deepEqual([train.n, train.dim], [60000, 784]);
  const gt = await readIvecs(gtPath);
  const sq = await readIvecs(sqPath);
  assert.deepEqual([gt.n, gt.dim, sq.n, sq.dim], [10000, 100, 10000, 100]);

  // A few queries: the shipped truth breaks ties by lower id, like bruteForceKnn.
  const nq = 4;
  const res = bruteForceKnn(bvecsToFloat32(train.data), train.n, bvecsToFloat32(q.data.subarray(0, nq * 784)), nq, 784, 100);
  for (let i = 0; i < nq; i++) {
    assert.deepEqual([...res.ids.subarray(i * 100, (i + 1) * 100)], [...gt.data.subarray(i * 100, (i + 1) * 100)]);
    // Squared distances reach ~5e7, beyond float32's exact-integer range, hence fround.
    for (let r = 0; r < 100; r++) assert.equal(res.distances[i * 100 + r], Math.fround(sq.data[i * 100 + r]));
  }
});
