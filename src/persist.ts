/**
 * An index as a container (src/format.ts): a JSON header with shapes and options, and one tagged
 * section per flat array. Loading checks every count against the header and every stored id,
 * neighbour and range before the index is used, so a damaged file fails with CORRUPT_FILE.
 *
 * Sections: VECS f32[n*dim] or VF16 u16[n*dim] (binary16) vectors (internal order) | CODE u8[n*m] PQ codes | ADJC u32[n*(R+1)]
 * graph | PQCB f32[256*dim] codebooks | CENT f32[Z*dim] zone centroids | ZSTA u32[Z+1] zone ranges |
 * ZENT u32[Z] zone medoids | GCEN f32[G*dim], GSTA u32[G+1] selection tree (G > 0) |
 * VTRM f32[n] residual node terms (residual PQ) | IDS_ u32[n] caller ids | DELS u8[ceil(n/8)] deleted
 * nodes (bit i & 7 of byte i >> 3; only when some are deleted and not yet compacted) | TZON
 * u32[n - zoned] zones of the nodes appended after the last layout (header `zoned`: nodes laid out
 * in ZSTA's ranges; absent: all n).
 *
 * A sharded index (src/shards.ts) is one container whose header requires 'shards' and names its
 * shard count: its sections S000, S001, ... each hold one shard as a whole container of its own
 * (header, sections, checksums), written and read by the code above.
 */
import { assert, firstNonFinite, ZGQError } from './errors.js';
import { type Checksum, decodeContainer, type DecodedContainer, encodeContainer, isOptionalTag, type PartlyRead, type Section, sectionF32, sectionU16, sectionU32, sectionU8 } from './format.js';
import type { Kernels } from './kernels/wasm.js';
import { PQ_CENTROIDS } from './pq.js';
import { IdLookup } from './ids.js';
import { type IndexArrays, type IndexLayout, viewArrays } from './layout.js';
import type { ResolvedOptions, VectorStorage } from './options.js';
import { resolveOptions, scansEveryVector } from './options.js';

/** Header of a saved index. */
export interface IndexMeta {
  kind: 'zgq-index';
  options: ResolvedOptions;
  n: number;
  dim: number;
  m: number;
  degree: number;
  nZones: number;
  nGroups: number;
  residual: boolean;
  /** Storage of the re-ranking vectors (files without the field hold float32). */
  storage: VectorStorage;
  /** Nodes laid out in the zone ranges; the rest were appended in place (files without the field: n). */
  zoned: number;
  /** Features a reader must understand ({@link KNOWN_FEATURES}); absent when the file uses none. */
  requires?: string[];
}

/**
 * Features a reader must understand to read a file correctly, named in the header's `requires`
 * (format.ts, compatibility rules). Format version 1 as first released (test/fixtures/v1-small.zgq)
 * uses none; a writer lists each one it uses, and a reader refuses a file that needs one it does not
 * know, rather than misreading it. An older reader that skipped DELS would bring removed vectors back.
 * - 'deleted-nodes': DELS marks removed nodes that searches must never return.
 * - 'appended-nodes': nodes past header `zoned` lie outside the zone ranges, their zones in TZON.
 * - 'scan-traversal': the search defaults (options.search.traversal) name the 'scan' or 'fastscan' traversal,
 *   chosen by tune; a reader without it would take the options for damage.
 * - 'shards': the index is several shards, each a container in a section of its own (see the top).
 */
export const KNOWN_FEATURES: ReadonlySet<string> = new Set(['deleted-nodes', 'appended-nodes', 'scan-traversal', 'shards']);

/** Most shards a file may hold (section tags S000 ... S255). */
const MAX_SHARD_SECTIONS = 256;

/** Section tag of shard p. */
export function shardTag(p: number): string {
  return `S${String(p).padStart(3, '0')}`;
}

/** Whether a decoded container holds a sharded index. */
export function isSharded(decoded: DecodedContainer): boolean {
  const requires = decoded.meta.requires;
  return Array.isArray(requires) && requires.includes('shards');
}

/**
 * The container of a sharded index: its header (options, shard count) and one section per shard
 * holding that shard's container, encoded here (a copy of each shard).
 */
export function shardedContainer(
  shards: { meta: IndexMeta; sections: Section[] }[], options: ResolvedOptions, checksum: Checksum,
): { meta: Record<string, unknown>; sections: Section[] } {
  let n = 0;
  for (const shard of shards) n += shard.meta.n;
  const meta = { kind: 'zgq-index', requires: ['shards'], options, dim: options.dim, n, shards: shards.length };
  const sections = shards.map((shard, p) => ({ tag: shardTag(p), bytes: encodeContainer(shard.meta as unknown as Record<string, unknown>, shard.sections, checksum) }));
  return { meta, sections };
}

/**
 * The shards of a sharded index's container, each validated as a whole index (fromContainer) and
 * checked against the header: same dimension and metric, one section per shard and nothing else.
 */
export function fromShardedContainer(
  decoded: DecodedContainer, name: string, checksum: Checksum, partly?: PartlyRead,
): { meta: IndexMeta; arrays: IndexArrays; rowsAt?: number }[] {
  const raw = decoded.meta;
  if (raw.kind !== 'zgq-index') throw corrupt(name, `not a ZGQ index (header kind ${JSON.stringify(raw.kind)})`);
  const count = intField(raw, 'shards', 1, MAX_SHARD_SECTIONS, name);
  const dim = intField(raw, 'dim', 1, 1 << 16, name);
  checkFeatures(raw, name);
  const tags = [...decoded.sections.keys(), ...(partly?.shards.flatMap((shard, p) => (shard ? [shardTag(p)] : [])) ?? [])];
  for (const tag of tags) {
    const p = /^S\d{3}$/.test(tag) ? Number(tag.slice(1)) : -1;
    if (p >= count) throw corrupt(name, `section ${tag} is present, but the header names ${count} shards`);
    if (p < 0 && !isOptionalTag(tag)) throw new ZGQError('UNSUPPORTED_VERSION', `${name}: holds a section this build of zgq cannot read: '${tag}'; upgrade zgq to open it`);
  }
  const shards: { meta: IndexMeta; arrays: IndexArrays; rowsAt?: number }[] = [];
  let metric: string | undefined;
  let total = 0;
  for (let p = 0; p < count; p++) {
    const bytes = decoded.sections.get(shardTag(p));
    const opened = partly?.shards[p];
    if (!bytes && !opened) throw corrupt(name, `section ${shardTag(p)} (shard ${p} of ${count}) is missing`);
    const shardName = `${name} (shard ${p})`;
    const shardDecoded = opened ?? decodeContainer(bytes!, shardName, checksum);
    if (isSharded(shardDecoded)) throw corrupt(shardName, 'a shard holds shards');
    const shard = fromContainer(shardDecoded, shardName, opened?.left);
    if (shard.meta.dim !== dim) throw corrupt(shardName, `dim ${shard.meta.dim} differs from the index's ${dim}`);
    metric ??= shard.meta.options.metric;
    if (shard.meta.options.metric !== metric) throw corrupt(shardName, `metric ${shard.meta.options.metric} differs from shard 0's ${metric}`);
    total += shard.meta.n;
    shards.push(shard);
  }
  if (raw.n !== undefined && raw.n !== total) throw corrupt(name, `header n ${JSON.stringify(raw.n)} differs from the shards' ${total} vectors`);
  return shards;
}

/** Every critical section tag this build reads (the module comment says what each holds). */
const SECTION_TAGS: ReadonlySet<string> = new Set([
  'VECS', 'VF16', 'CODE', 'ADJC', 'PQCB', 'CENT', 'ZSTA', 'ZENT', 'GCEN', 'GSTA', 'VTRM', 'IDS_', 'DELS', 'TZON',
]);

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Header of a built index. */
export function metaOf(lay: IndexLayout, options: ResolvedOptions, appended: number): IndexMeta {
  const { n, dim, m, degree, nZones, nGroups } = lay;
  const storage: VectorStorage = lay.halfStorage ? 'float16' : 'float32';
  return { kind: 'zgq-index', options, n, dim, m, degree, nZones, nGroups, residual: lay.residual, storage, zoned: n - appended };
}

/** Sections of a built index (views into the arena: encode before the arena changes). */
export function toSections(
  kernels: Kernels, lay: IndexLayout, ids: Uint32Array, deleted: Uint8Array | null, tailZones: Uint32Array, options: ResolvedOptions,
): { meta: IndexMeta; sections: Section[] } {
  const meta = metaOf(lay, options, tailZones.length);
  const a = viewArrays(kernels, lay, ids, deleted, tailZones);
  const sections: Section[] = [
    { tag: lay.halfStorage ? 'VF16' : 'VECS', bytes: bytesOf(a.vectors) },
    { tag: 'CODE', bytes: a.codes },
    { tag: 'ADJC', bytes: bytesOf(a.adjacency) },
    { tag: 'PQCB', bytes: bytesOf(a.codebooks) },
    { tag: 'CENT', bytes: bytesOf(a.centroids) },
    { tag: 'ZSTA', bytes: bytesOf(a.zoneStart) },
    { tag: 'ZENT', bytes: bytesOf(a.zoneEntry) },
    { tag: 'IDS_', bytes: bytesOf(a.ids) },
  ];
  if (lay.nGroups > 0) {
    sections.push({ tag: 'GCEN', bytes: bytesOf(a.groupCentroids) });
    sections.push({ tag: 'GSTA', bytes: bytesOf(a.groupStart) });
  }
  if (lay.residual) sections.push({ tag: 'VTRM', bytes: bytesOf(a.vecTerm) });
  if (a.deleted) sections.push({ tag: 'DELS', bytes: a.deleted });
  if (tailZones.length) sections.push({ tag: 'TZON', bytes: bytesOf(tailZones) });
  const requires = [
    ...(a.deleted ? ['deleted-nodes'] : []), ...(tailZones.length ? ['appended-nodes'] : []), ...(scansEveryVector(options.search.traversal) ? ['scan-traversal'] : []),
  ];
  if (requires.length) meta.requires = requires;
  return { meta, sections };
}

function corrupt(name: string, what: string): ZGQError {
  return new ZGQError('CORRUPT_FILE', `${name}: ${what}`);
}

function intField(meta: Record<string, unknown>, key: string, min: number, max: number, name: string): number {
  const v = meta[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw corrupt(name, `header field ${key} must be an integer in [${min}, ${max}]; found ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Refuses what this build cannot honour: features in header `requires` it does not know, and
 * critical sections (format.ts `isOptionalTag`) it does not read. Unknown optional sections and
 * unknown header fields are additions it may ignore.
 */
function checkCompatible(raw: Record<string, unknown>, sections: Map<string, Uint8Array>, name: string): void {
  checkFeatures(raw, name);
  const unknown = [...sections.keys()].filter((tag) => !isOptionalTag(tag) && !SECTION_TAGS.has(tag));
  if (unknown.length) {
    throw new ZGQError(
      'UNSUPPORTED_VERSION',
      `${name}: holds ${unknown.length === 1 ? 'a section' : 'sections'} this build of zgq cannot read: ${unknown.map((t) => `'${t}'`).join(', ')}; upgrade zgq to open it`,
    );
  }
}

/** Refuses features in header `requires` this build does not know. */
function checkFeatures(raw: Record<string, unknown>, name: string): void {
  const requires = raw.requires === undefined ? [] : raw.requires;
  if (!Array.isArray(requires) || !requires.every((f) => typeof f === 'string')) {
    throw corrupt(name, `header field requires must be an array of feature names; found ${JSON.stringify(raw.requires)}`);
  }
  const lacking = requires.filter((f) => !KNOWN_FEATURES.has(f));
  if (lacking.length) {
    throw new ZGQError(
      'UNSUPPORTED_VERSION',
      `${name}: needs ${lacking.length === 1 ? 'a feature' : 'features'} this build of zgq lacks: ${lacking.map((f) => JSON.stringify(f)).join(', ')} ` +
        `(it knows ${[...KNOWN_FEATURES].map((f) => JSON.stringify(f)).join(', ')}); upgrade zgq to open it`,
    );
  }
}

/** Bytes of one re-ranking row of an index with this header. */
export function rowBytesOf(meta: IndexMeta): number {
  return meta.dim * (meta.storage === 'float16' ? 2 : 4);
}

/** Tags of the re-ranking rows' sections (float32 or binary16): what an opened index leaves in its file. */
export const ROW_TAGS: ReadonlySet<string> = new Set(['VECS', 'VF16']);

/**
 * Validate a decoded container and return its header and arrays (views into its bytes). `left`:
 * sections not read (src/io.ts openContainerFile); the rows may be among them, checked for length
 * only, and `rowsAt` is then their byte in the file (arrays.vectors empty).
 */
export function fromContainer(
  decoded: DecodedContainer, name: string, left?: ReadonlyMap<string, { offset: number; length: number }>,
): { meta: IndexMeta; arrays: IndexArrays; rowsAt?: number } {
  const raw = decoded.meta;
  if (raw.kind !== 'zgq-index') throw corrupt(name, `not a ZGQ index (header kind ${JSON.stringify(raw.kind)})`);
  checkCompatible(raw, decoded.sections, name);
  const n = intField(raw, 'n', 1, 0x7ffffffe, name);
  const dim = intField(raw, 'dim', 1, 1 << 16, name);
  const m = intField(raw, 'm', 1, dim, name);
  const degree = intField(raw, 'degree', 1, 1024, name);
  const nZones = intField(raw, 'nZones', 1, n, name);
  const nGroups = intField(raw, 'nGroups', 0, nZones, name);
  if (typeof raw.residual !== 'boolean') throw corrupt(name, 'header field residual must be a boolean');
  let options: ResolvedOptions;
  try {
    const o = raw.options as ResolvedOptions;
    options = resolveOptions({ ...o, search: o.search });
  } catch (cause) {
    throw new ZGQError('CORRUPT_FILE', `${name}: header options are invalid (${(cause as Error).message})`, { cause });
  }
  if (options.dim !== dim) throw corrupt(name, `header options.dim ${options.dim} differs from dim ${dim}`);
  const storage = raw.storage ?? 'float32';
  if (storage !== 'float32' && storage !== 'float16') throw corrupt(name, `header field storage must be 'float32' or 'float16'; found ${JSON.stringify(storage)}`);
  options.storage = storage;
  const zoned = raw.zoned === undefined ? n : intField(raw, 'zoned', nZones, n, name);
  const meta: IndexMeta = { kind: 'zgq-index', options, n, dim, m, degree, nZones, nGroups, residual: raw.residual, storage, zoned };

  const s = decoded.sections;
  const rowTag = storage === 'float16' ? 'VF16' : 'VECS';
  const rowsLeft = left?.get(rowTag);
  if (rowsLeft && rowsLeft.length !== n * dim * (storage === 'float16' ? 2 : 4)) {
    throw corrupt(name, `section ${rowTag} has ${rowsLeft.length} bytes; ${n} rows of dim ${dim} take ${n * dim * (storage === 'float16' ? 2 : 4)}`);
  }
  const arrays: IndexArrays = {
    vectors: rowsLeft
      ? storage === 'float16' ? new Uint16Array(0) : new Float32Array(0)
      : storage === 'float16' ? sectionU16(s, 'VF16', n * dim, name) : sectionF32(s, 'VECS', n * dim, name),
    codes: sectionU8(s, 'CODE', n * m, name),
    adjacency: sectionU32(s, 'ADJC', n * (degree + 1), name),
    codebooks: sectionF32(s, 'PQCB', PQ_CENTROIDS * dim, name),
    centroids: sectionF32(s, 'CENT', nZones * dim, name),
    zoneStart: sectionU32(s, 'ZSTA', nZones + 1, name),
    zoneEntry: sectionU32(s, 'ZENT', nZones, name),
    groupCentroids: nGroups ? sectionF32(s, 'GCEN', nGroups * dim, name) : new Float32Array(0),
    groupStart: nGroups ? sectionU32(s, 'GSTA', nGroups + 1, name) : new Uint32Array(0),
    vecTerm: meta.residual ? sectionF32(s, 'VTRM', n, name) : new Float32Array(0),
    ids: sectionU32(s, 'IDS_', n, name),
    deleted: s.has('DELS') ? sectionU8(s, 'DELS', (n + 7) >> 3, name) : null,
    tailZones: zoned < n ? sectionU32(s, 'TZON', n - zoned, name) : new Uint32Array(0),
  };
  // a known section the header gives no use for (VECS beside VF16, GCEN with no groups) is a
  // writer bug or damage, not something to skip
  const used = new Set(['CODE', 'ADJC', 'PQCB', 'CENT', 'ZSTA', 'ZENT', 'IDS_', 'DELS', storage === 'float16' ? 'VF16' : 'VECS']);
  if (nGroups) used.add('GCEN').add('GSTA');
  if (meta.residual) used.add('VTRM');
  if (zoned < n) used.add('TZON');
  for (const tag of s.keys()) {
    if (SECTION_TAGS.has(tag) && !used.has(tag)) {
      throw corrupt(name, `section ${tag} is present, but the header (storage ${storage}, nGroups ${nGroups}, residual ${meta.residual}, zoned ${zoned} of ${n}) has no use for it`);
    }
  }
  checkArrays(meta, arrays, name);
  checkValueRange(meta, arrays, name);
  return rowsLeft ? { meta, arrays, rowsAt: rowsLeft.offset } : { meta, arrays };
}

function checkFinite(a: Float32Array, section: string, name: string): void {
  const i = firstNonFinite(a);
  if (i >= 0) throw corrupt(name, `section ${section} holds a non-finite value at element ${i}`);
}

/** CORRUPT_FILE unless every value of a (finite already) lies within ±limit. */
/** Room above a mean's bound for the k-means split perturbation (1 + 2^-10, and some). */
const CENTROID_SLACK = 1.01;

function checkWithin(a: Float32Array, limit: number, section: string, why: string, dim: number, name: string): void {
  // k-means pushes a split centroid apart by a factor 1 ± 2^-10 (repairEmpty in src/kmeans.ts)
  const bound = limit * CENTROID_SLACK;
  for (let i = 0; i < a.length; i++) {
    if (a[i] > bound || a[i] < -bound) {
      throw corrupt(name, `section ${section}: value ${a[i].toPrecision(7)} at element ${i} lies beyond ±${limit.toPrecision(4)} (${why}, which lie within ±${valueLimit(dim).toPrecision(4)} at dim ${dim})`);
    }
  }
}

function checkRanges(start: Uint32Array, count: number, total: number, section: string, name: string): void {
  if (start[0] !== 0 || start[count] !== total) throw corrupt(name, `section ${section} must run from 0 to ${total}`);
  for (let i = 0; i < count; i++) {
    if (start[i + 1] <= start[i]) throw corrupt(name, `section ${section} has an empty or reversed range at ${i}`);
  }
}

function checkArrays(meta: IndexMeta, a: IndexArrays, name: string): void {
  const { n, degree, nZones, nGroups } = meta;
  if (a.vectors instanceof Float32Array) checkFinite(a.vectors, 'VECS', name);
  else {
    // binary16 exponent 31 is infinity or NaN
    for (let i = 0; i < a.vectors.length; i++) {
      if ((a.vectors[i] & 0x7c00) === 0x7c00) throw corrupt(name, `section VF16 holds a non-finite value at element ${i}`);
    }
  }
  checkFinite(a.codebooks, 'PQCB', name);
  checkFinite(a.centroids, 'CENT', name);
  checkFinite(a.groupCentroids, 'GCEN', name);
  checkFinite(a.vecTerm, 'VTRM', name);
  // Finite is not enough: the terms and distances computed from these on the next add overflowed
  // to Infinity, and the index then wrote a file it could not read (found by test/fuzz-file.test.ts).
  // Centroids are means of rows, so they lie within the rows' limit; codebooks are means of rows or
  // of residuals (row - centroid), so within twice it.
  const limit = valueLimit(meta.dim);
  checkWithin(a.centroids, limit, 'CENT', 'zone centroids are means of rows', meta.dim, name);
  checkWithin(a.groupCentroids, limit, 'GCEN', 'group centroids are means of zone centroids', meta.dim, name);
  checkWithin(a.codebooks, meta.residual ? 2 * limit : limit, 'PQCB', `codebooks are means of ${meta.residual ? 'residuals' : 'rows'}`, meta.dim, name);
  checkRanges(a.zoneStart, nZones, meta.zoned, 'ZSTA', name);
  for (let i = 0; i < a.tailZones.length; i++) {
    if (a.tailZones[i] >= nZones) throw corrupt(name, `section TZON: appended node ${meta.zoned + i} names zone ${a.tailZones[i]} of ${nZones}`);
  }
  if (nGroups) checkRanges(a.groupStart, nGroups, nZones, 'GSTA', name);
  for (let z = 0; z < nZones; z++) {
    const e = a.zoneEntry[z];
    if (e < a.zoneStart[z] || e >= a.zoneStart[z + 1]) throw corrupt(name, `section ZENT: entry ${e} of zone ${z} lies outside the zone`);
  }
  const stride = degree + 1;
  for (let i = 0; i < n; i++) {
    const count = a.adjacency[i * stride];
    if (count > degree) throw corrupt(name, `section ADJC: node ${i} has ${count} neighbours; the degree bound is ${degree}`);
    for (let j = 1; j <= count; j++) {
      const nb = a.adjacency[i * stride + j];
      if (nb >= n || nb === i) throw corrupt(name, `section ADJC: node ${i} links to ${nb}, not a valid neighbour (n = ${n})`);
    }
  }
  if (a.deleted) {
    // bits past the last node must be clear
    const tail = n & 7;
    if (tail && a.deleted[a.deleted.length - 1] >> tail) throw corrupt(name, 'section DELS marks nodes beyond n');
  }
  for (let i = 0; i < n; i++) {
    if (a.ids[i] === 0xffffffff) throw corrupt(name, `section IDS_: id ${a.ids[i]} at ${i} is reserved`);
  }
  // a removed node may share its id with the live node that replaced it
  const repeat = IdLookup.firstRepeat(a.ids, n, a.deleted);
  if (repeat >= 0) throw corrupt(name, `section IDS_: id ${a.ids[repeat]} at ${repeat} is repeated`);
}

/** Largest finite binary16 magnitude. */
const HALF_MAX = 65504;

/** The documented error of binary16 storage, squared: a stored row lies within 2^-11 of its length. */
const HALF_ERROR_SQUARED = 2 ** -22;

/** HALF_STEP[b + 14] = 2^(b - 10), the spacing of binary16 values in binade b (-14: the subnormals too). */
const HALF_STEP = Float64Array.from({ length: 30 }, (_, i) => 2 ** (i - 24));

/** Adding and subtracting 2^52 rounds a float64 in [0, 2^51) to an integer, ties to even (as encodeHalf does). */
const ROUND_EVEN = 2 ** 52;

/**
 * Whether binary16 holds every row of x (Float32Array[n * dim]) to the documented error: the
 * stored row x' satisfies |x' - x| <= 2^-11 |x|. Values of magnitude 2^-14 (the smallest normal
 * half) up to 65504 keep 11 significant bits, so rows of such values always fit; smaller values keep
 * only an absolute 2^-25, which at 1e-7 cost recall and at 1e-8 zeroed whole rows (issue 15), so the
 * error of each row is summed exactly, in float64, with the rounding of encodeHalf.
 */
export function fitsHalf(x: Float32Array, dim: number): boolean {
  assert(Number.isInteger(dim) && dim > 0 && x.length % dim === 0, `fitsHalf: ${x.length} values are not rows of dim ${dim}`);
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let row = 0; row < x.length; row += dim) {
    let error = 0;
    let norm = 0;
    for (let i = row; i < row + dim; i++) {
      const a = Math.abs(x[i]);
      if (!(a <= HALF_MAX)) return false;
      // float32 exponent; its subnormals (biased 0) fall in the half subnormals' step with the rest below 2^-14
      const step = HALF_STEP[Math.max(((bits[i] >>> 23) & 0xff) - 127, -14) + 14];
      const e = ((a / step + ROUND_EVEN) - ROUND_EVEN) * step - a;
      error += e * e;
      norm += a * a;
    }
    if (error > HALF_ERROR_SQUARED * norm) return false;
  }
  return true;
}

/**
 * Largest magnitude a vector or query value may have at this dim: sqrt(FLT_MAX / (16 dim)). Then
 * the largest squared distance, 4 max² dim, stays below FLT_MAX / 4, and so do the kernels' partial
 * sums (norms and dot products, residual PQ's |q - c|² + node term - 2 <q, r> with |r_i| <= 2 max):
 * all finite in float32 (issue 15: data near 1e19 built, then every search returned NO_ID).
 */
export function valueLimit(dim: number): number {
  return Math.fround(Math.sqrt(FLOAT32_MAX / (16 * dim)));
}

const FLOAT32_MAX = 3.4028234663852886e38;

/** Index of the first value of x that is not finite or lies beyond ±valueLimit(dim), or -1. */
export function firstOutOfRange(x: Float32Array, dim: number): number {
  const limit = valueLimit(dim);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!(v <= limit && v >= -limit)) return i;
  }
  return -1;
}

/** CORRUPT_FILE if float32 rows hold a value beyond valueLimit (such rows overflow the distances: ip gave NaN). */
function checkValueRange(meta: IndexMeta, a: IndexArrays, name: string): void {
  // binary16 rows stay within ±65504, inside the limit up to dim 2^16
  if (!(a.vectors instanceof Float32Array)) return;
  const i = firstOutOfRange(a.vectors, meta.dim);
  if (i >= 0) {
    throw corrupt(name, `section VECS: value ${a.vectors[i].toPrecision(7)} at element ${i} lies beyond ±${valueLimit(meta.dim).toPrecision(4)}, the limit at dim ${meta.dim}`);
  }
}

/** Half-precision copy of `count` floats at ptr (encoded by the kernel, copied out of the arena). */
export function toHalf(kernels: Kernels, ptr: number, count: number): Uint16Array {
  const { arena, k } = kernels;
  const mark = arena.mark();
  try {
    const out = arena.alloc(count * 2);
    k.encodeHalf(ptr, out, count);
    return arena.u16(out, count).slice();
  } finally {
    arena.release(mark);
  }
}
