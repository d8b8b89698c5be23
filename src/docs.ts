/**
 * A collection's documents: each one's id (a string or a safe integer), metadata and text, stored
 * by label, the uint32 id its vector has in the index. A document whose vector changes gets a new
 * label (the old one is removed from the index), so the filter indexes built over labels stay
 * valid; labels are never reused.
 *
 * Saved as the optional section 'docs' of the index's file (an index reader that does not know it
 * skips it, so the file also loads as a plain index whose ids are the labels):
 *
 * ```text
 *  u32 length, then that many bytes of UTF-8 JSON: the header {"version":1,"labels":L,"count":N}
 *  then blocks until the section ends, each a u32 length and UTF-8 JSON: an array of records
 *  [label, id, metadata or null, text or null]; N records in all, labels below L, each once
 * ```
 */
import { ZGQError } from './errors.js';
import { describe, describeValue } from './validate.js';
import type { Metadata, MetadataValue, WhereSource } from './where.js';

/** A document's id: a string, or an integer within Number.MAX_SAFE_INTEGER (1 and '1' are different ids). */
export type DocId = string | number;

/** Most UTF-8 bytes of one document's metadata as JSON. */
export const MAX_METADATA_BYTES = 64 * 1024;
/** Most UTF-16 code units of one document's text. */
export const MAX_TEXT_LENGTH = 1 << 20;
/** Most characters of a string id. */
export const MAX_ID_LENGTH = 1024;
/** Labels run below NO_ID (0xFFFFFFFF, the index's empty slot). */
const LABEL_LIMIT = 0xffffffff;
const MAX_METADATA_DEPTH = 32;
const SECTION_VERSION = 1;
/** Records per JSON block of the section, at most: a block also ends past BLOCK_CHARS. */
const BLOCK_RECORDS = 4096;
/** Characters of metadata and text after which a block ends: one JSON string stays far below V8's limit (2^29). */
const BLOCK_CHARS = 1 << 25;

/** The section tag (lowercase: optional to a plain index reader). */
export const DOCS_TAG = 'docs';

/** A checked document id. */
export function checkId(id: unknown, where: string): DocId {
  if (typeof id === 'string') {
    if (id.length === 0 || id.length > MAX_ID_LENGTH) throw new ZGQError('INVALID_ARGUMENT', `${where}: a string id must have 1 to ${MAX_ID_LENGTH} characters; got ${id.length}`);
    return id;
  }
  if (typeof id === 'number' && Number.isSafeInteger(id)) return id;
  throw new ZGQError('INVALID_ARGUMENT', `${where}: an id must be a string or a safe integer; got ${describeValue(id)}`);
}

/** A frozen copy of the metadata, checked to be JSON within MAX_METADATA_BYTES. */
export function checkMetadata(metadata: unknown, where: string): Metadata {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new ZGQError('INVALID_ARGUMENT', `${where}: metadata must be a plain object of JSON values; got ${describe(metadata)}`);
  }
  const copy = (value: unknown, path: string, depth: number): MetadataValue => {
    if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new ZGQError('INVALID_ARGUMENT', `${where}: metadata${path} is ${value}; JSON holds finite numbers only`);
      return value;
    }
    if (depth >= MAX_METADATA_DEPTH) throw new ZGQError('INVALID_ARGUMENT', `${where}: metadata nests deeper than ${MAX_METADATA_DEPTH} levels at metadata${path}`);
    // holes and undefined in arrays are null, as JSON writes them
    if (Array.isArray(value)) return Object.freeze(Array.from(value, (v, i) => (v === undefined ? null : copy(v, `${path}[${i}]`, depth + 1)))) as MetadataValue[];
    if (typeof value === 'object' && (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)) {
      const out: { [key: string]: MetadataValue } = {};
      for (const [key, v] of Object.entries(value)) {
        if (v === undefined) continue;
        // defined, not assigned: a key '__proto__' stays a key instead of becoming the prototype
        Object.defineProperty(out, key, { value: copy(v, `${path}.${key}`, depth + 1), enumerable: true, writable: true, configurable: true });
      }
      return Object.freeze(out);
    }
    throw new ZGQError('INVALID_ARGUMENT', `${where}: metadata${path} is ${describe(value)}; metadata holds JSON values only (strings, finite numbers, booleans, null, arrays, plain objects)`);
  };
  const out = copy(metadata, '', 0) as Metadata;
  const bytes = utf8Length(JSON.stringify(out));
  if (bytes > MAX_METADATA_BYTES) throw new ZGQError('INVALID_ARGUMENT', `${where}: metadata is ${bytes} bytes of JSON, over the limit of ${MAX_METADATA_BYTES}`);
  return out;
}

/** A checked text. */
export function checkText(text: unknown, where: string): string {
  if (typeof text !== 'string') throw new ZGQError('INVALID_ARGUMENT', `${where}: text must be a string; got ${describe(text)}`);
  if (text.length > MAX_TEXT_LENGTH) throw new ZGQError('INVALID_ARGUMENT', `${where}: text has ${text.length} characters, over the limit of ${MAX_TEXT_LENGTH}`);
  return text;
}

function utf8Length(s: string): number {
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) bytes += c >= 0x800 && (c < 0xd800 || c > 0xdfff) ? 2 : 1;
  }
  return bytes;
}

/** The documents of a collection by label. */
export class DocStore implements WhereSource {
  private ids: (DocId | undefined)[] = [];
  private metadata: (Metadata | undefined)[] = [];
  private texts: (string | undefined)[] = [];
  private readonly labels = new Map<DocId, number>();
  private live = new Uint32Array(0);
  private next = 0;

  /** One past the highest label handed out. */
  get labelLimit(): number {
    return this.next;
  }

  /** Documents held. */
  get count(): number {
    return this.labels.size;
  }

  /** The label of document `id`, or undefined. */
  labelOf(id: DocId): number | undefined {
    return this.labels.get(id);
  }

  idOf(label: number): DocId | undefined {
    return this.ids[label];
  }

  metadataOf(label: number): Metadata | undefined {
    return this.metadata[label];
  }

  textOf(label: number): string | undefined {
    return this.texts[label];
  }

  /** `count` new labels, in order (not yet holding documents). */
  reserve(count: number): number {
    if (this.next + count > LABEL_LIMIT) {
      throw new ZGQError('OUT_OF_MEMORY', `the collection has given out ${this.next} labels and cannot give ${count} more (at most ${LABEL_LIMIT}); copy its documents into a new collection`);
    }
    const first = this.next;
    this.next += count;
    return first;
  }

  /** Document `id` under `label` (a reserved one, or its own for a change in place). */
  put(label: number, id: DocId, metadata: Metadata | undefined, text: string | undefined): void {
    this.ids[label] = id;
    this.metadata[label] = metadata;
    this.texts[label] = text;
    this.labels.set(id, label);
    if ((label >>> 5) >= this.live.length) {
      const grown = new Uint32Array(Math.max((this.next + 31) >>> 5, this.live.length * 2));
      grown.set(this.live);
      this.live = grown;
    }
    this.live[label >>> 5] |= 1 << (label & 31);
  }

  /** Forget the document at `label`. */
  drop(label: number): void {
    const id = this.ids[label];
    if (id === undefined) return;
    this.labels.delete(id);
    this.ids[label] = undefined;
    this.metadata[label] = undefined;
    this.texts[label] = undefined;
    this.live[label >>> 5] &= ~(1 << (label & 31));
  }

  liveBits(): Uint32Array {
    const words = (this.next + 31) >>> 5;
    return this.live.length === words ? this.live : this.live.subarray(0, words);
  }

  forEachLive(fn: (label: number, metadata: Metadata | undefined) => void): void {
    for (const label of this.labels.values()) fn(label, this.metadata[label]);
  }

  /** Labels of every document, in insertion order. */
  allLabels(): Uint32Array {
    return Uint32Array.from(this.labels.values());
  }

  /** The section's bytes. */
  encode(): Uint8Array {
    const encoder = new TextEncoder();
    const chunks: Uint8Array[] = [encoder.encode(JSON.stringify({ version: SECTION_VERSION, labels: this.next, count: this.count }))];
    let block: unknown[] = [];
    let chars = 0;
    const flush = () => {
      chunks.push(encoder.encode(JSON.stringify(block)));
      block = [];
      chars = 0;
    };
    for (const label of this.labels.values()) {
      const text = this.texts[label];
      block.push([label, this.ids[label], this.metadata[label] ?? null, text ?? null]);
      // metadata is at most MAX_METADATA_BYTES of JSON; text up to MAX_TEXT_LENGTH, up to 6 characters each escaped
      chars += MAX_METADATA_BYTES + (text === undefined ? 0 : text.length * 6);
      if (block.length === BLOCK_RECORDS || chars >= BLOCK_CHARS) flush();
    }
    if (block.length) flush();
    let total = 0;
    for (const c of chunks) total += 4 + c.length;
    const out = new Uint8Array(total);
    const view = new DataView(out.buffer);
    let at = 0;
    for (const c of chunks) {
      view.setUint32(at, c.length, true);
      out.set(c, at + 4);
      at += 4 + c.length;
    }
    return out;
  }

  /**
   * The documents of a 'docs' section, checked record by record.
   * @throws ZGQError CORRUPT_FILE naming what is wrong; UNSUPPORTED_VERSION for a newer section.
   */
  static decode(bytes: Uint8Array, name: string): DocStore {
    const corrupt = (what: string) => new ZGQError('CORRUPT_FILE', `${name}: section '${DOCS_TAG}' ${what}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const decoder = new TextDecoder('utf-8', { fatal: true });
    let at = 0;
    const nextJson = (): unknown => {
      if (at + 4 > bytes.length) throw corrupt(`ends inside a block length at byte ${at}`);
      const length = view.getUint32(at, true);
      if (at + 4 + length > bytes.length) throw corrupt(`has a block of ${length} bytes at byte ${at}, past its end (${bytes.length} bytes)`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(decoder.decode(bytes.subarray(at + 4, at + 4 + length)));
      } catch (e) {
        throw new ZGQError('CORRUPT_FILE', `${name}: section '${DOCS_TAG}' has a block at byte ${at} that is not UTF-8 JSON`, { cause: e });
      }
      at += 4 + length;
      return parsed;
    };
    const header = nextJson() as { version?: unknown; labels?: unknown; count?: unknown };
    if (typeof header !== 'object' || header === null) throw corrupt('has no header object');
    if (typeof header.version !== 'number' || !Number.isInteger(header.version) || header.version < 1) throw corrupt(`has version ${String(header.version)}`);
    if (header.version > SECTION_VERSION) {
      throw new ZGQError('UNSUPPORTED_VERSION', `${name}: section '${DOCS_TAG}' is version ${header.version}; this zgq reads up to ${SECTION_VERSION}`);
    }
    const limit = header.labels;
    const count = header.count;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0 || limit > LABEL_LIMIT) throw corrupt(`names ${String(limit)} labels`);
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > limit) throw corrupt(`names ${String(count)} documents for ${limit} labels`);
    const store = new DocStore();
    store.next = limit;
    while (at < bytes.length) {
      const block = nextJson();
      if (!Array.isArray(block)) throw corrupt(`has a block at byte ${at} that is not an array of records`);
      for (const record of block) {
        if (!Array.isArray(record) || record.length !== 4) throw corrupt(`has a record that is not [label, id, metadata, text]: ${JSON.stringify(record).slice(0, 80)}`);
        const [label, id, metadata, text] = record as unknown[];
        if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label >= limit) throw corrupt(`has label ${String(label)} outside [0, ${limit})`);
        if (store.ids[label] !== undefined) throw corrupt(`has label ${label} twice`);
        let docId: DocId;
        let meta: Metadata | undefined;
        let body: string | undefined;
        try {
          docId = checkId(id, `label ${label}`);
          meta = metadata === null ? undefined : checkMetadata(metadata, `label ${label}`);
          body = text === null ? undefined : checkText(text, `label ${label}`);
        } catch (e) {
          throw new ZGQError('CORRUPT_FILE', `${name}: section '${DOCS_TAG}': ${(e as Error).message}`, { cause: e });
        }
        if (store.labels.has(docId)) throw corrupt(`has id ${JSON.stringify(docId)} twice`);
        store.put(label, docId, meta, body);
      }
    }
    if (store.count !== count) throw corrupt(`holds ${store.count} documents; its header says ${count}`);
    return store;
  }
}
