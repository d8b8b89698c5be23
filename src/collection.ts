/**
 * ZGQCollection: documents (an id, a vector, metadata, text) over one ZGQIndex, queried with
 * filters on their metadata. The index holds each vector under a label (src/docs.ts), the
 * collection maps ids to labels and compiles each `where` (src/where.ts) into a filter over them,
 * which the index's filtered search runs through. One file holds both: the index's sections and
 * the documents' section.
 */
import { ZGQError } from './errors.js';
import { checkId, checkMetadata, checkText, type DocId, DOCS_TAG, DocStore } from './docs.js';
import type { AddOptions, IndexStats, LoadOptions } from './index.js';
import { ZGQIndex } from './index.js';
import { NO_ID } from './ids.js';
import { platform } from './platform.js';
import type { PreparedFilter } from './filter.js';
import type { SearchOptions, ZGQOptions } from './options.js';
import type { SaveOptions, UpdateOptions } from './platform.js';
import { describe, describeValue } from './validate.js';
import { type Metadata, planWhere, type Where, WhereIndex } from './where.js';

/** A document to upsert. */
export interface CollectionRecord {
  /** A string, or a safe integer (1 and '1' are different ids). */
  id: DocId;
  /** dim numbers. Needed for a new id; for an id already held, omitted keeps its vector. */
  vector?: Float32Array | ArrayLike<number>;
  /** JSON object, at most 64 KiB as JSON. For an id already held: omitted keeps it, null clears it. */
  metadata?: Metadata | null;
  /** The document's text (up to 2^20 characters). For an id already held: omitted keeps it, null clears it. */
  text?: string | null;
}

/** A document as held. */
export interface CollectionDocument {
  id: DocId;
  /** The vector as stored (unit length under 'cosine'; binary16-rounded under float16 storage). */
  vector: Float32Array;
  metadata?: Metadata;
  text?: string;
}

/** Options of query: search options of the index (but its `filter`), and what each hit carries. */
export interface QueryOptions extends Omit<SearchOptions, 'filter'> {
  /** How many documents to return, nearest first. Default 10. */
  k?: number;
  /** Only documents whose metadata this filter admits (see the README, "Collections"). */
  where?: Where;
  /** Each hit's metadata (frozen: the collection's own). Default true. */
  includeMetadata?: boolean;
  /** Each hit's text. Default true. */
  includeText?: boolean;
  /** Each hit's stored vector (a new Float32Array). Default false. */
  includeVectors?: boolean;
}

/** One document a query found. */
export interface CollectionHit {
  id: DocId;
  /** As the index reports it: squared L2 for 'l2'; 1 - dot for 'ip'; 1 - cosine similarity for 'cosine'. */
  distance: number;
  metadata?: Metadata;
  text?: string;
  vector?: Float32Array;
}

/** Options of ZGQCollection.update: as ZGQIndex.update's, `create` making a new, empty collection. */
export type CollectionUpdateOptions = UpdateOptions;

/** What ZGQCollection.stats reports. */
export interface CollectionStats {
  /** Documents held. */
  documents: number;
  /** The index under the collection; null until it is trained (see ZGQIndex.add: vectors are staged until there are enough). */
  index: IndexStats | null;
}

/** Filters compiled for recent `where`s, kept while nothing changes. */
const CACHED_FILTERS = 32;

/**
 * Documents over a ZGQIndex: upsert, delete, get, and nearest-neighbour queries filtered on
 * metadata. Writes (upsert, delete) apply in the order they are called; queries see every write
 * that has finished. Saved to one file with the index (save, load, update), or to bytes.
 */
export class ZGQCollection {
  private readonly index: ZGQIndex;
  private readonly docs: DocStore;
  private readonly where: WhereIndex;
  private writes: Promise<void> = Promise.resolve();
  /** Changes with every write: compiled filters of an older version are compiled again. */
  private version = 0;
  private readonly filters = new Map<string, Selection>();

  /** A new, empty collection; `options` as for a ZGQIndex (dim and metric at least). */
  constructor(options: ZGQOptions);
  /** @internal the collection of a loaded index and its documents */
  constructor(options: ZGQOptions, index: ZGQIndex, docs: DocStore);
  constructor(options: ZGQOptions, index?: ZGQIndex, docs?: DocStore) {
    this.index = index ?? new ZGQIndex(options);
    this.docs = docs ?? new DocStore();
    this.where = new WhereIndex(this.docs);
    this.index.carry = () => [{ tag: DOCS_TAG, bytes: this.docs.encode() }];
  }

  /** Documents held. */
  get size(): number {
    return this.docs.count;
  }

  /** The vector dimension. */
  get dim(): number {
    return this.index.options.dim;
  }

  /**
   * Add documents, or replace those whose id is held. A record with a vector (re)places the
   * document's vector; one without keeps it and changes metadata or text only. Omitted metadata or
   * text keep what is held; null clears it. The whole call applies or, on any error, nothing.
   *
   * @throws ZGQError INVALID_ARGUMENT for a bad record (naming it), DIMENSION_MISMATCH, NOT_FINITE;
   *   DUPLICATE_ID when an id appears twice in the call; READ_ONLY for a collection served from its file.
   */
  async upsert(records: CollectionRecord | readonly CollectionRecord[], options: AddOptions = {}): Promise<void> {
    const list = Array.isArray(records) ? (records as readonly CollectionRecord[]) : [records as CollectionRecord];
    this.index.checkWritable('upsert');
    const checked = list.map((r, i) => this.checkRecord(r, i));
    const seen = new Set<DocId>();
    for (const [i, r] of checked.entries()) {
      if (seen.has(r.id)) throw new ZGQError('DUPLICATE_ID', `upsert: records[${i}] repeats id ${JSON.stringify(r.id)} of an earlier record in the same call`);
      seen.add(r.id);
    }
    return this.queue(() => this.apply(checked, options));
  }

  /**
   * Delete documents by id; ids not held are ignored. Resolves to how many were deleted.
   * @throws ZGQError INVALID_ARGUMENT for an id that is not a string or safe integer.
   */
  async delete(ids: DocId | readonly DocId[]): Promise<number> {
    const list = (Array.isArray(ids) ? ids : [ids]).map((id, i) => checkId(id, `delete: ids[${i}]`));
    return this.queue(() => {
      const labels: number[] = [];
      for (const id of list) {
        const label = this.docs.labelOf(id);
        if (label !== undefined && !labels.includes(label)) labels.push(label);
      }
      if (labels.length === 0) return 0;
      this.index.remove(labels);
      for (const label of labels) this.docs.drop(label);
      this.version++;
      return labels.length;
    });
  }

  /**
   * Reclaim the memory of deleted and replaced documents' vectors now (ZGQIndex.compact; the next
   * large upsert does it too), after the writes called before.
   */
  async compact(): Promise<void> {
    return this.queue(async () => {
      await this.index.compact();
      this.version++; // the index's prepared filters belong to its previous layout
    });
  }

  /** The document with this id (its stored vector a new Float32Array), or undefined. */
  get(id: DocId): CollectionDocument | undefined {
    const label = this.docs.labelOf(id);
    if (label === undefined) return undefined;
    const vector = this.index.get(label);
    if (!vector) return undefined;
    return this.documentAt(label, { id, vector });
  }

  /** Whether a document with this id is held. */
  has(id: DocId): boolean {
    return this.docs.labelOf(id) !== undefined;
  }

  /** The ids of the documents the filter admits (all of them without one), in the order they were added. */
  ids(where?: Where): DocId[] {
    const out: DocId[] = [];
    if (where === undefined) {
      for (const label of this.docs.allLabels()) out.push(this.docs.idOf(label)!);
      return out;
    }
    const { admits } = this.selection(where);
    for (const label of this.docs.allLabels()) if (admits(label)) out.push(this.docs.idOf(label)!);
    return out;
  }

  /** How many documents the filter admits (all of them without one). */
  count(where?: Where): number {
    return where === undefined ? this.docs.count : this.selection(where).count;
  }

  /**
   * The k documents nearest `vector` (dim numbers) among those `where` admits, nearest first. Fewer
   * when fewer are admitted. Search options (ef, nProbe, ...) as for ZGQIndex.search.
   *
   * @throws ZGQError INVALID_ARGUMENT for a bad filter (naming the part) or options;
   *   DIMENSION_MISMATCH, NOT_FINITE for a bad vector.
   */
  query(vector: Float32Array | ArrayLike<number>, options: QueryOptions = {}): CollectionHit[] {
    if (options === null || typeof options !== 'object') throw new ZGQError('INVALID_ARGUMENT', `query options must be an object such as { k: 10, where: { genre: 'jazz' } }; got ${describe(options)}`);
    const { k = 10, where, includeMetadata = true, includeText = true, includeVectors = false, ...search } = options;
    if ('filter' in search) throw new ZGQError('INVALID_ARGUMENT', "query filters on metadata with 'where'; 'filter' (ids of the index) does not apply to a collection");
    if (!Number.isInteger(k) || k < 1) throw new ZGQError('INVALID_ARGUMENT', `k must be a positive integer; got ${describeValue(k)}`);
    let filter: PreparedFilter | undefined;
    if (where !== undefined) {
      const selected = this.selection(where);
      if (selected.count === 0) {
        this.index.search(vector, 1, search as SearchOptions); // the vector and options are still checked
        return [];
      }
      filter = selected.filter;
    }
    const { ids, distances } = this.index.search(vector, k, filter ? { ...search, filter } : search);
    const hits: CollectionHit[] = [];
    for (let i = 0; i < ids.length; i++) {
      const label = ids[i];
      if (label === NO_ID) break;
      const id = this.docs.idOf(label);
      if (id === undefined) continue; // added by an upsert that has not committed yet
      const hit: CollectionHit = { id, distance: distances[i] };
      if (includeMetadata) {
        const metadata = this.docs.metadataOf(label);
        if (metadata !== undefined) hit.metadata = metadata;
      }
      if (includeText) {
        const text = this.docs.textOf(label);
        if (text !== undefined) hit.text = text;
      }
      if (includeVectors) hit.vector = this.index.get(label);
      hits.push(hit);
    }
    return hits;
  }

  /** Release the file a collection loaded with rows 'file' reads from (ZGQIndex.close); nothing otherwise. */
  close(): void {
    this.index.close();
  }

  /** Counts of documents and the index's own stats. */
  stats(): CollectionStats {
    let index: IndexStats | null = null;
    try {
      index = this.index.stats();
    } catch (e) {
      if (!(e instanceof ZGQError && e.code === 'NOT_BUILT')) throw e;
    }
    return { documents: this.docs.count, index };
  }

  /**
   * Write the collection (index and documents) to `path` as ZGQIndex.save does: atomically, under
   * the path's writers' lock, refusing to overwrite another writer's changes. Writes called before
   * are in it.
   */
  async save(path: string, options: SaveOptions = {}): Promise<void> {
    await this.writes;
    await this.index.save(path, options);
  }

  /** The collection in the file format of save, as one new Uint8Array; writes called before are in it. */
  async toBytes(): Promise<Uint8Array> {
    await this.writes;
    return this.index.toBytesSettled();
  }

  /**
   * Read a collection written by save (LoadOptions as for ZGQIndex.load; with rows outside memory
   * it serves queries only).
   * @throws ZGQError as ZGQIndex.load; INVALID_ARGUMENT for a file holding an index without documents;
   *   CORRUPT_FILE when the documents and the index disagree.
   */
  static async load(path: string, options: LoadOptions = {}): Promise<ZGQCollection> {
    return ZGQCollection.over(await ZGQIndex.load(path, options), path);
  }

  /** A collection from the bytes of toBytes or of a saved file. */
  static fromBytes(bytes: Uint8Array): ZGQCollection {
    return ZGQCollection.over(ZGQIndex.fromBytes(bytes), 'bytes');
  }

  /**
   * Load the collection at `path`, let `fn` change it and save it back, all under the path's
   * writers' lock, as ZGQIndex.update does (options.create: the options of a new, empty collection
   * when there is no file yet).
   */
  static async update(path: string, fn: (collection: ZGQCollection) => void | Promise<void>, options: CollectionUpdateOptions = {}): Promise<ZGQCollection> {
    if (typeof fn !== 'function') throw new ZGQError('INVALID_ARGUMENT', `update: fn must be a function that changes the collection; got ${describe(fn)}`);
    const create = options.create;
    const fresh = create === undefined ? undefined : new ZGQCollection(create);
    return ZGQIndex.updateAs(path, options.wait, fresh?.index, (index) => (fresh && index === fresh.index ? fresh : ZGQCollection.over(index, path)), async (collection) => {
      await fn(collection);
      await collection.writes;
    });
  }

  /** @internal Make a directory to save collections in (Node; browsers make them as files are written): for zgq/langchain. */
  static makeDirectory(path: string): Promise<void> {
    return platform.makeDirectory(path);
  }

  private static over(index: ZGQIndex, name: string): ZGQCollection {
    const section = index.carriedIn.get(DOCS_TAG);
    if (!section) {
      throw new ZGQError('INVALID_ARGUMENT', `${name} holds an index without documents (no '${DOCS_TAG}' section): read it with ZGQIndex.load`);
    }
    const docs = DocStore.decode(section, name);
    index.carriedIn = new Map();
    if (docs.count !== index.size) {
      throw new ZGQError('CORRUPT_FILE', `${name}: holds ${docs.count} documents and ${index.size} vectors; they must match`);
    }
    for (const label of docs.allLabels()) {
      if (!index.has(label)) throw new ZGQError('CORRUPT_FILE', `${name}: document ${JSON.stringify(docs.idOf(label))} has no vector (label ${label})`);
    }
    return new ZGQCollection(index.options, index, docs);
  }

  /** Run a write after those called before it. */
  private queue<T>(write: () => T | Promise<T>): Promise<T> {
    const run = this.writes.then(write);
    this.writes = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private checkRecord(record: CollectionRecord, i: number): CheckedRecord {
    const where = `upsert: records[${i}]`;
    if (record === null || typeof record !== 'object') throw new ZGQError('INVALID_ARGUMENT', `${where} must be an object { id, vector?, metadata?, text? }; got ${describe(record)}`);
    const id = checkId(record.id, where);
    let vector: Float32Array | undefined;
    if (record.vector !== undefined) {
      const v = record.vector;
      if (v === null || typeof v !== 'object' || typeof (v as ArrayLike<number>).length !== 'number') {
        throw new ZGQError('INVALID_ARGUMENT', `${where}.vector must be a Float32Array or an array of ${this.dim} numbers; got ${describe(v)}`);
      }
      if (v.length !== this.dim) throw new ZGQError('DIMENSION_MISMATCH', `${where}.vector has ${v.length} values; the collection's dim is ${this.dim}`);
      vector = Float32Array.from(v);
      let norm = 0;
      for (let j = 0; j < vector.length; j++) {
        if (!Number.isFinite(vector[j])) throw new ZGQError('NOT_FINITE', `${where}.vector[${j}] is ${vector[j]}`);
        norm += vector[j] * vector[j];
      }
      if (norm === 0 && this.index.options.metric === 'cosine') throw new ZGQError('INVALID_ARGUMENT', `${where}.vector has zero length; cosine distance is undefined for it`);
    }
    const metadata = record.metadata === undefined || record.metadata === null ? record.metadata : checkMetadata(record.metadata, where);
    const text = record.text === undefined || record.text === null ? record.text : checkText(record.text, where);
    return { id, vector, metadata, text, at: i };
  }

  private async apply(records: CheckedRecord[], options: AddOptions): Promise<void> {
    for (const r of records) {
      if (!r.vector && this.docs.labelOf(r.id) === undefined) {
        throw new ZGQError('INVALID_ARGUMENT', `upsert: records[${r.at}] (id ${JSON.stringify(r.id)}) has no vector, and the collection holds no document with that id`);
      }
    }
    const placed = records.filter((r) => r.vector);
    if (placed.length) {
      const first = this.docs.reserve(placed.length);
      const vectors = new Float32Array(placed.length * this.dim);
      placed.forEach((r, i) => vectors.set(r.vector!, i * this.dim));
      const labels = Uint32Array.from(placed, (_, i) => first + i);
      await this.index.add(vectors, labels, options);
      const replaced: number[] = [];
      placed.forEach((r, i) => {
        const old = this.docs.labelOf(r.id);
        const metadata = r.metadata === undefined && old !== undefined ? this.docs.metadataOf(old) : (r.metadata ?? undefined);
        const text = r.text === undefined && old !== undefined ? this.docs.textOf(old) : (r.text ?? undefined);
        if (old !== undefined) {
          replaced.push(old);
          this.docs.drop(old);
        }
        this.docs.put(labels[i], r.id, metadata, text);
        this.where.added(labels[i], metadata);
      });
      if (replaced.length) this.index.remove(replaced);
    }
    let changed = false;
    for (const r of records) {
      if (r.vector) continue;
      const label = this.docs.labelOf(r.id)!;
      const metadata = r.metadata === undefined ? this.docs.metadataOf(label) : (r.metadata ?? undefined);
      const text = r.text === undefined ? this.docs.textOf(label) : (r.text ?? undefined);
      if (metadata !== this.docs.metadataOf(label)) changed = true;
      this.docs.put(label, r.id, metadata, text);
    }
    if (changed) this.where.changed();
    this.version++;
  }

  /** The documents `where` admits now: how many, and the index filter that admits them (none when all are). */
  private selection(where: Where): Selection {
    const plan = planWhere(where);
    const key = JSON.stringify(plan);
    const cached = this.filters.get(key);
    if (cached && cached.version === this.version) return cached;
    const { bits, count } = this.where.select(plan);
    const admits = (label: number) => label >>> 5 < bits.length && ((bits[label >>> 5] >>> (label & 31)) & 1) === 1;
    const filter = count === this.docs.count ? undefined : this.index.prepareFilter(admits);
    const entry: Selection = { version: this.version, count, admits, filter };
    this.filters.delete(key);
    this.filters.set(key, entry);
    if (this.filters.size > CACHED_FILTERS) this.filters.delete(this.filters.keys().next().value!);
    return entry;
  }

  private documentAt(label: number, doc: CollectionDocument): CollectionDocument {
    const metadata = this.docs.metadataOf(label);
    const text = this.docs.textOf(label);
    if (metadata !== undefined) doc.metadata = metadata;
    if (text !== undefined) doc.text = text;
    return doc;
  }
}

/** A compiled where: the labels it admits (as of `version`), how many, and the index filter admitting them (none when all are). */
interface Selection {
  version: number;
  count: number;
  admits: (label: number) => boolean;
  filter: PreparedFilter | undefined;
}

interface CheckedRecord {
  id: DocId;
  vector: Float32Array | undefined;
  metadata: Metadata | null | undefined;
  text: string | null | undefined;
  /** Position in the caller's list, for messages. */
  at: number;
}
