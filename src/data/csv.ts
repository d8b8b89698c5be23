/**
 * Vectors from CSV (`,`) and TSV (tab) text: one vector per row, every cell a decimal number.
 *
 * - Header: when the first row is not all numbers it is a header and is skipped (its names
 *   appear in messages).
 * - Ids: when the header's first name is `id` (any case), the first column holds integer ids in
 *   [0, MAX_ID] and the other columns the vector. Without a header there is no id column.
 * - Rows are read as a stream into RowBlocks (src/data/rows.ts): 4 bytes per value kept, never an
 *   array of rows for the whole file.
 *
 * csv-parse does the splitting: quoted cells, CRLF, a byte-order mark and a record that spans
 * chunks are its job, it streams through Node's async iterators with a line number per record,
 * and it has no dependencies. Papa Parse reads the same text but is built around the browser
 * (its Node stream mode is a duplex with callbacks), and a hand-written split on `,` would get
 * quoted cells wrong.
 */
import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';
import { ZGQError } from '../errors.js';
import { MAX_ID } from './npy.js';
import { RowBlocks, type VectorRows, noRows, pastFloat32 } from './rows.js';

/** Options of readCsvVectors. */
export interface CsvReadOptions {
  /** Cell separator: ',' (default) or '\t'. */
  delimiter?: string;
}

/** A decimal number as numpy, pandas and spreadsheets write them; `Number` alone would take '', '0x1f' and ' '. */
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?(?:inf|infinity|nan)$/i;

function toNumber(cell: string): number | null {
  if (!NUMBER.test(cell)) return null;
  const c = cell.toLowerCase().replace(/^\+/, '');
  if (c === 'nan' || c === '-nan') return NaN;
  if (c === 'inf' || c === 'infinity') return Infinity;
  if (c === '-inf' || c === '-infinity') return -Infinity;
  return Number(cell);
}

/**
 * Read a CSV or TSV file of vectors (see the module comment).
 * @throws ZGQError('IO') if the file cannot be read; ZGQError('CORRUPT_FILE') for a row with
 * another number of cells than the first, a cell that is not a number (line, column and header
 * name given) or unbalanced quotes; ZGQError('INVALID_ARGUMENT') for a bad id or a value outside
 * the float32 range.
 */
export async function readCsvVectors(path: string, options: CsvReadOptions = {}): Promise<VectorRows> {
  const corrupt = (what: string) => new ZGQError('CORRUPT_FILE', `${path}: ${what}`);
  const parser = parse({ delimiter: options.delimiter ?? ',', bom: true, trim: true, skip_empty_lines: true, relax_column_count: true, info: true });
  const source = createReadStream(path);
  // pipe() does not forward the source's errors (a missing file): end the parser with them
  source.on('error', (err) => parser.destroy(err));
  source.pipe(parser);
  let header: string[] | null = null;
  let idColumn = false;
  let width = -1; // cells per row, the id cell included
  let firstLine = 0;
  let store: RowBlocks | null = null;
  const column = (j: number) => `column ${j + 1}${header ? ` (${JSON.stringify(header[j])})` : ''}`;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = info.lines;
      if (width === -1) {
        if (header === null && record.some((c) => toNumber(c) === null)) {
          header = record;
          idColumn = record[0].toLowerCase() === 'id';
          if (record.length === (idColumn ? 1 : 0)) throw corrupt(`line ${line}: the header names no vector columns`);
          width = record.length;
          firstLine = line;
          continue;
        }
        width = record.length;
        firstLine = line;
      }
      if (record.length !== width) {
        throw corrupt(`line ${line} has ${record.length} cells; ${header ? `the header (line ${firstLine})` : `line ${firstLine}`} has ${width}`);
      }
      const first = idColumn ? 1 : 0;
      store ??= new RowBlocks(width - first);
      let used = store.next();
      const block = store.block;
      for (let j = first; j < width; j++) {
        const cell = record[j];
        const v = toNumber(cell);
        if (v === null) throw corrupt(`line ${line}, ${column(j)}: ${JSON.stringify(cell.length > 40 ? `${cell.slice(0, 40)}...` : cell)} is not a number`);
        block[used] = v;
        const x = block[used++]; // as stored: a finite v past the float32 range is now infinite
        if (pastFloat32(x, v)) {
          throw new ZGQError('INVALID_ARGUMENT', `${path}: line ${line}, ${column(j)}: value ${cell} is outside the float32 range`);
        }
      }
      let id: number | undefined;
      if (idColumn) {
        id = Number(record[0]);
        if (!/^\d+$/.test(record[0]) || id > MAX_ID) {
          throw new ZGQError('INVALID_ARGUMENT', `${path}: line ${line}, column 1 ("id"): ${JSON.stringify(record[0])} is not an integer in [0, ${MAX_ID}]`);
        }
      }
      store.commit(id);
    }
  } catch (err) {
    source.destroy();
    if (err instanceof ZGQError) throw err;
    const e = err as Error & { code?: string; lines?: number };
    if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR') {
      throw new ZGQError('IO', `cannot read '${path}': ${e.message}`, { cause: err });
    }
    // a CsvError (unbalanced quote, a character after a closing quote) names its line
    throw new ZGQError('CORRUPT_FILE', `${path}: ${e.message}`, { cause: err });
  }
  return store?.finish() ?? noRows();
}
