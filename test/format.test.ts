/**
 * Tests for the container format (format.ts) and its Node file access (io.ts): round trips,
 * CRC-32 against zlib, detection of every kind of damage, and atomic writes that never leave a
 * half-written or temporary file behind; and for index files, what a reader must refuse (required
 * features, critical sections) and what it may ignore (optional sections, unknown meta fields).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';

import { ZGQError, type ZGQErrorCode } from '../src/errors.js';
import {
  containerStamp,
  crc32,
  decodeContainer,
  encodeContainer,
  encodeContainerChunks,
  FORMAT_VERSION,
  isOptionalTag,
  MAX_SECTIONS,
  sectionF32,
  sectionU16,
  sectionU32,
  sectionU8,
  type Section,
} from '../src/format.js';
import {
  fastCrc32,
  fileStamp,
  fileReading,
  readContainerFile,
  readFileBytes,
  removeStaleTemporaries,
  writeContainerFile,
  writeFileAtomic,
} from '../src/io.js';
import { Rng } from '../src/random.js';
import { ZGQIndex } from '../src/index.js';
import { valueLimit } from '../src/persist.js';
import { clusteredGaussian } from '../src/data/synthetic.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function randomBytesSeeded(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextU32() & 0xff;
  return out;
}

/** Asserts `fn` throws a ZGQError with one of `codes`, optionally matching `pattern`. */
function expectZgq(fn: () => unknown, codes: ZGQErrorCode | ZGQErrorCode[], pattern?: RegExp): ZGQError {
  const allowed = Array.isArray(codes) ? codes : [codes];
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) assert.fail(`expected ZGQError ${allowed.join('|')}, but nothing was thrown`);
  if (!(thrown instanceof ZGQError)) {
    assert.fail(`expected ZGQError ${allowed.join('|')}, got ${String(thrown)}\n${(thrown as Error)?.stack ?? ''}`);
  }
  assert.ok(allowed.includes(thrown.code), `code ${thrown.code} not in ${allowed.join('|')}: ${thrown.message}`);
  if (pattern) assert.match(thrown.message, pattern);
  return thrown;
}

async function expectZgqAsync(fn: () => Promise<unknown>, code: ZGQErrorCode, pattern?: RegExp): Promise<ZGQError> {
  let thrown: unknown;
  try {
    await fn();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof ZGQError, `expected ZGQError ${code}, got ${String(thrown)}`);
  assert.equal(thrown.code, code, thrown.message);
  if (pattern) assert.match(thrown.message, pattern);
  return thrown;
}

const u32 = (b: Uint8Array, at: number): number => new DataView(b.buffer, b.byteOffset).getUint32(at, true);
const setU32 = (b: Uint8Array, at: number, v: number): void =>
  new DataView(b.buffer, b.byteOffset).setUint32(at, v >>> 0, true);

/** Section table entry i starts here. */
const entry = (i: number): number => 32 + 32 * i;

/**
 * Recomputes the header checksum after a deliberate edit, so that the check under test (not
 * the header CRC) is the one that must catch the problem.
 */
function reseal(b: Uint8Array): Uint8Array {
  const tableEnd = 32 + 32 * u32(b, 24);
  setU32(b, tableEnd, crc32(b.subarray(0, tableEnd)));
  return b;
}

function sampleSections(): Section[] {
  return [
    { tag: 'VECS', bytes: new Uint8Array(new Float32Array([1.5, -2, 3.25, 0, 1e-7, -0, 42]).buffer) }, // 28 bytes
    { tag: 'EMPT', bytes: new Uint8Array(0) },
    { tag: 'ONE ', bytes: new Uint8Array([0xab]) },
    { tag: 'ODD_', bytes: Uint8Array.from({ length: 13 }, (_, i) => i * 7 + 1) },
    { tag: 'IDS_', bytes: new Uint8Array(new Uint32Array([7, 1, 0xffffffff]).buffer) },
    { tag: 'U16s', bytes: new Uint8Array(new Uint16Array([1, 65535, 300]).buffer) },
    { tag: 'TAIL', bytes: new Uint8Array(0) },
  ];
}

const sampleMeta = { dim: 7, count: 1, metric: 'l2', name: 'ünïcødé ✓', nested: { m: 16, ef: [1, 2, 3] } };

function smallContainer(): Uint8Array {
  return encodeContainer({ dim: 3, n: 2 }, [
    { tag: 'VECS', bytes: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer) },
    { tag: 'EMPT', bytes: new Uint8Array(0) },
    { tag: 'ODD_', bytes: new Uint8Array([1, 2, 3, 4, 5]) },
  ]);
}

function largeContainer(): Uint8Array {
  const rng = new Rng(99);
  return encodeContainer({ dim: 64, count: 400, label: 'large' }, [
    { tag: 'VECS', bytes: randomBytesSeeded(rng, 64 * 400 * 4) },
    { tag: 'GRPH', bytes: randomBytesSeeded(rng, 12345) },
    { tag: 'CODE', bytes: randomBytesSeeded(rng, 777) },
  ]);
}

// ---------------------------------------------------------------------------------------------
// CRC-32
// ---------------------------------------------------------------------------------------------

describe('crc32', () => {
  test('matches the standard check value', () => {
    assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
  });

  test('equals zlib.crc32 on random buffers of every small length and unaligned views', () => {
    const rng = new Rng(1);
    for (let n = 0; n <= 100; n++) {
      const b = randomBytesSeeded(rng, n);
      assert.equal(crc32(b), zlib.crc32(b), `length ${n}`);
    }
    for (let k = 0; k < 50; k++) {
      const b = randomBytesSeeded(rng, 1 + rng.int(100_000));
      const start = rng.int(Math.min(b.length, 17));
      const view = b.subarray(start, b.length - rng.int(b.length - start + 1));
      const seed = rng.nextU32();
      assert.equal(crc32(view), zlib.crc32(view));
      assert.equal(crc32(view, seed), zlib.crc32(view, seed), `seed ${seed}`);
    }
  });

  test('chains like zlib: crc32(b, crc32(a)) === crc32(a ‖ b)', () => {
    const rng = new Rng(2);
    const all = randomBytesSeeded(rng, 5000);
    for (const cut of [0, 1, 7, 8, 9, 2500, 4999, 5000]) {
      assert.equal(crc32(all.subarray(cut), crc32(all.subarray(0, cut))), crc32(all));
    }
  });

  test('fastCrc32 agrees with crc32', () => {
    const b = randomBytesSeeded(new Rng(3), 70_001);
    assert.equal(fastCrc32(b), crc32(b));
    assert.equal(fastCrc32(b, 12345), crc32(b, 12345));
  });
});

// ---------------------------------------------------------------------------------------------
// Round trip
// ---------------------------------------------------------------------------------------------

describe('encodeContainer / decodeContainer round trip', () => {
  test('meta and sections of many sizes come back identical, 16-byte aligned, as views', () => {
    const sections = sampleSections();
    const file = encodeContainer(sampleMeta, sections);
    assert.equal(file.byteOffset, 0);
    const decoded = decodeContainer(file, 'sample.zgq');
    assert.equal(decoded.version, FORMAT_VERSION);
    assert.deepEqual(decoded.meta, sampleMeta);
    assert.deepEqual([...decoded.sections.keys()], sections.map((s) => s.tag));
    for (const s of sections) {
      const got = decoded.sections.get(s.tag)!;
      assert.deepEqual(got, s.bytes, s.tag);
      assert.equal(got.byteOffset % 16, 0, `${s.tag} offset ${got.byteOffset} not 16-aligned`);
      assert.equal(got.buffer, file.buffer, `${s.tag} should be a view, not a copy`);
    }
    // The file ends exactly at the last section.
    const last = decoded.sections.get('TAIL')!;
    assert.equal(last.byteOffset + last.length, file.length);
  });

  test('section table offsets are multiples of 16 and the layout is deterministic', () => {
    const file = encodeContainer(sampleMeta, sampleSections());
    const n = u32(file, 24);
    assert.equal(n, 7);
    for (let i = 0; i < n; i++) assert.equal(u32(file, entry(i) + 8) % 16, 0);
    assert.deepEqual(encodeContainer(sampleMeta, sampleSections()), file);
    // Re-encoding what was decoded reproduces the file byte for byte.
    const d = decodeContainer(file);
    const again = encodeContainer(d.meta, [...d.sections].map(([tag, bytes]) => ({ tag, bytes })));
    assert.deepEqual(again, file);
  });

  test('chunks concatenate to the contiguous encoding and reference payloads without copying', () => {
    const sections = sampleSections();
    const chunks = encodeContainerChunks(sampleMeta, sections);
    const joined = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      joined.set(c, at);
      at += c.length;
    }
    assert.deepEqual(joined, encodeContainer(sampleMeta, sections));
    assert.ok(chunks.includes(sections[0].bytes));
  });

  test('no sections, and native checksum, both round trip', () => {
    const file = encodeContainer({}, [], fastCrc32);
    assert.deepEqual(file, encodeContainer({}, []));
    const d = decodeContainer(file, 'empty', fastCrc32);
    assert.deepEqual(d.meta, {});
    assert.equal(d.sections.size, 0);
  });

  test('decodes from an unaligned copy; typed helpers then return correct copies', () => {
    const file = encodeContainer(sampleMeta, sampleSections());
    const shifted = new Uint8Array(new ArrayBuffer(file.length + 1), 1, file.length);
    shifted.set(file);
    const d = decodeContainer(shifted);
    const f = sectionF32(d.sections, 'VECS', 7);
    assert.deepEqual([...f], [...new Float32Array([1.5, -2, 3.25, 0, 1e-7, -0, 42])]);
    assert.notEqual(f.buffer, shifted.buffer);
    assert.deepEqual([...sectionU32(d.sections, 'IDS_', 3)], [7, 1, 0xffffffff]);
    assert.deepEqual([...sectionU16(d.sections, 'U16s', 3)], [1, 65535, 300]);
  });
});

// ---------------------------------------------------------------------------------------------
// Typed section helpers
// ---------------------------------------------------------------------------------------------

describe('typed section helpers', () => {
  const file = encodeContainer(sampleMeta, sampleSections());
  const { sections } = decodeContainer(file);

  test('return aligned zero-copy views of the right type and values', () => {
    const f = sectionF32(sections, 'VECS', 7);
    assert.ok(f instanceof Float32Array);
    assert.equal(f.buffer, file.buffer);
    assert.equal(f[6], 42);
    const ids = sectionU32(sections, 'IDS_', 3);
    assert.ok(ids instanceof Uint32Array);
    assert.equal(ids.buffer, file.buffer);
    assert.deepEqual([...ids], [7, 1, 0xffffffff]);
    assert.deepEqual([...sectionU16(sections, 'U16s', 3)], [1, 65535, 300]);
    const odd = sectionU8(sections, 'ODD_', 13);
    assert.equal(odd.buffer, file.buffer);
    assert.equal(odd[12], 12 * 7 + 1);
    assert.equal(sectionF32(sections, 'EMPT', 0).length, 0);
  });

  test('missing section, wrong length and nonsense counts are CORRUPT_FILE naming the section', () => {
    expectZgq(() => sectionF32(sections, 'NOPE', 1, 'my.zgq'), 'CORRUPT_FILE', /my\.zgq.*missing section 'NOPE'/);
    expectZgq(() => sectionF32(sections, 'VECS', 8, 'my.zgq'), 'CORRUPT_FILE', /my\.zgq.*'VECS' is 28 bytes.*32 bytes/);
    expectZgq(() => sectionU32(sections, 'ODD_', 3), 'CORRUPT_FILE', /'ODD_'/);
    expectZgq(() => sectionU16(sections, 'ONE ', 0), 'CORRUPT_FILE', /'ONE '/);
    expectZgq(() => sectionU8(sections, 'ODD_', 12), 'CORRUPT_FILE', /'ODD_'/);
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 60]) {
      expectZgq(() => sectionF32(sections, 'VECS', bad), 'CORRUPT_FILE', /'VECS'/);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Encoder argument checks
// ---------------------------------------------------------------------------------------------

describe('encodeContainer rejects bad arguments', () => {
  const ok = new Uint8Array(4);
  test('bad tags, duplicate tags, bad payloads', () => {
    for (const tag of ['ABC', 'ABCDE', '', 'ÄBCD', 'AB\nD']) {
      expectZgq(() => encodeContainer({}, [{ tag, bytes: ok }]), 'INVALID_ARGUMENT', /tag/);
    }
    expectZgq(
      () => encodeContainer({}, [{ tag: 'AAAA', bytes: ok }, { tag: 'AAAA', bytes: ok }]),
      'INVALID_ARGUMENT',
      /duplicate section tag 'AAAA'/,
    );
    expectZgq(
      () => encodeContainer({}, [{ tag: 'AAAA', bytes: [1, 2] as unknown as Uint8Array }]),
      'INVALID_ARGUMENT',
      /Uint8Array/,
    );
    const many = Array.from({ length: MAX_SECTIONS + 1 }, (_, i) => ({ tag: i.toString(16).padStart(4, '0'), bytes: ok }));
    expectZgq(() => encodeContainer({}, many), 'INVALID_ARGUMENT', /maximum/);
  });

  test('meta that is not a JSON object', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expectZgq(() => encodeContainer(cyclic, []), 'INVALID_ARGUMENT', /JSON/);
    expectZgq(() => encodeContainer({ n: 1n }, []), 'INVALID_ARGUMENT', /JSON/);
    expectZgq(() => encodeContainer([] as unknown as Record<string, unknown>, []), 'INVALID_ARGUMENT', /plain object/);
    expectZgq(() => encodeContainer(null as unknown as Record<string, unknown>, []), 'INVALID_ARGUMENT');
  });
});

// ---------------------------------------------------------------------------------------------
// Corruption detection
// ---------------------------------------------------------------------------------------------

describe('decodeContainer detects damage', () => {
  test('every prefix of a small container is CORRUPT_FILE', () => {
    const file = smallContainer();
    for (let len = 0; len < file.length; len++) {
      expectZgq(() => decodeContainer(file.subarray(0, len), 'cut.zgq'), 'CORRUPT_FILE', /^cut\.zgq: /);
    }
    expectZgq(() => decodeContainer(new Uint8Array(10)), 'CORRUPT_FILE', /not a ZGQ index file/);
    expectZgq(() => decodeContainer(file.subarray(0, 20)), 'CORRUPT_FILE', /truncated/);
  });

  test('random cut points of a larger container are CORRUPT_FILE', () => {
    const file = largeContainer();
    const rng = new Rng(5);
    for (let k = 0; k < 300; k++) {
      const len = rng.int(file.length);
      expectZgq(() => decodeContainer(file.subarray(0, len)), 'CORRUPT_FILE');
    }
  });

  test('extra trailing bytes are CORRUPT_FILE', () => {
    const file = smallContainer();
    const longer = new Uint8Array(file.length + 1);
    longer.set(file);
    expectZgq(() => decodeContainer(longer), 'CORRUPT_FILE', /trailing/);
  });

  test('a damaged byte at any position of a small container is always reported as damage', () => {
    const file = smallContainer();
    const original = decodeContainer(file);
    assert.deepEqual(original.meta, { dim: 3, n: 2 });
    for (let i = 0; i < file.length; i++) {
      for (const mask of [0x01, 0x80, 0xff, 0x5a]) {
        const bad = file.slice();
        bad[i] ^= mask;
        expectZgq(() => decodeContainer(bad, 'flip.zgq'), 'CORRUPT_FILE', /^flip\.zgq: /);
      }
    }
  });

  test('random multi-byte damage of a larger container is always a ZGQError', () => {
    const file = largeContainer();
    const rng = new Rng(6);
    for (let k = 0; k < 200; k++) {
      const bad = file.slice();
      const hits = 1 + rng.int(8);
      // Aim half the damage at the header/table/meta, where parsing logic runs.
      for (let h = 0; h < hits; h++) {
        const pos = rng.next() < 0.5 ? rng.int(400) : rng.int(file.length);
        bad[pos] ^= 1 + rng.int(255);
      }
      expectZgq(() => decodeContainer(bad), ['CORRUPT_FILE', 'UNSUPPORTED_VERSION']);
    }
  });

  test('wrong magic says "not a ZGQ index file"', () => {
    expectZgq(
      () => decodeContainer(new TextEncoder().encode('{"this is": "json, not an index", "padding": 1234567890}'), 'x.json'),
      'CORRUPT_FILE',
      /^x\.json: not a ZGQ index file/,
    );
    const file = smallContainer();
    file[0] = 0x7a; // 'z'
    expectZgq(() => decodeContainer(file), 'CORRUPT_FILE', /not a ZGQ index file/);
  });

  test('an intact header naming a newer version is UNSUPPORTED_VERSION naming both versions, even if the rest differs', () => {
    const file = smallContainer();
    setU32(file, 8, FORMAT_VERSION + 1);
    reseal(file);
    // a newer version may lay out meta and sections differently: the version is read before them
    file[file.length - 1] ^= 0xff;
    expectZgq(
      () => decodeContainer(file, 'new.zgq'),
      'UNSUPPORTED_VERSION',
      new RegExp(`new\\.zgq.*version ${FORMAT_VERSION + 1}.*up to ${FORMAT_VERSION}`),
    );
    setU32(file, 8, 0);
    expectZgq(() => decodeContainer(reseal(file)), 'CORRUPT_FILE', /version is 0/);
  });

  test('a damaged version byte is damage (header checksum), not "upgrade zgq" (issue 15)', () => {
    for (const at of [8, 9, 10, 11]) {
      for (const mask of [0x01, 0x02, 0x80, 0xff]) {
        const file = smallContainer();
        file[at] ^= mask;
        const e = expectZgq(() => decodeContainer(file, 'v.zgq'), 'CORRUPT_FILE', /^v\.zgq: header checksum mismatch/);
        assert.doesNotMatch(e.message, /upgrade/);
        // the message still says what the version field reads when it looks newer
        if (u32(file, 8) > FORMAT_VERSION) assert.match(e.message, new RegExp(`version field reads ${u32(file, 8)}`));
      }
    }
  });

  test('unknown flags are UNSUPPORTED_VERSION; non-zero reserved fields are CORRUPT_FILE', () => {
    const flagged = smallContainer();
    setU32(flagged, 12, 1);
    expectZgq(() => decodeContainer(reseal(flagged)), 'UNSUPPORTED_VERSION', /flags/);
    const reserved = smallContainer();
    setU32(reserved, 28, 5);
    expectZgq(() => decodeContainer(reseal(reserved)), 'CORRUPT_FILE', /reserved/);
    const entryReserved = smallContainer();
    setU32(entryReserved, entry(1) + 28, 5);
    expectZgq(() => decodeContainer(reseal(entryReserved)), 'CORRUPT_FILE', /'EMPT'.*reserved/);
  });

  test('header checksum mismatch is reported as such', () => {
    const file = smallContainer();
    file[16] ^= 1; // metaLength
    expectZgq(() => decodeContainer(file), 'CORRUPT_FILE', /header checksum mismatch/);
  });

  test('absurd section counts fail before anything is sized from them', () => {
    for (const count of [0xffffffff, MAX_SECTIONS + 1]) {
      const file = smallContainer();
      setU32(file, 24, count);
      expectZgq(() => decodeContainer(file), 'CORRUPT_FILE', new RegExp(`section count ${count}`));
    }
    const file = smallContainer();
    setU32(file, 24, 1000); // plausible, but the table cannot fit in the file
    expectZgq(() => decodeContainer(file), 'CORRUPT_FILE', /1000-entry section table/);
  });

  test('offsets and lengths outside the file are rejected by bounds, not only by checksum', () => {
    const size = smallContainer().length;
    const cases: [string, (b: Uint8Array) => void, RegExp][] = [
      ['offset past end', (b) => setU32(b, entry(0) + 8, size + 16), /'VECS'.*extends past the end/],
      ['length past end', (b) => setU32(b, entry(0) + 16, size), /'VECS'.*extends past the end/],
      ['offset high word', (b) => setU32(b, entry(2) + 12, 1), /'ODD_'.*extends past the end/],
      ['length high word', (b) => setU32(b, entry(2) + 20, 0xffffffff), /'ODD_'.*extends past the end/],
      ['max offset+length', (b) => {
        setU32(b, entry(0) + 8, 0xfffffff0);
        setU32(b, entry(0) + 16, 0xffffffff);
      }, /extends past the end/],
      ['misaligned offset', (b) => setU32(b, entry(0) + 8, u32(b, entry(0) + 8) + 4), /'VECS' offset \d+ is not a multiple of 16/],
      ['offset into the header', (b) => setU32(b, entry(2) + 8, 16), /'ODD_'.*overlaps header/],
      ['offset into the metadata', (b) => setU32(b, entry(0) + 8, u32(b, entry(0) + 8) - 16), /overlaps metadata/],
      ['sections overlap', (b) => setU32(b, entry(2) + 8, u32(b, entry(0) + 8)), /overlaps section/],
      ['metaLength past end', (b) => setU32(b, 16, size), /metadata needs bytes/],
      ['duplicate tag', (b) => b.set(new TextEncoder().encode('VECS'), entry(2)), /duplicate section 'VECS'/],
      ['non-ASCII tag', (b) => (b[entry(1)] = 0x00), /section #1 has a tag/],
    ];
    for (const [what, edit, pattern] of cases) {
      const file = smallContainer();
      edit(file);
      expectZgq(() => decodeContainer(reseal(file), 'edit.zgq'), 'CORRUPT_FILE', pattern);
      void what;
    }
  });

  test('per-section checksum mismatch names the section', () => {
    const file = smallContainer();
    const { sections } = decodeContainer(file);
    const odd = sections.get('ODD_')!;
    file[odd.byteOffset + 2] ^= 0x10;
    expectZgq(() => decodeContainer(file, 'sec.zgq'), 'CORRUPT_FILE', /^sec\.zgq: section 'ODD_' checksum mismatch/);
    const stored = smallContainer();
    setU32(stored, entry(0) + 24, u32(stored, entry(0) + 24) ^ 1);
    expectZgq(() => decodeContainer(reseal(stored)), 'CORRUPT_FILE', /section 'VECS' checksum mismatch/);
  });

  test('non-zero padding is reported', () => {
    const file = smallContainer();
    const { sections } = decodeContainer(file);
    const vecs = sections.get('VECS')!;
    // ODD_ follows VECS (24 bytes) after 8 padding bytes.
    file[vecs.byteOffset + vecs.length] = 1;
    expectZgq(() => decodeContainer(file), 'CORRUPT_FILE', /non-zero padding/);
  });

  test('metadata checksum, UTF-8, JSON syntax and object shape are all checked', () => {
    const enc = new TextEncoder();
    const metaAt = (b: Uint8Array): number => 36 + 32 * u32(b, 24);
    const withMeta = (replacement: Uint8Array): Uint8Array => {
      const file = encodeContainer({ a: 1 }, [{ tag: 'DATA', bytes: new Uint8Array([9, 9]) }]);
      assert.equal(u32(file, 16), replacement.length); // '{"a":1}' is 7 bytes
      file.set(replacement, metaAt(file));
      setU32(file, 20, crc32(replacement));
      return reseal(file);
    };
    const plain = encodeContainer({ a: 1 }, []);
    plain[metaAt(plain) + 5] ^= 1;
    expectZgq(() => decodeContainer(plain), 'CORRUPT_FILE', /metadata checksum mismatch/);
    expectZgq(() => decodeContainer(withMeta(enc.encode('{"a":1,'))), 'CORRUPT_FILE', /metadata is not valid UTF-8 JSON/);
    expectZgq(
      () => decodeContainer(withMeta(new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0xff, 0x7d]))),
      'CORRUPT_FILE',
      /metadata is not valid UTF-8 JSON/,
    );
    expectZgq(() => decodeContainer(withMeta(enc.encode('[1,2,3]'))), 'CORRUPT_FILE', /JSON object/);
    expectZgq(() => decodeContainer(withMeta(enc.encode('   null'))), 'CORRUPT_FILE', /JSON object/);
    assert.deepEqual(decodeContainer(withMeta(enc.encode('{"b":2}'))).meta, { b: 2 });
  });

  test('a non-Uint8Array input is INVALID_ARGUMENT', () => {
    expectZgq(() => decodeContainer('ZGQINDEX' as unknown as Uint8Array), 'INVALID_ARGUMENT');
    expectZgq(() => decodeContainer(new Float32Array(16) as unknown as Uint8Array), 'INVALID_ARGUMENT');
  });
});

// ---------------------------------------------------------------------------------------------
// File I/O
// ---------------------------------------------------------------------------------------------

describe('stamps and compatibility marks', () => {
  test('containerStamp is size and header checksum: equal for equal bytes, different when any byte differs', () => {
    const file = largeContainer();
    const stamp = decodeContainer(file).stamp;
    assert.equal(containerStamp(file, file.length), stamp);
    assert.equal(containerStamp(file.subarray(0, 32 + 32 * 3 + 4), file.length), stamp, 'the header alone is enough');
    assert.match(stamp, new RegExp(`^${file.length}/0x[0-9a-f]{8}$`));
    assert.equal(decodeContainer(largeContainer()).stamp, stamp, 'a byte-identical file has the same stamp');
    // one payload byte changed (checksums recomputed, as a writer would): a different stamp
    const sections: Section[] = [...decodeContainer(file).sections].map(([tag, bytes]) => ({ tag, bytes: bytes.slice() }));
    sections[1].bytes[7] ^= 1;
    assert.notEqual(decodeContainer(encodeContainer({ dim: 64, count: 400, label: 'large' }, sections)).stamp, stamp);
    assert.notEqual(decodeContainer(encodeContainer({ dim: 64, count: 400, label: 'LARGE' }, sections)).stamp, stamp);
    // not a container, or too short to tell
    assert.equal(containerStamp(new Uint8Array(100), 100), null);
    assert.equal(containerStamp(file.subarray(0, 40), file.length), null);
  });

  test('optional sections are the ones whose tag starts with a lowercase letter', () => {
    for (const tag of ['xtra', 'a___', 'zZZZ']) assert.ok(isOptionalTag(tag), tag);
    for (const tag of ['VECS', 'IDS_', 'Xtra', '_abc', '1abc', ' abc']) assert.ok(!isOptionalTag(tag), tag);
  });
});

describe('io', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zgq-format-test-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const tempLeftovers = async (d: string): Promise<string[]> => (await readdir(d)).filter((f) => f.includes('.tmp-'));

  test('writeFileAtomic writes a single buffer and a list of chunks, and replaces', async () => {
    const path = join(dir, 'a.bin');
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    assert.deepEqual(await readFileBytes(path), new Uint8Array([1, 2, 3]));
    await writeFileAtomic(path, [new Uint8Array([4]), new Uint8Array(0), new Uint8Array([5, 6, 7, 8])]);
    assert.deepEqual(await readFileBytes(path), new Uint8Array([4, 5, 6, 7, 8]));
    await writeFileAtomic(path, []);
    assert.equal((await readFileBytes(path)).length, 0);
    assert.deepEqual(await tempLeftovers(dir), []);
  });

  test('readFileBytes returns memory it owns from offset 0', async () => {
    const path = join(dir, 'small.bin');
    await writeFile(path, Buffer.from([9, 8, 7]));
    const b = await readFileBytes(path);
    assert.deepEqual(b, new Uint8Array([9, 8, 7]));
    assert.equal(b.byteOffset, 0);
    assert.equal(b.buffer.byteLength, 3);
  });

  test('readFileBytes: missing file or directory is IO naming the path', async () => {
    const missing = join(dir, 'does-not-exist.zgq');
    await expectZgqAsync(() => readFileBytes(missing), 'IO', /does-not-exist\.zgq: file not found/);
    await expectZgqAsync(() => readFileBytes(dir), 'IO', new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  });

  test('container files round trip through disk with aligned views', async () => {
    const path = join(dir, 'idx.zgq');
    await writeContainerFile(path, sampleMeta, sampleSections());
    assert.deepEqual(new Uint8Array(await readFile(path)), encodeContainer(sampleMeta, sampleSections()));
    const d = await readContainerFile(path);
    assert.deepEqual(d.meta, sampleMeta);
    const f = sectionF32(d.sections, 'VECS', 7, path);
    assert.equal(f.buffer, d.sections.get('VECS')!.buffer); // a view, since the read is aligned
    assert.equal(f[0], 1.5);
  });

  test('a file read a section at a time (files past 1 GiB) decodes as the whole file does, and fails on damage with the same error', async () => {
    const whole = fileReading.wholeMax;
    fileReading.wholeMax = 0;
    try {
      const path = join(dir, 'by-section.zgq');
      const large = largeContainer();
      await writeFile(path, large);
      const d = await readContainerFile(path);
      const expected = decodeContainer(large, path);
      assert.deepEqual(d.meta, expected.meta);
      assert.equal(d.stamp, expected.stamp);
      assert.deepEqual([...d.sections.keys()], [...expected.sections.keys()]);
      for (const [tag, bytes] of expected.sections) assert.deepEqual(d.sections.get(tag), bytes);
      // every cut and every damaged byte of a small container: the error of the whole-file reader
      const small = smallContainer();
      const errorOf = async (read: () => unknown): Promise<string> => {
        try {
          await read();
          return 'no error';
        } catch (e) {
          return e instanceof ZGQError ? `${e.code}: ${e.message}` : String(e);
        }
      };
      for (let i = 0; i < small.length; i++) {
        const bad = small.slice();
        bad[i] ^= 0x5a;
        for (const bytes of [small.subarray(0, i), bad]) {
          await writeFile(path, bytes);
          const want = await errorOf(() => decodeContainer(bytes, path));
          assert.match(want, /^CORRUPT_FILE/);
          assert.equal(await errorOf(() => readContainerFile(path)), want);
        }
      }
    } finally {
      fileReading.wholeMax = whole;
    }
  });

  test('readContainerFile names the path in CORRUPT_FILE errors', async () => {
    const path = join(dir, 'broken.zgq');
    await writeFile(path, smallContainer().subarray(0, 50));
    await expectZgqAsync(() => readContainerFile(path), 'CORRUPT_FILE', /broken\.zgq: truncated/);
  });

  test('missing target directory: IO naming the path, nothing created', async () => {
    const path = join(dir, 'no-such-dir', 'x.zgq');
    const before = await readdir(dir);
    await expectZgqAsync(() => writeFileAtomic(path, new Uint8Array([1])), 'IO', /no-such-dir.*x\.zgq.*ENOENT/);
    assert.deepEqual(await readdir(dir), before);
  });

  test('rename onto a directory: IO, the directory and its contents untouched, no temp files', async () => {
    const sub = join(dir, 'rename-target');
    const target = join(sub, 'occupied.zgq');
    await mkdir(target, { recursive: true });
    await writeFile(join(target, 'keep.txt'), 'keep');
    await expectZgqAsync(() => writeFileAtomic(target, new Uint8Array([1, 2, 3])), 'IO', /occupied\.zgq/);
    assert.equal(await readFile(join(target, 'keep.txt'), 'utf8'), 'keep');
    assert.deepEqual(await readdir(sub), ['occupied.zgq']);
  });

  test('failure while writing: IO, old file byte-identical, no temp files', async () => {
    const sub = join(dir, 'midwrite');
    await mkdir(sub);
    const path = join(sub, 'old.zgq');
    const old = encodeContainer({ generation: 1 }, [{ tag: 'DATA', bytes: new Uint8Array(1000).fill(7) }]);
    await writeFileAtomic(path, old);
    // A chunk that fails once the temporary file already holds data (stands in for ENOSPC/EIO).
    class FailingChunk extends Uint8Array {
      override get byteLength(): number {
        throw new Error('simulated device failure');
      }
    }
    await expectZgqAsync(
      () => writeFileAtomic(path, [new Uint8Array(5000).fill(1), new FailingChunk(10)]),
      'IO',
      /could not write .*old\.zgq: simulated device failure/,
    );
    assert.deepEqual(new Uint8Array(await readFile(path)), old);
    assert.deepEqual(await readdir(sub), ['old.zgq']);
    assert.deepEqual((await readContainerFile(path)).meta, { generation: 1 });
  });

  test('non-Uint8Array chunks are INVALID_ARGUMENT before touching the disk', async () => {
    const sub = join(dir, 'badarg');
    await mkdir(sub);
    const path = join(sub, 'x.zgq');
    await expectZgqAsync(
      () => writeFileAtomic(path, [new Uint8Array(1), 'text' as unknown as Uint8Array]),
      'INVALID_ARGUMENT',
    );
    assert.deepEqual(await readdir(sub), []);
  });

  test('removeStaleTemporaries removes exactly the temporaries of its path (issue 15, item 13)', async () => {
    const sub = join(dir, 'stale');
    await mkdir(sub);
    const path = join(sub, 'a.zgq');
    await writeFile(path, 'index');
    // named as writeFileAtomic names them, by processes that were killed mid-save
    const stale = ['a.zgq.tmp-4242-0123456789ab', 'a.zgq.tmp-1-ffffffffffff', 'a.zgq.tmp-99999-a1b2c3d4e5f6'];
    // other paths' temporaries and look-alikes stay
    const kept = ['b.zgq.tmp-4242-0123456789ab', 'xa.zgq.tmp-4242-0123456789ab', 'a.zgq.tmp-4242-0123456789', 'a.zgq.tmp-x-0123456789ab', 'a.zgq.lock', 'a.zgq.tmp-4242-0123456789ab.keep', 'a.zgq'];
    for (const name of [...stale, ...kept]) if (name !== 'a.zgq') await writeFile(join(sub, name), 'x');
    assert.equal(await removeStaleTemporaries(path), stale.length);
    assert.deepEqual((await readdir(sub)).sort(), [...kept].sort());
    assert.equal(await removeStaleTemporaries(join(dir, 'no-such-dir', 'a.zgq')), 0);
    // a regular-expression character in the name is taken literally
    await writeFile(join(sub, 'a+b.zgq.tmp-1-0123456789ab'), 'x');
    await writeFile(join(sub, 'aab.zgq.tmp-1-0123456789ab'), 'x');
    assert.equal(await removeStaleTemporaries(join(sub, 'a+b.zgq')), 1);
    assert.ok((await readdir(sub)).includes('aab.zgq.tmp-1-0123456789ab'));
  });

  test('fileStamp reads the stamp from the header: null when missing, other/<size> when foreign', async () => {
    const path = join(dir, 'stamped.zgq');
    const written = await writeContainerFile(path, { a: 1 }, [{ tag: 'ONE_', bytes: new Uint8Array(40) }, { tag: 'TWO_', bytes: new Uint8Array(3) }]);
    assert.equal(await fileStamp(path), written);
    assert.equal((await readContainerFile(path)).stamp, written);
    assert.equal(await fileStamp(join(dir, 'absent.zgq')), null);
    await writeFile(join(dir, 'foreign.zgq'), 'not an index');
    assert.equal(await fileStamp(join(dir, 'foreign.zgq')), 'other/12');
  });

  test('paths that are not non-empty strings are INVALID_ARGUMENT, not IO', async () => {
    for (const bad of [undefined, null, 42, '', 'a\0b', {}]) {
      await expectZgqAsync(() => readContainerFile(bad as unknown as string), 'INVALID_ARGUMENT', /path must be a non-empty file path string/);
      await expectZgqAsync(() => writeFileAtomic(bad as unknown as string, new Uint8Array(1)), 'INVALID_ARGUMENT');
    }
  });

  test('a throwing beforeCommit replaces nothing, leaves no temporary file and passes its error on', async () => {
    const sub = join(dir, 'commit');
    await mkdir(sub);
    const path = join(sub, 'c.zgq');
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    const refused = new ZGQError('LOCKED', 'lost the lock');
    await assert.rejects(() => writeFileAtomic(path, new Uint8Array([9]), { beforeCommit: async () => { throw refused; } }), (e) => e === refused);
    assert.deepEqual(new Uint8Array(await readFile(path)), new Uint8Array([1, 2, 3]));
    assert.deepEqual(await readdir(sub), ['c.zgq']);
  });

  test('concurrent writers to one path: the result is exactly one of them, no temp files', async () => {
    const sub = join(dir, 'race');
    await mkdir(sub);
    const path = join(sub, 'r.zgq');
    const versions = Array.from({ length: 8 }, (_, i) => new Uint8Array(10_000 + i).fill(i + 1));
    await Promise.all(versions.map((v) => writeFileAtomic(path, v)));
    const got = new Uint8Array(await readFile(path));
    assert.ok(versions.some((v) => v.length === got.length && v.every((x, i) => x === got[i])));
    assert.deepEqual(await readdir(sub), ['r.zgq']);
  });
});

// ---------------------------------------------------------------------------------------------
// Index files: what a reader must refuse and what it may ignore (issue 15, item 12)
// ---------------------------------------------------------------------------------------------

describe('index files: required features, critical and optional sections', () => {
  const dim = 8;
  const data = clusteredGaussian({ n: 300, nQueries: 1, dim, seed: 4 }).base;
  let plain: Uint8Array;
  before(async () => {
    const index = new ZGQIndex({ dim, seed: 3 });
    await index.build(data.subarray(0, 250 * dim), { threads: 1 });
    plain = index.toBytes();
  });

  /** The index file with its meta and sections changed, checksums recomputed as a writer would. */
  const edited = (edit: (meta: Record<string, unknown>, sections: Section[]) => Section[] | void): Uint8Array => {
    const d = decodeContainer(plain);
    const meta = structuredClone(d.meta);
    let sections = [...d.sections].map(([tag, bytes]) => ({ tag, bytes: bytes.slice() }));
    sections = edit(meta, sections) ?? sections;
    return encodeContainer(meta, sections);
  };
  const query = data.subarray(260 * dim, 261 * dim);

  test('the writer marks the features a file uses beyond the released format, and only then', async () => {
    assert.equal(decodeContainer(plain).meta.requires, undefined, 'a plain index needs nothing new');
    const index = ZGQIndex.fromBytes(plain);
    index.remove([5]);
    assert.deepEqual(decodeContainer(index.toBytes()).meta.requires, ['deleted-nodes']);
    await index.add(data.subarray(250 * dim, 270 * dim), Uint32Array.from({ length: 20 }, (_, i) => 1000 + i), { threads: 1 });
    await index.add(data.subarray(270 * dim, 272 * dim), [2000, 2001], { threads: 1 });
    index.remove([1000]);
    assert.deepEqual(decodeContainer(index.toBytes()).meta.requires, ['deleted-nodes', 'appended-nodes']);
    assert.ok(ZGQIndex.fromBytes(index.toBytes()).has(2001));
  });

  test('a required feature this build lacks is UNSUPPORTED_VERSION naming it; known ones load', () => {
    expectZgq(
      () => ZGQIndex.fromBytes(edited((meta) => void (meta.requires = ['deleted-nodes', 'sq8-vectors']))),
      'UNSUPPORTED_VERSION',
      /^bytes: needs a feature this build of zgq lacks: "sq8-vectors" \(it knows "deleted-nodes", "appended-nodes", "scan-traversal", "shards"\); upgrade zgq/,
    );
    ZGQIndex.fromBytes(edited((meta) => void (meta.requires = ['deleted-nodes'])));
    ZGQIndex.fromBytes(edited((meta) => void (meta.requires = [])));
    for (const bad of ['deleted-nodes', [1], {}, null]) {
      expectZgq(() => ZGQIndex.fromBytes(edited((meta) => void (meta.requires = bad))), 'CORRUPT_FILE', /requires must be an array of feature names/);
    }
  });

  test('an unknown critical section is UNSUPPORTED_VERSION naming it; unknown optional sections and meta fields are ignored', () => {
    const extra = new Uint8Array([1, 2, 3]);
    expectZgq(
      () => ZGQIndex.fromBytes(edited((_, sections) => void sections.push({ tag: 'SQ8V', bytes: extra }))),
      'UNSUPPORTED_VERSION',
      /section this build of zgq cannot read: 'SQ8V'; upgrade zgq/,
    );
    const expected = ZGQIndex.fromBytes(plain).search(query, 5);
    const tolerant = ZGQIndex.fromBytes(edited((meta, sections) => {
      meta.comment = 'written by a newer zgq';
      meta.tuning = { recall: 0.95 };
      sections.splice(3, 0, { tag: 'note', bytes: extra });
    }));
    assert.deepEqual(tolerant.search(query, 5), expected);
  });

  test('a known section the header has no use for is CORRUPT_FILE', () => {
    expectZgq(
      () => ZGQIndex.fromBytes(edited((_, sections) => {
        const rows = sections.find((x) => x.tag === 'VF16')!;
        sections.push({ tag: 'VECS', bytes: new Uint8Array(rows.bytes.length * 2) });
      })),
      'CORRUPT_FILE',
      /section VECS is present, but the header \(storage float16/,
    );
    expectZgq(() => ZGQIndex.fromBytes(edited((_, sections) => void sections.push({ tag: 'GSTA', bytes: new Uint8Array(8) }))), 'CORRUPT_FILE', /GSTA is present/);
  });

  test('centroids and codebooks beyond the value limit are CORRUPT_FILE (a finding of test/fuzz-file.test.ts)', () => {
    const limit = valueLimit(dim);
    for (const [tag, value] of [['CENT', 1.01 * limit], ['PQCB', 2.02 * limit], ['CENT', -3e38]] as const) {
      const bytes = edited((_, sections) => {
        const s = sections.find((x) => x.tag === tag)!;
        new Float32Array(s.bytes.buffer, s.bytes.byteOffset, s.bytes.length >> 2)[5] = value;
      });
      expectZgq(() => ZGQIndex.fromBytes(bytes), 'CORRUPT_FILE', new RegExp(`section ${tag}: value .* at element 5 lies beyond`));
    }
  });

  test('the released format 1 fixture has no marks and still loads', async () => {
    const fixture = new URL('./fixtures/v1-small.zgq', import.meta.url);
    const decoded = decodeContainer(new Uint8Array(await readFile(fixture)));
    assert.equal(decoded.version, 1);
    assert.equal(decoded.meta.requires, undefined);
    assert.equal((await ZGQIndex.load(fixture.pathname)).size, 300);
  });
});
