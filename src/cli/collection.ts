/**
 * `zgq collection upsert | query | delete`: a collection file (ZGQCollection: documents with
 * metadata over one index) changed in place under its writers' lock, like the index commands.
 * Documents come as JSON lines, one object per line: an "id" (string or integer), the vector under
 * "vector", "embedding" or "values", and optional "metadata" (an object) and "text" (a string).
 */
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { ZGQError } from '../errors.js';
import { type CollectionHit, type CollectionRecord, ZGQCollection, type Where } from '../index.js';
import type { Metric } from '../options.js';
import { HDF5_QUERIES, readVectorFile, VECTOR_FORMATS } from '../data/files.js';
import { int, waitOption } from './commands.js';

/** Documents per upsert call while reading a file: bounds what is held besides the collection. */
const UPSERT_BATCH = 10_000;
const VECTOR_KEYS = ['vector', 'embedding', 'values'];

/** The JSON of --where, parsed (the collection checks what it says). */
function whereJson(value: string): Where {
  try {
    return JSON.parse(value) as Where;
  } catch (e) {
    throw new InvalidArgumentError(`--where must be JSON such as '{"genre":"jazz"}': ${(e as Error).message}`);
  }
}

/** One document of a JSON lines file, shaped as upsert takes it (the collection checks the values). */
function recordOf(line: string, where: string): CollectionRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (e) {
    throw new ZGQError('INVALID_ARGUMENT', `${where}: not JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ZGQError('INVALID_ARGUMENT', `${where}: a document must be an object {"id", "vector", "metadata"?, "text"?}`);
  const doc = parsed as Record<string, unknown>;
  const key = VECTOR_KEYS.find((k) => doc[k] !== undefined);
  if (key !== undefined && !Array.isArray(doc[key])) throw new ZGQError('INVALID_ARGUMENT', `${where}: "${key}" must be an array of numbers`);
  const record: CollectionRecord = { id: doc.id as string | number };
  if (key !== undefined) record.vector = doc[key] as number[];
  if (doc.metadata !== undefined) record.metadata = doc.metadata as CollectionRecord['metadata'];
  if (doc.text !== undefined) record.text = doc.text as string;
  return record;
}

/** Upsert the documents of a JSON lines file in batches, naming the line of a bad one. */
async function upsertFile(collection: ZGQCollection, path: string, threads: number | undefined, onBatch: (done: number) => void): Promise<number> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let batch: CollectionRecord[] = [];
  /** The line of each record of the batch, for messages. */
  let lineNos: number[] = [];
  let lineNo = 0;
  let done = 0;
  const flush = async () => {
    try {
      await collection.upsert(batch, { threads });
    } catch (e) {
      if (!(e instanceof ZGQError)) throw e;
      // records[i] of the batch, named by its line
      const message = e.message
        .replace(/^upsert: /, '')
        .replace(/records\[(\d+)\](\.|: )?/, (_, i: string, sep: string | undefined) => `line ${lineNos[Number(i)]}${sep ? ': ' : ''}`);
      throw new ZGQError(e.code, `${path}: ${message}`, { cause: e });
    }
    done += batch.length;
    onBatch(done);
    batch = [];
    lineNos = [];
  };
  /** The line of each id read so far: an id twice in one file is refused, as it is in one upsert. */
  const seen = new Map<string | number, number>();
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      const record = recordOf(line, `${path}:${lineNo}`);
      const before = seen.get(record.id);
      if (before !== undefined) throw new ZGQError('DUPLICATE_ID', `${path}:${lineNo}: id ${JSON.stringify(record.id)} is also on line ${before}`);
      seen.set(record.id, lineNo);
      batch.push(record);
      lineNos.push(lineNo);
      if (batch.length === UPSERT_BATCH) await flush();
    }
  } catch (e) {
    if (e instanceof ZGQError) throw e;
    throw new ZGQError('IO', `cannot read '${path}': ${(e as Error).message}`, { cause: e });
  }
  if (batch.length) await flush();
  return done;
}

/** An id in a TSV cell: as it is, or JSON-quoted when it holds a tab, a line break or a quote. */
function tsvId(id: string | number): string {
  return typeof id === 'string' && /[\t\r\n"]/.test(id) ? JSON.stringify(id) : String(id);
}

function hitsOf(hits: CollectionHit[]): Record<string, unknown>[] {
  return hits.map((h) => ({ id: h.id, distance: h.distance, ...(h.metadata ? { metadata: h.metadata } : {}), ...(h.text !== undefined ? { text: h.text } : {}) }));
}

export function registerCollectionCommands(program: Command): void {
  const collection = program.command('collection').description('documents with metadata over one index: upsert, query with filters, delete');

  collection
    .command('upsert')
    .description('add or replace documents from a JSON lines file ({"id", "vector", "metadata"?, "text"?} per line); creates the collection file when missing')
    .argument('<collection>', 'collection file, rewritten atomically')
    .argument('<documents>', 'JSON lines file')
    .addOption(new Option('--metric <metric>', 'distance of a new collection').choices(['l2', 'ip', 'cosine']).default('cosine'))
    .option('--threads <count>', 'threads (default: all CPUs)', int('--threads'))
    .addOption(waitOption())
    .action(async (path: string, documents: string, o) => {
      // the dimension of a new collection: the first document's vector
      let dim = 0;
      try {
        for await (const line of createInterface({ input: createReadStream(documents), crlfDelay: Infinity })) {
          if (line.trim() === '') continue;
          const first = recordOf(line, `${documents}:1`);
          dim = first.vector ? first.vector.length : 0;
          break;
        }
      } catch (e) {
        if (e instanceof ZGQError) throw e;
        throw new ZGQError('IO', `cannot read '${documents}': ${(e as Error).message}`, { cause: e });
      }
      let count = 0;
      const started = performance.now();
      const saved = await ZGQCollection.update(
        path,
        async (c) => {
          count = await upsertFile(c, documents, o.threads, (done) => {
            if (process.stderr.isTTY) process.stderr.write(`upserted ${done}\r`);
          });
        },
        { wait: o.wait * 1000, create: dim > 0 ? { dim, metric: o.metric as Metric } : undefined },
      );
      process.stderr.write(`upserted ${count} documents in ${((performance.now() - started) / 1000).toFixed(1)} s: ${saved.size} in ${path}\n`);
    });

  collection
    .command('query')
    .description('the k nearest documents of each query vector, among those --where admits')
    .argument('<collection>', 'collection file')
    .argument('<queries>', `query vectors (${VECTOR_FORMATS})`)
    .option('-k, --k <k>', 'documents per query', int('-k'), 10)
    .option('--where <json>', 'filter on metadata, such as \'{"genre":"jazz","year":{"$gte":1990}}\'', whereJson)
    .option('--ef <ef>', 'search beam width', int('--ef'))
    .addOption(new Option('--format <format>', 'output: tsv (query, rank, id, distance) or json (one line per query, with metadata and text)').choices(['tsv', 'json']).default('tsv'))
    .option('-o, --output <file>', 'write results here instead of stdout')
    .action(async (path: string, queriesPath: string, o) => {
      const docs = await ZGQCollection.load(path);
      const queries = await readVectorFile(queriesPath, { dataset: HDF5_QUERIES });
      if (queries.dim !== docs.dim) throw new ZGQError('DIMENSION_MISMATCH', `${queriesPath}: queries have ${queries.dim} values; the collection's dim is ${docs.dim}`);
      const lines: string[] = o.format === 'tsv' ? ['query\trank\tid\tdistance'] : [];
      for (let q = 0; q < queries.n; q++) {
        const hits = docs.query(queries.data.subarray(q * queries.dim, (q + 1) * queries.dim), { k: o.k, where: o.where, ...(o.ef ? { ef: o.ef } : {}) });
        if (o.format === 'json') lines.push(JSON.stringify({ query: q, hits: hitsOf(hits) }));
        else hits.forEach((h, r) => lines.push(`${q}\t${r + 1}\t${tsvId(h.id)}\t${h.distance}`));
      }
      const text = lines.join('\n') + '\n';
      if (!o.output) {
        process.stdout.write(text);
        return;
      }
      try {
        await writeFile(o.output, text);
      } catch (err) {
        throw new ZGQError('IO', `cannot write '${o.output}': ${(err as Error).message}`, { cause: err });
      }
    });

  collection
    .command('delete')
    .description('delete documents by id')
    .argument('<collection>', 'collection file, rewritten atomically')
    .argument('<ids...>', 'ids to delete (strings; with --json, JSON values such as 42 or "a")')
    .option('--json', 'read each id as JSON (integer ids)')
    .addOption(waitOption())
    .action(async (path: string, listed: string[], o) => {
      const ids = listed.map((t, i) => {
        if (!o.json) return t;
        try {
          return JSON.parse(t) as string | number;
        } catch {
          throw new ZGQError('INVALID_ARGUMENT', `id argument ${i + 1} '${t}' is not JSON (42, or "a" quoted for the shell)`);
        }
      });
      let deleted = 0;
      const saved = await ZGQCollection.update(path, async (c) => {
        deleted = await c.delete(ids);
      }, { wait: o.wait * 1000 });
      process.stderr.write(`deleted ${deleted} of ${ids.length} ids: ${saved.size} documents in ${path}\n`);
    });
}
