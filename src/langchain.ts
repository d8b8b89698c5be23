/**
 * LangChain.js vector store over a ZGQCollection (entry point 'zgq/langchain'; `@langchain/core` is
 * an optional peer dependency, needed only here). The browser build of this module
 * (dist/browser/langchain.js) imports the library as 'zgq', so an application holds one copy. Each Document is a collection document: its id
 * (the Document's, the caller's or a random UUID), its embedding, its metadata and its pageContent
 * as text. Filters are the collection's `where`; scores are the index's distances (lower is nearer).
 */
import { Document, type DocumentInterface } from '@langchain/core/documents';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
import { maximalMarginalRelevance } from '@langchain/core/utils/math';
import { type MaxMarginalRelevanceSearchOptions, SaveableVectorStore } from '@langchain/core/vectorstores';
import { type CollectionHit, ZGQCollection, ZGQError, type Metadata, type Where, type ZGQOptions } from './index.js';

/** The file a store's directory holds. */
export const STORE_FILE = 'zgq.collection';

/** Options of a ZGQVectorStore: the collection's, or one to wrap. */
export interface ZGQVectorStoreArgs {
  /** A collection to wrap (its dim fixed). Default: a new one, made at the first vectors with their length as dim. */
  collection?: ZGQCollection;
  /** Options of the new collection (dim taken from the first vectors when absent). Default metric 'cosine'. */
  options?: Partial<ZGQOptions>;
}

/** Options of addVectors / addDocuments. */
export interface ZGQAddOptions {
  /** One id per document (else each Document's id, else a random UUID). */
  ids?: string[];
}

/** A LangChain VectorStore and SaveableVectorStore on a ZGQCollection. */
export class ZGQVectorStore extends SaveableVectorStore {
  declare FilterType: Where;
  private store: ZGQCollection | undefined;
  private readonly options: Partial<ZGQOptions>;

  _vectorstoreType(): string {
    return 'zgq';
  }

  constructor(embeddings: EmbeddingsInterface, args: ZGQVectorStoreArgs = {}) {
    super(embeddings, args);
    this.store = args.collection;
    this.options = args.options ?? {};
  }

  /** The collection under the store (undefined until the first vectors when none was given). */
  get collection(): ZGQCollection | undefined {
    return this.store;
  }

  async addVectors(vectors: number[][], documents: DocumentInterface[], options: ZGQAddOptions = {}): Promise<string[]> {
    if (!Array.isArray(vectors) || !Array.isArray(documents) || vectors.length !== documents.length) {
      throw new ZGQError('INVALID_ARGUMENT', `addVectors needs one vector per document; got ${Array.isArray(vectors) ? vectors.length : typeof vectors} vectors and ${Array.isArray(documents) ? documents.length : typeof documents} documents`);
    }
    if (options.ids !== undefined && (!Array.isArray(options.ids) || options.ids.length !== documents.length)) {
      throw new ZGQError('INVALID_ARGUMENT', `options.ids must hold one id per document (${documents.length})`);
    }
    if (vectors.length === 0) return [];
    const ids = documents.map((doc, i) => options.ids?.[i] ?? doc.id ?? globalThis.crypto.randomUUID());
    const collection = this.collectionFor(vectors[0].length);
    await collection.upsert(documents.map((doc, i) => ({ id: ids[i], vector: vectors[i], metadata: (doc.metadata ?? {}) as Metadata, text: doc.pageContent })));
    return ids;
  }

  async addDocuments(documents: DocumentInterface[], options: ZGQAddOptions = {}): Promise<string[]> {
    const vectors = await this.embeddings.embedDocuments(documents.map((doc) => doc.pageContent));
    return this.addVectors(vectors, documents, options);
  }

  async similaritySearchVectorWithScore(query: number[], k: number, filter?: Where): Promise<[DocumentInterface, number][]> {
    if (!this.store) return [];
    return this.store.query(query, { k, where: filter }).map((hit) => [documentOf(hit), hit.distance]);
  }

  /**
   * Documents both near the query and unlike each other: the fetchK nearest (default 20) that the
   * filter admits, of which k are picked by maximal marginal relevance (lambda 1: nearness alone,
   * 0: diversity alone; default 0.5).
   */
  override async maxMarginalRelevanceSearch(query: string, options: MaxMarginalRelevanceSearchOptions<Where>): Promise<DocumentInterface[]> {
    if (!this.store) return [];
    const { k = 4, fetchK = 20, lambda = 0.5, filter } = options;
    const embedded = await this.embeddings.embedQuery(query);
    const hits = this.store.query(embedded, { k: Math.max(fetchK, k), where: filter, includeVectors: true });
    return maximalMarginalRelevance(embedded, hits.map((h) => Array.from(h.vector!)), lambda, k).map((i) => documentOf(hits[i]));
  }

  /** Delete documents by id. */
  override async delete(params: { ids: string[] }): Promise<void> {
    if (!params || !Array.isArray(params.ids)) throw new ZGQError('INVALID_ARGUMENT', 'delete needs { ids: string[] }');
    const store = this.store;
    if (!store) return;
    // Documents carry ids as strings: '42' names the integer id 42 of a collection that has it
    await store.delete(params.ids.map((id) => (typeof id === 'string' && !store.has(id) && /^-?\d+$/.test(id) && store.has(Number(id)) ? Number(id) : id)));
  }

  /** Write the store into `directory` (created when missing) as one collection file. */
  async save(directory: string): Promise<void> {
    if (!this.store) throw new ZGQError('NOT_BUILT', 'the store holds no documents yet: add some before saving it');
    await ZGQCollection.makeDirectory(directory);
    await this.store.save(storePath(directory));
  }

  /** A store saved by save() into `directory`. */
  static override async load(directory: string, embeddings: EmbeddingsInterface): Promise<ZGQVectorStore> {
    return new ZGQVectorStore(embeddings, { collection: await ZGQCollection.load(storePath(directory)) });
  }

  static override async fromTexts(texts: string[], metadatas: object[] | object, embeddings: EmbeddingsInterface, args: ZGQVectorStoreArgs = {}): Promise<ZGQVectorStore> {
    const documents = texts.map((pageContent, i) => new Document({ pageContent, metadata: Array.isArray(metadatas) ? metadatas[i] : metadatas }));
    return ZGQVectorStore.fromDocuments(documents, embeddings, args);
  }

  static override async fromDocuments(documents: DocumentInterface[], embeddings: EmbeddingsInterface, args: ZGQVectorStoreArgs = {}): Promise<ZGQVectorStore> {
    const store = new ZGQVectorStore(embeddings, args);
    await store.addDocuments(documents);
    return store;
  }

  private collectionFor(dim: number): ZGQCollection {
    if (this.store) return this.store;
    this.store = new ZGQCollection({ metric: 'cosine', ...this.options, dim: this.options.dim ?? dim });
    return this.store;
  }
}

/** The collection file in a store's directory (a path in Node; an OPFS / IndexedDB path in a browser). */
function storePath(directory: string): string {
  return `${directory.replace(/[\\/]+$/, '')}/${STORE_FILE}`;
}

/** A hit as a LangChain Document (its metadata a copy the caller may change). */
function documentOf(hit: CollectionHit): DocumentInterface {
  return new Document({ id: String(hit.id), pageContent: hit.text ?? '', metadata: { ...(hit.metadata ?? {}) } });
}
