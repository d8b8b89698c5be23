// ZGQVectorStore (src/langchain.ts, 'zgq/langchain') against what LangChain's VectorStore and
// SaveableVectorStore require: addDocuments / addVectors with and without ids, similarity search
// with scores and filters, delete, save and load, retrievers. Embeddings are a deterministic
// character-trigram hash (no model, no network), so equal texts embed equally and near texts near.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Document } from '@langchain/core/documents';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
import { ZGQVectorStore } from '../src/langchain.js';
import { ZGQCollection } from '../src/index.js';
import { expectCodeAsync } from './helpers/expect.js';

const DIM = 64;

/** Character trigrams hashed into DIM buckets, unit length. */
class TrigramEmbeddings implements EmbeddingsInterface {
  async embedDocuments(texts: string[]): Promise<number[][]> {
    return texts.map((t) => this.embed(t));
  }

  async embedQuery(text: string): Promise<number[]> {
    return this.embed(text);
  }

  private embed(text: string): number[] {
    const v = new Array<number>(DIM).fill(0);
    const s = `  ${text.toLowerCase()} `;
    for (let i = 0; i + 3 <= s.length; i++) {
      let h = 2166136261;
      for (let j = i; j < i + 3; j++) h = Math.imul(h ^ s.charCodeAt(j), 16777619);
      v[(h >>> 0) % DIM] += 1;
    }
    const norm = Math.hypot(...v) || 1;
    return v.map((x) => x / norm);
  }
}

const embeddings = new TrigramEmbeddings();
const TEXTS = [
  'the cat sat on the mat', 'dogs chase cats in the park', 'a quantum computer factors numbers',
  'vector search finds nearest neighbours', 'graph indexes walk to the nearest vectors', 'jazz musicians improvise on chords',
  'rock bands play loud guitars', 'the stock market fell sharply today', 'bread rises in a warm oven',
  'mountains are covered with snow in winter',
];
const metadatas = TEXTS.map((_, i) => ({ topic: i < 2 ? 'animals' : i < 5 ? 'computing' : i < 7 ? 'music' : 'other', n: i }));

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zgq-langchain-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('fromTexts, then similarity search finds the text itself first, with ascending distances', async () => {
  const store = await ZGQVectorStore.fromTexts(TEXTS, metadatas, embeddings);
  assert.equal(store._vectorstoreType(), 'zgq');
  for (const [i, text] of TEXTS.entries()) {
    const results = await store.similaritySearchWithScore(text, 3);
    assert.equal(results[0][0].pageContent, text);
    assert.deepEqual(results[0][0].metadata, metadatas[i]);
    assert.ok(results[0][1] < 1e-3, `distance to itself ${results[0][1]}`);
    for (let j = 1; j < results.length; j++) assert.ok(results[j][1] >= results[j - 1][1]);
  }
  const near = await store.similaritySearch('nearest neighbour vector search', 2);
  assert.deepEqual(near.map((d) => d.metadata.topic), ['computing', 'computing']);
});

test('filters are the collection\'s where; ids are kept, returned and deletable', async () => {
  const store = new ZGQVectorStore(embeddings);
  const ids = await store.addDocuments(TEXTS.map((pageContent, i) => new Document({ pageContent, metadata: metadatas[i] })), { ids: TEXTS.map((_, i) => `t${i}`) });
  assert.deepEqual(ids, TEXTS.map((_, i) => `t${i}`));
  const music = await store.similaritySearch('the cat sat on the mat', 5, { topic: 'music' });
  assert.deepEqual(music.map((d) => d.id).sort(), ['t5', 't6']);
  const ranged = await store.similaritySearch('anything', 10, { n: { $gte: 8 } });
  assert.deepEqual(ranged.map((d) => d.metadata.n).sort(), [8, 9]);
  const withOwnId = await store.addDocuments([new Document({ id: 'own', pageContent: 'an id of its own', metadata: {} })]);
  assert.deepEqual(withOwnId, ['own']);
  const generated = await store.addVectors([await embeddings.embedQuery('no id at all')], [new Document({ pageContent: 'no id at all', metadata: {} })]);
  assert.match(generated[0], /^[0-9a-f-]{36}$/);
  await store.delete({ ids: ['t5', 'own'] });
  const after = await store.similaritySearch('jazz musicians improvise on chords', 10, { topic: 'music' });
  assert.deepEqual(after.map((d) => d.id), ['t6']);
  assert.equal(store.collection!.size, TEXTS.length);
});

test('maximal marginal relevance: near the query and unlike each other', async () => {
  const texts = ['red apples are sweet', 'red apples are sweet!', 'red apples are sweet.', 'green pears are juicy', 'red cars go fast'];
  const store = await ZGQVectorStore.fromTexts(texts, texts.map((_, i) => ({ i })), embeddings);
  const near = await store.similaritySearch('red apples are sweet', 3);
  assert.deepEqual(near.map((d) => d.metadata.i).sort(), [0, 1, 2], 'nearness alone: the three near copies');
  const diverse = await store.maxMarginalRelevanceSearch('red apples are sweet', { k: 3, fetchK: 5, lambda: 0.3 });
  assert.equal(diverse.length, 3);
  assert.equal(diverse[0].metadata.i, 0, 'the nearest first');
  assert.ok(diverse.filter((d) => (d.metadata.i as number) <= 2).length < 3, `one copy at most stands for the others: ${diverse.map((d) => d.metadata.i)}`);
  const filtered = await store.maxMarginalRelevanceSearch('red apples are sweet', { k: 2, fetchK: 5, filter: { i: { $gte: 3 } } });
  assert.deepEqual(filtered.map((d) => d.metadata.i).sort(), [3, 4]);
});

test('save and load: the same answers from the directory', async () => {
  const store = await ZGQVectorStore.fromDocuments(TEXTS.map((pageContent, i) => new Document({ pageContent, metadata: metadatas[i] })), embeddings);
  const path = join(dir, 'store');
  await store.save(path);
  const loaded = await ZGQVectorStore.load(path, embeddings);
  for (const text of TEXTS.slice(0, 4)) {
    assert.deepEqual(await loaded.similaritySearchWithScore(text, 4), await store.similaritySearchWithScore(text, 4));
  }
});

test('as a retriever, over a given collection; bad metadata and bad calls are refused', async () => {
  const collection = new ZGQCollection({ dim: DIM, metric: 'cosine' });
  const store = new ZGQVectorStore(embeddings, { collection });
  await store.addDocuments(TEXTS.map((pageContent, i) => new Document({ pageContent, metadata: metadatas[i] })));
  assert.equal(collection.size, TEXTS.length);
  // a collection with integer ids: Documents carry them as strings, and delete takes them back
  await collection.upsert({ id: 7, vector: await embeddings.embedQuery('seven'), text: 'seven' });
  const [seven] = await store.similaritySearch('seven', 1);
  assert.equal(seven.id, '7');
  await store.delete({ ids: [seven.id!] });
  assert.equal(collection.has(7), false);
  const retriever = store.asRetriever({ k: 1, filter: { topic: 'other' } });
  const [doc] = await retriever.invoke('warm bread from the oven');
  assert.equal(doc.pageContent, 'bread rises in a warm oven');
  await expectCodeAsync(store.addDocuments([new Document({ pageContent: 'x', metadata: { when: new Date() } })]), 'INVALID_ARGUMENT', /metadata\.when/);
  await expectCodeAsync(store.addVectors([[1, 2]], []), 'INVALID_ARGUMENT', /one vector per document/);
  await expectCodeAsync(store.addVectors([new Array(DIM - 1).fill(0.1)], [new Document({ pageContent: 'short', metadata: {} })]), 'DIMENSION_MISMATCH', /dim is 64/);
  assert.deepEqual(await new ZGQVectorStore(embeddings).similaritySearch('empty store', 3), []);
  await expectCodeAsync(new ZGQVectorStore(embeddings).save(join(dir, 'empty')), 'NOT_BUILT', /no documents yet/);
});
