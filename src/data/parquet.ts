/**
 * Vectors from Parquet (.parquet): a column holding a list of numbers per row (how pandas, Polars,
 * Hugging Face datasets and LanceDB exports store embeddings), or a wide table of number columns;
 * ids from an `id` column. Which columns: src/data/columns.ts. Rows are counted from 0 in messages.
 *
 * Read with hyparquet, one row group at a time through byte ranges of the file, into RowBlocks:
 * the file is never held whole and the decoded rows of one group are the largest JS structure.
 * hyparquet is pure JavaScript with no dependencies and reads every Parquet encoding, with
 * hyparquet-compressors for the codecs beyond Snappy (gzip, Brotli, zstd — Polars' default — and
 * LZ4). parquet-wasm reads the same files through a WebAssembly build of the Rust reader, but
 * hands over a whole table as Arrow IPC bytes (the file decoded in memory at once) and weighs
 * several megabytes; apache-arrow (used for .arrow files, src/data/arrow.ts) reads no Parquet.
 */
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead, parquetSchema, type FileMetaData, type SchemaTree } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { ZGQError } from '../errors.js';
import { chooseColumns, type TableColumn } from './columns.js';
import { RowBlocks, type VectorRows, checkedId, noRows, pastFloat32 } from './rows.js';

/** Options of readParquetVectors. */
export interface TableReadOptions {
  /** The column of vectors; by default the one chosen by src/data/columns.ts. */
  column?: string;
}

const NUMBER_TYPES = new Set(['FLOAT', 'DOUBLE', 'INT32', 'INT64']);

function leafType(node: SchemaTree): string | null {
  const e = node.element;
  if (e.type === 'FIXED_LEN_BYTE_ARRAY' && e.logical_type?.type === 'FLOAT16') return 'float16';
  return e.type && NUMBER_TYPES.has(e.type) ? e.type.toLowerCase() : null;
}

function describe(node: SchemaTree): TableColumn {
  const e = node.element;
  const name = e.name;
  if (e.converted_type === 'LIST' || e.logical_type?.type === 'LIST') {
    let leaf = node;
    while (leaf.children.length === 1) leaf = leaf.children[0];
    const inner = leaf.children.length === 0 ? leafType(leaf) : null;
    return { name, kind: inner && leaf.path.length - node.path.length <= 2 ? 'list' : 'other', type: `list<${inner ?? 'nested'}>` };
  }
  if (node.children.length > 0) return { name, kind: 'other', type: 'group' };
  const t = leafType(node);
  if (e.repetition_type === 'REPEATED') return { name, kind: t ? 'list' : 'other', type: `repeated ${t ?? e.type}` };
  if (t) return { name, kind: 'number', type: t };
  if (e.type === 'BYTE_ARRAY' && (e.converted_type === 'UTF8' || e.logical_type?.type === 'STRING')) return { name, kind: 'string', type: 'string' };
  return { name, kind: 'other', type: String(e.type ?? 'unknown').toLowerCase() };
}

/**
 * Read the vectors of a Parquet file (see the module comment).
 * @throws ZGQError('IO') if the file cannot be read; ZGQError('CORRUPT_FILE') if it is not Parquet,
 * a row's vector is null or has another length than the first, or no column holds vectors;
 * ZGQError('INVALID_ARGUMENT') for a bad id, a value outside the float32 range, or a `column` that
 * is missing or not a list of numbers.
 */
export async function readParquetVectors(path: string, options: TableReadOptions = {}): Promise<VectorRows> {
  let metadata: FileMetaData;
  let file;
  try {
    file = await asyncBufferFromFile(path);
  } catch (err) {
    throw new ZGQError('IO', `cannot read '${path}': ${(err as Error).message}`, { cause: err });
  }
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw new ZGQError('CORRUPT_FILE', `${path}: not a Parquet file (${(err as Error).message})`, { cause: err });
  }
  const choice = chooseColumns(parquetSchema(metadata).children.map(describe), path, options.column);
  const names = [...choice.vectors.map((c) => c.name), ...(choice.id ? [choice.id.name] : [])];
  const idAt = choice.id ? names.length - 1 : -1;
  const dimOf = (row: unknown[]) => (choice.list ? (row[0] as ArrayLike<unknown> | null)?.length ?? -1 : choice.vectors.length);
  let store: RowBlocks | null = null;
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: unknown[][] = [];
    try {
      await parquetRead({ file, metadata, columns: names, rowStart, rowEnd, compressors, utf8: true, onComplete: (r) => (rows = r) });
    } catch (err) {
      throw new ZGQError('CORRUPT_FILE', `${path}: rows ${rowStart}..${rowEnd - 1} cannot be decoded (${(err as Error).message})`, { cause: err });
    }
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      const where = `row ${rowStart + r}`;
      const values = choice.list ? (row[0] as ArrayLike<unknown> | null) : row;
      if (values === null || values === undefined) throw new ZGQError('CORRUPT_FILE', `${path}: ${where}: the vector is null`);
      if (store === null) {
        const dim = dimOf(row);
        if (dim <= 0) throw new ZGQError('CORRUPT_FILE', `${path}: ${where} is an empty vector`);
        store = new RowBlocks(dim);
      }
      if (choice.list && values.length !== store.dim) {
        throw new ZGQError('CORRUPT_FILE', `${path}: ${where} has ${values.length} numbers; earlier rows have ${store.dim}`);
      }
      const offset = store.next();
      const block = store.block;
      for (let j = 0; j < store.dim; j++) {
        const v = values[j];
        const x = typeof v === 'bigint' ? Number(v) : v;
        if (typeof x !== 'number') {
          throw new ZGQError('CORRUPT_FILE', `${path}: ${where}: value ${choice.list ? j : `'${choice.vectors[j].name}'`} is ${v === null ? 'null' : typeof v}, not a number`);
        }
        block[offset + j] = x;
        if (pastFloat32(block[offset + j], x)) {
          throw new ZGQError('INVALID_ARGUMENT', `${path}: ${where}: value ${j} is ${x}, outside the float32 range`);
        }
      }
      store.commit(idAt >= 0 ? checkedId(row[idAt], path, where, `id`) : undefined);
    }
    rowStart = rowEnd;
  }
  return store?.finish() ?? noRows();
}
