/**
 * Vector and id files, for the command line and the bench, chosen by extension:
 * .fvecs / .bvecs / .ivecs (texmex), .npy (a 2-D numeric array, one vector per row; see
 * src/data/npy.ts for the dtypes and how integers convert), and JSON (.jsonl / .ndjson / .json):
 * JSON lines or one JSON array of rows, each row an array of numbers or an object with "vector",
 * "embedding" or "values" and an optional integer "id" (src/data/json.ts); HDF5 (.hdf5 / .h5) in the
 * ann-benchmarks layout, `train` for the base vectors and `test` for queries (src/data/hdf5.ts); CSV
 * and TSV (.csv / .tsv), one vector per row, an optional header and `id` column (src/data/csv.ts);
 * Parquet (.parquet) and Arrow IPC (.arrow / .feather / .arrows / .ipc), a list column of numbers
 * or number columns, and an `id` column (src/data/parquet.ts, src/data/arrow.ts, src/data/columns.ts).
 * Every problem is a ZGQError naming the file (and the line, row or element), so the CLI prints one line.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { ZGQError } from '../errors.js';
import { bvecsToFloat32, readBvecs, readFvecs, readIvecs } from './vecs.js';
import { readJsonVectors } from './json.js';
import { readHdf5Vectors } from './hdf5.js';
import { readCsvVectors } from './csv.js';
import { MAX_ID, npyIds, npyVectors } from './npy.js';
import { readParquetVectors } from './parquet.js';
import { readArrowVectors } from './arrow.js';
import type { VectorRows } from './rows.js';

/** Vectors read from a file: `n` rows of `dim` floats, and ids when the file carries them. */
export type VectorFile = VectorRows;

const JSON_FILES = new Set(['.jsonl', '.ndjson', '.json']);
const HDF5_FILES = new Set(['.hdf5', '.h5']);
const ARROW_FILES = new Set(['.arrow', '.feather', '.arrows', '.ipc']);

/** The vector formats, as help and error messages list them. */
export const VECTOR_FORMATS = '.fvecs, .bvecs, .ivecs, .npy, JSON (.jsonl, .ndjson, .json), HDF5 (.hdf5, .h5), .csv, .tsv, .parquet or Arrow (.arrow, .feather, .arrows, .ipc)';

/** The HDF5 datasets read by default: ann-benchmarks files keep base vectors and queries apart. */
export const HDF5_BASE = 'train';
export const HDF5_QUERIES = 'test';

/** Options of readVectorFile. */
export interface VectorFileOptions {
  /** The dataset of an HDF5 file to read (default HDF5_BASE, 'train'); other formats ignore it. */
  dataset?: string;
  /** The column of vectors of a Parquet or Arrow file (default: see src/data/columns.ts); other formats ignore it. */
  column?: string;
}

function bad(path: string, what: string): ZGQError {
  return new ZGQError('CORRUPT_FILE', `${path}: ${what}`);
}

/** Read a vector file by its extension. */
export async function readVectorFile(path: string, options: VectorFileOptions = {}): Promise<VectorFile> {
  const ext = extname(path).toLowerCase();
  if (ext === '.fvecs') return plain(await readFvecs(path));
  if (ext === '.bvecs') {
    const r = await readBvecs(path);
    return plain({ data: bvecsToFloat32(r.data), n: r.n, dim: r.dim });
  }
  if (ext === '.ivecs') {
    const r = await readIvecs(path);
    return plain({ data: Float32Array.from(r.data), n: r.n, dim: r.dim });
  }
  if (ext === '.npy') return plain(npyVectors(await bytesOf(path), path));
  if (JSON_FILES.has(ext)) return readJsonVectors(path);
  if (HDF5_FILES.has(ext)) return plain(await readHdf5Vectors(path, options.dataset ?? HDF5_BASE));
  if (ext === '.csv' || ext === '.tsv') return readCsvVectors(path, { delimiter: ext === '.tsv' ? '\t' : ',' });
  if (ext === '.parquet') return readParquetVectors(path, { column: options.column });
  if (ARROW_FILES.has(ext)) return readArrowVectors(path, { column: options.column });
  throw new ZGQError('INVALID_ARGUMENT', `${path}: unknown vector format '${ext || '(no extension)'}'; use ${VECTOR_FORMATS}`);
}

function plain(r: { data: Float32Array; n: number; dim: number }): VectorFile {
  return { ...r, ids: null };
}

async function bytesOf(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ZGQError('IO', `cannot read '${path}': ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Ids from a file: JSON lines or plain text with one integer per line, .ivecs with one value per
 * record, or a 1-D .npy array of any integer dtype (int64 included).
 */
export async function readIdFile(path: string): Promise<Uint32Array> {
  const ext = extname(path).toLowerCase();
  if (ext === '.npy') return npyIds(await bytesOf(path), path);
  if (ext !== '.ivecs') return textIds(new TextDecoder().decode(await bytesOf(path)), path);
  const r = await readIvecs(path);
  if (r.dim !== 1 && r.n > 0) throw bad(path, `id files hold one id per record; records here have ${r.dim}`);
  for (let i = 0; i < r.n; i++) {
    if (r.data[i] < 0) throw new ZGQError('INVALID_ARGUMENT', `${path}: id ${r.data[i]} at position ${i} is not an integer in [0, ${MAX_ID}]`);
  }
  return new Uint32Array(r.data.buffer, r.data.byteOffset, r.n);
}

/** One id per line, blank lines skipped, into a Uint32Array that doubles as it fills. */
function textIds(text: string, path: string): Uint32Array {
  let ids = new Uint32Array(1024);
  let n = 0;
  let line = 0;
  for (let from = 0; from <= text.length; ) {
    let to = text.indexOf('\n', from);
    if (to === -1) to = text.length;
    line++;
    const t = text.slice(from, to).trim();
    from = to + 1;
    if (t === '') continue;
    const v = Number(t);
    if (!/^\d+$/.test(t) || !Number.isSafeInteger(v)) throw bad(path, `line ${line} is not an id: '${t.slice(0, 40)}'`);
    if (v > MAX_ID) throw new ZGQError('INVALID_ARGUMENT', `${path}: line ${line}: id ${v} is not an integer in [0, ${MAX_ID}]`);
    if (n === ids.length) {
      const grown = new Uint32Array(n * 2);
      grown.set(ids);
      ids = grown;
    }
    ids[n++] = v;
  }
  return ids.slice(0, n);
}
