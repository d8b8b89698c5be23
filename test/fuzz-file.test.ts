// Crafted-file fuzzer for the index reader (issue 15): valid saved indexes of several shapes get
// seeded mutations (bit flips, chosen values in counts, offsets, ids and neighbour lists, truncation,
// section reordering, duplication and resizing, header and meta JSON edits) and then their checksums
// recomputed, so that the mutations reach the parsers and validators behind the CRCs. Every case
// must either fail with a ZGQError (CORRUPT_FILE, UNSUPPORTED_VERSION, INVALID_ARGUMENT), or load
// into an index that then searches, adds, removes, compacts and saves (and reloads what it saved)
// without any other exception, WebAssembly trap, NaN distance or returned id it does not hold.
//
// The suite runs ZGQ_FUZZ_CASES (default 8000, about 6 s on one core) cases from seed
// ZGQ_FUZZ_SEED (default 1). A longer run (about 70 s per 100000):
//   ZGQ_FUZZ_CASES=100000 ZGQ_FUZZ_SEED=7 node --import tsx --test test/fuzz-file.test.ts
// A failure prints its case number; replay that case alone with ZGQ_FUZZ_CASE=<number> (same
// seed). ZGQ_FUZZ_TRACE=1 writes each case's number and mutations to stderr before it loads, to
// find a case that hangs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_ID, type SearchOptions, type SearchResult, ZGQError, ZGQIndex, type ZGQOptions } from '../src/index.js';
import { crc32, decodeContainer, encodeContainer, MAX_SECTIONS, type Section } from '../src/format.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { Rng } from '../src/random.js';

const CASES = Number(process.env.ZGQ_FUZZ_CASES ?? 8000);
const SEED = Number(process.env.ZGQ_FUZZ_SEED ?? 1);
const ONLY = process.env.ZGQ_FUZZ_CASE === undefined ? undefined : Number(process.env.ZGQ_FUZZ_CASE);
const TRACE = process.env.ZGQ_FUZZ_TRACE === '1';
/** Codes a crafted file may be refused with. */
const LOAD_CODES = new Set(['CORRUPT_FILE', 'UNSUPPORTED_VERSION', 'INVALID_ARGUMENT']);

interface Base {
  name: string;
  bytes: Uint8Array;
  dim: number;
}

/** Small valid indexes covering the file's optional parts: DELS, TZON, VF16 / VECS, GCEN / GSTA, VTRM, every metric. */
async function makeBases(): Promise<Base[]> {
  const bases: Base[] = [];
  const make = async (name: string, options: ZGQOptions, n: number, shape: (index: ZGQIndex, data: Float32Array) => Promise<void>): Promise<void> => {
    const data = clusteredGaussian({ n: n + 64, nQueries: 1, dim: options.dim, seed: bases.length + 11 }).base;
    const index = new ZGQIndex({ seed: 5, ...options });
    await index.build(data.subarray(0, n * options.dim), { threads: 1 });
    await shape(index, data);
    bases.push({ name, bytes: index.toBytes(), dim: options.dim });
  };
  const ids = (from: number, count: number) => Uint32Array.from({ length: count }, (_, i) => from + i);
  await make('l2 float32 with removals', { dim: 8, storage: 'float32', degree: 8 }, 120, async (index) => {
    index.remove([3, 17, 42, 99]);
  });
  await make('ip float16 with appended nodes', { dim: 6, metric: 'ip', storage: 'float16', degree: 6, pqSubspaces: 2 }, 100, async (index, data) => {
    await index.add(data.subarray(100 * 6, 120 * 6), ids(1000, 20), { threads: 1 });
    await index.add(data.subarray(120 * 6, 125 * 6), ids(2000, 5), { threads: 1 });
    index.remove([1001]);
  });
  await make('cosine without residual, zone groups', { dim: 4, metric: 'cosine', residual: false, zones: 80, degree: 4, pqSubspaces: 1 }, 400, async () => {});
  await make('l2 float16 per-zone graph', { dim: 5, storage: 'float16', graph: 'per-zone', degree: 5, zones: 4 }, 60, async () => {});
  return bases;
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const readU64 = (v: DataView, at: number) => v.getUint32(at, true) + v.getUint32(at + 4, true) * 2 ** 32;

interface Entry {
  at: number;
  tag: string;
  offset: number;
  length: number;
}

/** The section table as far as it can be read, without judging it. */
function tableOf(b: Uint8Array): Entry[] {
  if (b.length < 36) return [];
  const v = dv(b);
  const n = v.getUint32(24, true);
  if (n > MAX_SECTIONS || 32 + 32 * n + 4 > b.length) return [];
  return Array.from({ length: n }, (_, i) => {
    const at = 32 + 32 * i;
    return { at, tag: String.fromCharCode(...b.subarray(at, at + 4)), offset: readU64(v, at + 8), length: readU64(v, at + 16) };
  });
}

/** Recompute the meta, section and header checksums over whatever the mutated bytes now say. */
function reseal(b: Uint8Array): void {
  if (b.length < 36) return;
  const v = dv(b);
  const n = v.getUint32(24, true);
  if (n > MAX_SECTIONS || 32 + 32 * n + 4 > b.length) return;
  const tableEnd = 32 + 32 * n;
  const metaLength = v.getUint32(16, true);
  if (tableEnd + 4 + metaLength <= b.length) v.setUint32(20, crc32(b.subarray(tableEnd + 4, tableEnd + 4 + metaLength)), true);
  for (const e of tableOf(b)) {
    if (e.offset + e.length <= b.length) v.setUint32(e.at + 24, crc32(b.subarray(e.offset, e.offset + e.length)), true);
  }
  v.setUint32(tableEnd, crc32(b.subarray(0, tableEnd)), true);
}

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(list.length)];
}

const U32_TAGS = ['ADJC', 'ZSTA', 'ZENT', 'GSTA', 'IDS_', 'TZON'];
const F32_TAGS = ['VECS', 'PQCB', 'CENT', 'GCEN', 'VTRM'];
const KNOWN_TAGS = ['VECS', 'VF16', 'CODE', 'ADJC', 'PQCB', 'CENT', 'ZSTA', 'ZENT', 'GCEN', 'GSTA', 'VTRM', 'IDS_', 'DELS', 'TZON'];
const F32_VALUES = [NaN, Infinity, -Infinity, 0, -0, 1e-45, 3.4e38, -3.4e38, 1e20, -1e20, 65504, 65520, 1, -1];
const F16_VALUES = [0x7c00, 0xfc00, 0x7e00, 0x7bff, 0xfbff, 0x0001, 0x8000, 0x3c00];

/** Adjacency row length from the (possibly mutated) meta; 1 when the meta's degree is nonsense. */
function strideOf(meta: Record<string, unknown>): number {
  const degree = meta.degree;
  return typeof degree === 'number' && Number.isInteger(degree) && degree > 0 && degree <= 1024 ? degree + 1 : 1;
}

/** A value for element `i` of a u32 section that sits on some boundary the reader must check. */
function u32Value(rng: Rng, meta: Record<string, unknown>, current: Uint32Array, i: number): number {
  const n = Number(meta.n);
  const z = Number(meta.nZones);
  return pick(rng, [
    0, 1, 2, n - 1, n, n + 1, z - 1, z, z + 1, Number(meta.zoned ?? n), Number(meta.degree), Number(meta.degree) + 1,
    0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, current[i] + 1, current[i] - 1, current[rng.int(current.length)], i, rng.nextU32(),
  ]) >>> 0;
}

/** Mutations on the decoded structure, re-encoded with fresh checksums. */
function mutateContainer(rng: Rng, bytes: Uint8Array, log: string[]): Uint8Array {
  const decoded = decodeContainer(bytes);
  const meta = structuredClone(decoded.meta) as Record<string, unknown>;
  let sections: Section[] = [...decoded.sections].map(([tag, b]) => ({ tag, bytes: b.slice() }));
  const kind = rng.int(14);
  const someSection = () => sections[rng.int(sections.length)];
  switch (kind) {
    case 0:
    case 1: {
      // a meta field, or an option, set to a value on or past some limit
      // earlier byte damage may have left these anything at all
      const record = (x: unknown): Record<string, unknown> => (typeof x === 'object' && x !== null ? x as Record<string, unknown> : {});
      const options = record(meta.options);
      const search = record(options.search);
      const targets: [Record<string, unknown>, string][] = [
        ...['kind', 'n', 'dim', 'm', 'degree', 'nZones', 'nGroups', 'residual', 'storage', 'zoned', 'requires'].map((k) => [meta, k] as [Record<string, unknown>, string]),
        ...['dim', 'metric', 'seed', 'zones', 'degree', 'efConstruction', 'alpha', 'pqSubspaces', 'residual', 'graph', 'storage'].map((k) => [options, k] as [Record<string, unknown>, string]),
        ...['ef', 'nProbe', 'rerank', 'scan', 'scanRatio', 'traversal'].map((k) => [search, k] as [Record<string, unknown>, string]),
      ];
      const [target, key] = pick(rng, targets);
      const old = target[key];
      const num = typeof old === 'number' ? old : 1;
      const value = pick(rng, [
        undefined, null, 0, 1, -1, 0.5, num - 1, num + 1, num * 2, 2 ** 31, 2 ** 32 + 1, 1e300, -1e300, NaN, 'float16', 'float32', 'l2', 'ip', 'cosine',
        'hamming', 'exact', 'pq', 'per-zone', 'unified', true, false, [], ['deleted-nodes'], ['appended-nodes'], ['teleport'], {}, '', 'zgq-index',
      ]);
      if (value === undefined) delete target[key];
      else target[key] = value;
      log.push(`meta ${target === meta ? '' : target === options ? 'options.' : 'options.search.'}${key} ${JSON.stringify(old)} -> ${JSON.stringify(value)}`);
      break;
    }
    case 2: {
      const extra = pick(rng, [{ futureField: { a: [1, 2] } }, { comment: 'x'.repeat(50) }, { requires: [] }]);
      Object.assign(meta, extra);
      log.push(`meta add ${JSON.stringify(extra)}`);
      break;
    }
    case 3: {
      const s = someSection();
      sections = sections.filter((x) => x !== s);
      log.push(`drop section ${s.tag}`);
      break;
    }
    case 4: {
      // a known section the header has no use for, or an optional or unknown critical one
      const tag = pick(rng, [...KNOWN_TAGS, 'xtra', 'XTRA', 'zzzz'].filter((t) => !sections.some((s) => s.tag === t)));
      const like = someSection();
      sections.splice(rng.int(sections.length + 1), 0, { tag, bytes: like.bytes.slice() });
      log.push(`add section ${tag} (bytes of ${like.tag})`);
      break;
    }
    case 5: {
      const a = someSection();
      const b = someSection();
      [a.bytes, b.bytes] = [b.bytes, a.bytes];
      log.push(`swap payloads ${a.tag} <-> ${b.tag}`);
      break;
    }
    case 6: {
      rng.shuffle(sections as unknown as { length: number; [i: number]: number });
      log.push(`reorder sections ${sections.map((s) => s.tag).join(',')}`);
      break;
    }
    case 7: {
      const s = someSection();
      const delta = pick(rng, [-16, -8, -4, -2, -1, 1, 2, 4, 8, 16]);
      const size = Math.max(0, s.bytes.length + delta);
      const resized = new Uint8Array(size);
      resized.set(s.bytes.subarray(0, size));
      s.bytes = resized;
      log.push(`resize ${s.tag} by ${delta}`);
      break;
    }
    case 8:
    case 9: {
      // a whole section of one value: every node deleted, no edges, all codes 255, huge codebooks
      const s = someSection();
      if (F32_TAGS.includes(s.tag)) {
        const value = pick(rng, F32_VALUES);
        new Float32Array(s.bytes.buffer, s.bytes.byteOffset, s.bytes.length >> 2).fill(value);
        log.push(`${s.tag} all ${value}`);
      } else if (s.tag === 'VF16') {
        const value = pick(rng, F16_VALUES);
        new Uint16Array(s.bytes.buffer, s.bytes.byteOffset, s.bytes.length >> 1).fill(value);
        log.push(`VF16 all ${value}`);
      } else if (s.tag === 'ADJC') {
        const a = new Uint32Array(s.bytes.buffer, s.bytes.byteOffset, s.bytes.length >> 2);
        const stride = strideOf(meta);
        const count = pick(rng, [0, 1, stride - 1]);
        for (let i = 0; i < a.length; i += stride) a[i] = Math.min(count, a[i] === 0 ? count : a[i]);
        log.push(`ADJC counts -> ${count}`);
      } else if (s.tag === 'DELS') {
        const n = Number(meta.n);
        s.bytes.fill(0xff);
        if (n & 7) s.bytes[s.bytes.length - 1] = (1 << (n & 7)) - 1;
        log.push('DELS: every node deleted');
      } else {
        const value = pick(rng, [0, 0xff]);
        s.bytes.fill(value);
        log.push(`${s.tag} all bytes ${value}`);
      }
      break;
    }
    default: {
      // a value inside a section, on a boundary the validator must check
      const s = someSection();
      if (U32_TAGS.includes(s.tag) && s.bytes.length >= 4) {
        const a = new Uint32Array(s.bytes.buffer, s.bytes.byteOffset, s.bytes.length >> 2);
        const stride = strideOf(meta);
        // neighbour counts and lists are where a walk would read out of bounds
        const i = s.tag === 'ADJC' && rng.next() < 0.5 ? stride * rng.int(Math.max(1, Math.floor(a.length / stride))) : rng.int(a.length);
        const value = u32Value(rng, meta, a, i);
        log.push(`${s.tag}[${i}] ${a[i]} -> ${value}`);
        a[i] = value;
      } else if ((F32_TAGS.includes(s.tag)) && s.bytes.length >= 4) {
        const a = new Float32Array(s.bytes.buffer, s.bytes.byteOffset, s.bytes.length >> 2);
        const i = rng.int(a.length);
        const value = pick(rng, F32_VALUES);
        log.push(`${s.tag}[${i}] ${a[i]} -> ${value}`);
        a[i] = value;
      } else if (s.tag === 'VF16' && s.bytes.length >= 2) {
        const a = new Uint16Array(s.bytes.buffer, s.bytes.byteOffset, s.bytes.length >> 1);
        const i = rng.int(a.length);
        const value = pick(rng, F16_VALUES);
        log.push(`VF16[${i}] ${a[i]} -> ${value}`);
        a[i] = value;
      } else if (s.bytes.length > 0) {
        const i = rng.int(s.bytes.length);
        const value = pick(rng, [0, 1, 0x7f, 0x80, 0xff, rng.int(256)]);
        log.push(`${s.tag} byte ${i} ${s.bytes[i]} -> ${value}`);
        s.bytes[i] = value;
      }
    }
  }
  return encodeContainer(meta, sections);
}

/** Mutations on the raw bytes (resealed afterwards by the caller). */
function mutateBytes(rng: Rng, bytes: Uint8Array, log: string[]): Uint8Array {
  let b = bytes.slice();
  const table = tableOf(b);
  const v = dv(b);
  // what is left of a file cut short has no header to aim at
  switch (b.length < 36 ? pick(rng, [0, 6]) : rng.int(9)) {
    case 0: {
      if (!b.length) break;
      const i = rng.int(b.length);
      const bit = rng.int(8);
      b[i] ^= 1 << bit;
      log.push(`flip byte ${i} bit ${bit}`);
      break;
    }
    case 1: {
      // header: version, flags, meta length, meta crc, section count, reserved
      const at = pick(rng, [8, 12, 16, 24, 28]);
      const old = v.getUint32(at, true);
      const value = pick(rng, [0, 1, 2, old + 1, old - 1, old + 32, 0xffffffff, 0x80000000, MAX_SECTIONS, MAX_SECTIONS + 1]) >>> 0;
      v.setUint32(at, value, true);
      log.push(`header u32 @${at} ${old} -> ${value}`);
      break;
    }
    case 2:
    case 3: {
      if (!table.length) break;
      const e = pick(rng, table);
      const field = pick(rng, ['offset', 'length', 'tag', 'reserved']);
      if (field === 'tag') {
        const tag = pick(rng, [...KNOWN_TAGS, 'xtra', 'XTRA', '\0\0\0\0', pick(rng, table).tag]);
        for (let k = 0; k < 4; k++) b[e.at + k] = tag.charCodeAt(k);
        log.push(`entry ${e.tag} tag -> ${JSON.stringify(tag)}`);
      } else if (field === 'reserved') {
        v.setUint32(e.at + pick(rng, [4, 28]), 1, true);
        log.push(`entry ${e.tag} reserved -> 1`);
      } else {
        const old = field === 'offset' ? e.offset : e.length;
        const value = Math.max(0, pick(rng, [0, old + 16, old - 16, old + 1, old - 1, old + 4, old * 2, b.length, b.length - old, 2 ** 32, 2 ** 52, rng.int(b.length)]));
        v.setUint32(e.at + (field === 'offset' ? 8 : 16), value % 2 ** 32, true);
        v.setUint32(e.at + (field === 'offset' ? 12 : 20), Math.floor(value / 2 ** 32), true);
        log.push(`entry ${e.tag} ${field} ${old} -> ${value}`);
      }
      break;
    }
    case 4: {
      // two entries swapped (the sections' order in the table) or one copied over another (duplicate tag)
      if (table.length < 2) break;
      const x = pick(rng, table);
      const y = pick(rng, table);
      const ex = b.slice(x.at, x.at + 32);
      if (rng.next() < 0.5) b.copyWithin(x.at, y.at, y.at + 32);
      else {
        b.copyWithin(x.at, y.at, y.at + 32);
        b.set(ex, y.at);
      }
      log.push(`entries ${x.tag} / ${y.tag} swapped or duplicated`);
      break;
    }
    case 5: {
      const len = pick(rng, [0, 8, 35, 36, rng.int(b.length), b.length - 1, b.length - 16]);
      b = b.slice(0, Math.max(0, len));
      log.push(`truncate to ${b.length}`);
      break;
    }
    case 6: {
      const add = pick(rng, [1, 4, 16, 32]);
      const longer = new Uint8Array(b.length + add);
      longer.set(b);
      b = longer;
      log.push(`extend by ${add} zero bytes`);
      break;
    }
    case 7: {
      // bytes removed or inserted in the middle: everything after shifts
      const at = rng.int(b.length);
      const count = pick(rng, [1, 4, 16]);
      if (rng.next() < 0.5) {
        b = new Uint8Array([...b.subarray(0, at), ...b.subarray(Math.min(b.length, at + count))]);
        log.push(`delete ${count} bytes at ${at}`);
      } else {
        b = new Uint8Array([...b.subarray(0, at), ...new Uint8Array(count).fill(0xa5), ...b.subarray(at)]);
        log.push(`insert ${count} bytes at ${at}`);
      }
      break;
    }
    default: {
      // a chosen u32 inside a section's payload, found through the table
      const e = table.length ? pick(rng, table) : undefined;
      if (!e || e.length < 4 || e.offset + e.length > b.length) break;
      const i = rng.int(e.length >> 2);
      const at = e.offset + 4 * i;
      const old = v.getUint32(at, true);
      const value = pick(rng, [0, 1, old + 1, old - 1, 0xffffffff, 0x7fc00000, 0x7f800000, rng.nextU32()]) >>> 0;
      v.setUint32(at, value, true);
      log.push(`${e.tag} u32 #${i} ${old} -> ${value}`);
    }
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// What a loaded index must survive
// ---------------------------------------------------------------------------------------------

/** Runs `op`; a ZGQError is an acceptable refusal (its code is noted), anything else fails the case. */
async function tolerate<T>(codes: string[], op: () => T | Promise<T>): Promise<T | undefined> {
  try {
    return await op();
  } catch (e) {
    if (e instanceof ZGQError) {
      codes.push(e.code);
      return undefined;
    }
    throw e;
  }
}

/** Checks results row by row (`k` slots each; one row for a single search). */
function checkResult(index: ZGQIndex, r: SearchResult | undefined, what: string, k = r?.ids.length ?? 0): void {
  if (!r) return;
  let seen = new Set<number>();
  for (let i = 0; i < r.ids.length; i++) {
    if (i % k === 0) seen = new Set();
    const id = r.ids[i];
    const d = r.distances[i];
    if (Number.isNaN(d)) throw new Error(`${what}: NaN distance in slot ${i}`);
    if (id === NO_ID) continue;
    if (!Number.isFinite(d)) throw new Error(`${what}: distance ${d} for id ${id}`);
    if (!index.has(id)) throw new Error(`${what}: returned id ${id}, which the index does not hold`);
    if (seen.has(id)) throw new Error(`${what}: returned id ${id} twice`);
    seen.add(id);
  }
}

async function exercise(index: ZGQIndex, rng: Rng, dim: number, codes: string[], saveDir: string | null): Promise<void> {
  const query = () => Float32Array.from({ length: dim }, () => rng.normal());
  const optionsList: (SearchOptions | undefined)[] = [undefined, { traversal: 'exact' }, { ef: 1 + rng.int(12), nProbe: 1 + rng.int(3), scan: rng.int(3) }, { rerank: 1 }];
  for (const options of optionsList) {
    const k = 1 + rng.int(8);
    checkResult(index, await tolerate(codes, () => index.search(query(), k, options)), `search k=${k} ${JSON.stringify(options)}`);
  }
  const batch = await tolerate(codes, () => index.searchBatch(Float32Array.from({ length: 3 * dim }, () => rng.normal()), 4, { threads: 1 }));
  checkResult(index, batch, 'searchBatch', 4);
  const hit = await tolerate(codes, () => index.search(query(), 6));
  const present = hit ? [...hit.ids].filter((id) => id !== NO_ID) : [];
  checkResult(index, await tolerate(codes, () => index.search(query(), 3, { filter: present.slice(0, 2) })), 'filtered search');
  await tolerate(codes, () => index.remove(present.slice(0, 2)));
  for (const id of present.slice(0, 2)) if (index.has(id)) throw new Error(`removed id ${id} is still held`);
  // new ids, and one that replaces a held vector
  const ids = [4_000_000_000 + rng.int(1000), 4_000_001_000 + rng.int(1000)];
  if (present.length > 2) ids.push(present[2]);
  const added = await tolerate(codes, async () => {
    await index.add(Float32Array.from({ length: ids.length * dim }, () => rng.normal()), ids, { threads: 1 });
    return true;
  });
  if (added) for (const id of ids) if (!index.has(id)) throw new Error(`added id ${id} is not held`);
  checkResult(index, await tolerate(codes, () => index.search(query(), 5)), 'search after add');
  // every node, so that any stored row with an overflowing or NaN distance shows
  checkResult(index, await tolerate(codes, () => index.search(query(), index.size + 2, { traversal: pick(rng, ['pq', 'exact'] as const) })), 'search for all');
  if (rng.next() < 0.3) await tolerate(codes, () => index.compact());
  checkResult(index, await tolerate(codes, () => index.search(query(), 5, { traversal: 'exact' })), 'search after compact');
  await tolerate(codes, () => index.stats());
  // what the index writes must read back
  const bytes = await tolerate(codes, () => index.toBytes());
  if (bytes) {
    const again = ZGQIndex.fromBytes(bytes);
    checkResult(again, again.search(query(), 5), 'search after reload');
  }
  if (saveDir) {
    const path = join(saveDir, 'case.zgq');
    await tolerate(codes, () => index.save(path));
    await tolerate(codes, () => ZGQIndex.load(path));
  }
}

test(`crafted files: ${ONLY === undefined ? CASES : 1} seeded mutations are refused with a ZGQError or load into a working index`, { timeout: 600_000 }, async (t) => {
  const bases = await makeBases();
  // every base is what the fuzzer claims: valid, of the shape intended
  const shapes = bases.map((b) => decodeContainer(b.bytes).sections);
  assert.ok(shapes[0].has('DELS') && shapes[0].has('VECS'), 'base 0 has removals and float32 rows');
  assert.ok(shapes[1].has('TZON') && shapes[1].has('VF16'), 'base 1 has appended nodes and float16 rows');
  assert.ok(shapes[2].has('GSTA') && !shapes[2].has('VTRM'), 'base 2 has zone groups and no residual terms');
  for (const b of bases) ZGQIndex.fromBytes(b.bytes);

  const saveDir = mkdtempSync(join(tmpdir(), 'zgq-fuzz-'));
  const failures: string[] = [];
  const outcomes = new Map<string, number>();
  const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  try {
    const first = ONLY ?? 0;
    const last = ONLY === undefined ? CASES : ONLY + 1;
    for (let c = first; c < last; c++) {
      const rng = new Rng(SEED * 1_000_003 + c);
      const base = bases[c % bases.length];
      const log: string[] = [base.name];
      let bytes = base.bytes;
      let stage = 'mutate';
      try {
        const steps = 1 + rng.int(3);
        for (let s = 0; s < steps; s++) {
          if (rng.next() < 0.5) {
            // container mutations need a decodable container; after byte damage, stay with bytes
            try {
              decodeContainer(bytes);
            } catch {
              bytes = mutateBytes(rng, bytes, log);
              continue;
            }
            bytes = mutateContainer(rng, bytes, log);
          } else {
            bytes = mutateBytes(rng, bytes, log);
            reseal(bytes);
          }
        }
        if (TRACE) process.stderr.write(`case ${c}: ${log.join('; ')}\n`);
        stage = 'load';
        let index: ZGQIndex;
        try {
          index = ZGQIndex.fromBytes(bytes);
        } catch (e) {
          if (e instanceof ZGQError && LOAD_CODES.has(e.code)) {
            count(`refused ${e.code}`);
            continue;
          }
          throw e;
        }
        count('loaded');
        stage = 'use';
        const codes: string[] = [];
        await exercise(index, rng, base.dim, codes, c % 97 === 0 ? saveDir : null);
        for (const code of codes) count(`loaded, then ${code}`);
      } catch (e) {
        const err = e as Error;
        failures.push(`case ${c} (${stage}): ${log.join('; ')}\n    ${err?.stack?.split('\n').slice(0, 6).join('\n    ') ?? String(e)}`);
        if (failures.length >= 20) break;
      }
    }
  } finally {
    rmSync(saveDir, { recursive: true, force: true });
  }
  const summary = [...outcomes].sort().map(([k, n]) => `${k}: ${n}`).join(', ');
  t.diagnostic(`seed ${SEED}: ${summary}`);
  assert.equal(failures.length, 0, `${failures.length} failing cases (seed ${SEED}; outcomes ${summary}):\n${failures.join('\n')}`);
  // the mutations must reach past the checksums: some files load, some are refused
  if (ONLY === undefined && CASES >= 500) {
    assert.ok((outcomes.get('loaded') ?? 0) > CASES / 20, `too few crafted files load to test the index on them: ${summary}`);
    assert.ok((outcomes.get('refused CORRUPT_FILE') ?? 0) > CASES / 4, summary);
  }
});
