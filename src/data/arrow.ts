/**
 * Vectors from Arrow IPC files (.arrow, .feather — Feather v2 is Arrow IPC — and the stream format,
 * .arrows / .ipc): a list, large list or fixed-size list column of floats or integers (how
 * pyarrow, Polars and LanceDB hand embeddings over), or a wide table of number columns; ids from an
 * `id` column. Which columns: src/data/columns.ts. Rows are counted from 0 in messages.
 *
 * Read with apache-arrow, the format's own JavaScript implementation, one record batch at a time
 * from a file handle (a file's batches are found through its footer) into RowBlocks. Float32 and
 * Float64 list values are copied straight from the batch's value buffer, without a JS array per row.
 */
import { open } from 'node:fs/promises';
import { DataType, Precision, RecordBatchReader, type Data, type Field, type Vector, util } from 'apache-arrow';
import { ZGQError } from '../errors.js';
import { chooseColumns, type TableColumn } from './columns.js';
import type { TableReadOptions } from './parquet.js';
import { RowBlocks, type VectorRows, checkedId, noRows, pastFloat32 } from './rows.js';

function numeric(t: DataType): boolean {
  return DataType.isFloat(t) || DataType.isInt(t);
}

function describe(field: Field): TableColumn {
  const t = field.type as DataType;
  const type = String(t);
  if (DataType.isFixedSizeList(t) || DataType.isList(t) || DataType.isLargeList(t)) {
    return { name: field.name, kind: numeric((t.children[0] as Field).type) ? 'list' : 'other', type };
  }
  if (numeric(t)) return { name: field.name, kind: 'number', type };
  if (DataType.isUtf8(t) || DataType.isLargeUtf8(t)) return { name: field.name, kind: 'string', type };
  return { name: field.name, kind: 'other', type };
}

/** Reads element k of a list column's child data as a number. */
function valueReader(child: Data): (k: number) => number {
  const values = child.values as ArrayLike<number | bigint>;
  const base = child.offset;
  if (DataType.isFloat(child.type) && child.type.precision === Precision.HALF) return (k) => util.uint16ToFloat64(values[base + k] as number);
  if (values instanceof Float32Array || values instanceof Float64Array) return (k) => values[base + k] as number;
  return (k) => Number(values[base + k]);
}

/**
 * Read the vectors of an Arrow IPC file (see the module comment).
 * @throws ZGQError('IO') if the file cannot be read; ZGQError('CORRUPT_FILE') if it is not Arrow
 * IPC, a vector or a value in one is null, rows differ in length, or no column holds vectors;
 * ZGQError('INVALID_ARGUMENT') for a bad id, a value outside the float32 range, or a `column` that
 * is missing or not a list of numbers.
 */
export async function readArrowVectors(path: string, options: TableReadOptions = {}): Promise<VectorRows> {
  let handle;
  try {
    handle = await open(path);
  } catch (err) {
    throw new ZGQError('IO', `cannot read '${path}': ${(err as Error).message}`, { cause: err });
  }
  const corrupt = (what: string, cause?: unknown) => new ZGQError('CORRUPT_FILE', `${path}: ${what}`, cause === undefined ? undefined : { cause });
  try {
    let reader;
    try {
      reader = await RecordBatchReader.from(handle);
      await reader.open();
    } catch (err) {
      throw corrupt(`not an Arrow IPC file (${(err as Error).message})`, err);
    }
    const choice = chooseColumns(reader.schema.fields.map(describe), path, options.column);
    const fieldIndex = (name: string) => reader.schema.fields.findIndex((f) => f.name === name);
    let store: RowBlocks | null = null;
    let row0 = 0; // the file's row number of the batch's first row
    const iterator = reader[Symbol.asyncIterator]();
    for (;;) {
      let step;
      try {
        step = await iterator.next();
      } catch (err) {
        throw corrupt(`the record batch after row ${row0} cannot be read (${(err as Error).message})`, err);
      }
      if (step.done) break;
      const batch = step.value;
      const idVector: Vector | null = choice.id ? batch.getChildAt(fieldIndex(choice.id.name)) : null;
      const columns = choice.vectors.map((c) => batch.getChildAt(fieldIndex(c.name)) as Vector);
      let row = row0;
      if (choice.list) {
        for (const data of columns[0].data) {
          const child = data.children[0];
          if (child.nullCount > 0) throw corrupt(`rows ${row}..${row + data.length - 1} hold a null value inside a vector`);
          const value = valueReader(child);
          const fixed = DataType.isFixedSizeList(data.type) ? data.type.listSize : 0;
          const offsets = data.valueOffsets as ArrayLike<number | bigint>;
          for (let i = 0; i < data.length; i++, row++) {
            const where = `row ${row}`;
            if (data.nullCount > 0 && !data.getValid(i)) throw corrupt(`${where}: the vector is null`);
            const from = fixed ? (data.offset + i) * fixed : Number(offsets[data.offset + i]);
            const length = fixed || Number(offsets[data.offset + i + 1]) - from;
            if (store === null) {
              if (length === 0) throw corrupt(`${where} is an empty vector`);
              store = new RowBlocks(length);
            }
            if (length !== store.dim) throw corrupt(`${where} has ${length} numbers; earlier rows have ${store.dim}`);
            const offset = store.next();
            const block = store.block;
            for (let j = 0; j < length; j++) {
              const x = value(from + j);
              block[offset + j] = x;
              if (pastFloat32(block[offset + j], x)) {
                throw new ZGQError('INVALID_ARGUMENT', `${path}: ${where}: value ${j} is ${x}, outside the float32 range`);
              }
            }
            store.commit(idVector ? checkedId(idVector.get(row - row0), path, where) : undefined);
          }
        }
      } else {
        store ??= new RowBlocks(columns.length);
        for (let i = 0; i < batch.numRows; i++, row++) {
          const where = `row ${row}`;
          const offset = store.next();
          const block = store.block;
          for (let j = 0; j < columns.length; j++) {
            const v: unknown = columns[j].get(i);
            if (v === null) throw corrupt(`${where}: value '${choice.vectors[j].name}' is null`);
            const x = Number(v);
            block[offset + j] = x;
            if (pastFloat32(block[offset + j], x)) {
              throw new ZGQError('INVALID_ARGUMENT', `${path}: ${where}: value '${choice.vectors[j].name}' is ${x}, outside the float32 range`);
            }
          }
          store.commit(idVector ? checkedId(idVector.get(i), path, where) : undefined);
        }
      }
      row0 += batch.numRows;
    }
    return store?.finish() ?? noRows();
  } finally {
    await handle.close();
  }
}
