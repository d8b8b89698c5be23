// Indexes as bytes (toBytes / fromBytes): the file format of save / load with the same checks,
// the platform report in stats(), and the error that names a missing WebAssembly feature.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZGQError, ZGQIndex } from '../src/index.js';
import { missingWasmFeatures } from '../src/kernels/wasm.js';
import { decodeContainer, encodeContainer } from '../src/format.js';
import { clusteredGaussian } from '../src/data/synthetic.js';

const ds = clusteredGaussian({ n: 3000, nQueries: 50, dim: 24, seed: 3 });

test('toBytes is the saved file; fromBytes loads bytes and files, with the answers of the original', async () => {
  const index = new ZGQIndex({ dim: 24, seed: 5 });
  await index.build(ds.base, { threads: 1 });
  const expected = await index.searchBatch(ds.queries, 10);
  const bytes = index.toBytes();
  const dir = mkdtempSync(join(tmpdir(), 'zgq-bytes-'));
  try {
    await index.save(join(dir, 'a.zgq'));
    assert.ok(Buffer.from(bytes).equals(readFileSync(join(dir, 'a.zgq'))), 'toBytes equals the file save writes');
    writeFileSync(join(dir, 'b.zgq'), bytes);
    const fromFile = await ZGQIndex.load(join(dir, 'b.zgq'));
    assert.deepEqual((await fromFile.searchBatch(ds.queries, 10)).ids, expected.ids);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const again = ZGQIndex.fromBytes(bytes);
  const got = await again.searchBatch(ds.queries, 10);
  assert.deepEqual(got.ids, expected.ids);
  assert.deepEqual(got.distances, expected.distances);
  assert.deepEqual(again.options, index.options);
  assert.ok(Buffer.from(again.toBytes()).equals(Buffer.from(bytes)), 'fromBytes then toBytes reproduces the bytes');

  // bytes at an odd offset of a larger buffer (as from a network or a file slice) load too
  const padded = new Uint8Array(bytes.length + 3);
  padded.set(bytes, 3);
  assert.deepEqual((await ZGQIndex.fromBytes(padded.subarray(3)).searchBatch(ds.queries, 10)).ids, expected.ids);
  // the index owns a copy: scribbling over the input afterwards changes nothing
  const scratch = bytes.slice();
  const owner = ZGQIndex.fromBytes(scratch);
  scratch.fill(0);
  assert.deepEqual((await owner.searchBatch(ds.queries, 10)).ids, expected.ids);
});

test('fromBytes: the checks of load, with typed errors', async () => {
  const index = new ZGQIndex({ dim: 24, seed: 5, zones: 8 });
  await index.build(ds.base.subarray(0, 500 * 24), { threads: 1 });
  const bytes = index.toBytes();
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ZGQError, String(e));
      return `${e.code}: ${e.message}`;
    }
    return 'no error';
  };
  assert.match(code(() => ZGQIndex.fromBytes([1, 2, 3] as unknown as Uint8Array)), /^INVALID_ARGUMENT: bytes must be a Uint8Array; got Array/);
  assert.match(code(() => ZGQIndex.fromBytes(new Uint8Array(0))), /^CORRUPT_FILE: bytes:/);
  assert.match(code(() => ZGQIndex.fromBytes(new TextEncoder().encode('not an index at all'))), /^CORRUPT_FILE: bytes: not a ZGQ index/);
  assert.match(code(() => ZGQIndex.fromBytes(bytes.subarray(0, bytes.length - 1))), /^CORRUPT_FILE/);
  // one flipped byte anywhere is caught (checksums), never a crash or a wrong index
  for (const at of [9, 40, bytes.length >> 1, bytes.length - 2]) {
    const damaged = bytes.slice();
    damaged[at] ^= 0x10;
    assert.match(code(() => ZGQIndex.fromBytes(damaged)), /^(CORRUPT_FILE|UNSUPPORTED_VERSION)/, `byte ${at}`);
  }
  assert.match(code(() => new ZGQIndex({ dim: 24 }).toBytes()), /^NOT_BUILT/);
  // a non-finite value behind valid checksums is named with its section and element
  for (const [tag, at] of [['PQCB', 5], ['CENT', 24 * 3 + 1]] as const) {
    const { meta, sections } = decodeContainer(bytes);
    const payloads = [...sections].map(([t, b]) => ({ tag: t, bytes: b.slice() }));
    const section = payloads.find((p) => p.tag === tag)!;
    new Float32Array(section.bytes.buffer, section.bytes.byteOffset, section.bytes.byteLength / 4)[at] = at % 2 ? NaN : -Infinity;
    const pattern = new RegExp(`^CORRUPT_FILE: .*section ${tag} holds a non-finite value at element ${at}`);
    assert.match(code(() => ZGQIndex.fromBytes(encodeContainer(meta, payloads))), pattern);
  }
});

test('stats().parallel reports worker threads under Node', async () => {
  const index = new ZGQIndex({ dim: 24, zones: 4 });
  await index.build(ds.base.subarray(0, 200 * 24), { threads: 1 });
  const p = index.stats().parallel;
  assert.equal(p.via, 'worker_threads');
  assert.ok(p.threads >= 1);
});

test('a runtime without WebAssembly SIMD or threads is named in the error', () => {
  assert.deepEqual(missingWasmFeatures(), [], 'this Node has every feature');
  // only the SIMD probe holds the 0xfd (253) prefix of SIMD instructions
  const noSimd = (b: Uint8Array) => !b.includes(253);
  assert.deepEqual(missingWasmFeatures(noSimd), ['WebAssembly SIMD (128-bit)']);
  assert.deepEqual(missingWasmFeatures(() => false), ['WebAssembly SIMD (128-bit)', 'WebAssembly threads (shared memory)']);
});
