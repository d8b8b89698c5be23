/**
 * Vector and id files for the command line, chosen by extension:
 * .fvecs / .bvecs / .ivecs (texmex), .npy (a 2-D numeric array, one vector per row; float32 as is,
 * other numeric types converted), and JSON lines (.jsonl / .ndjson / .json): one vector per line,
 * either an array of numbers or an object {"id": n, "vector": [...]}.
 * Every problem is a ZGQError naming the file (and the line or row), so the CLI prints one line.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { parse as parseNpy } from 'npyjs';
import { ZGQError } from '../errors.js';
import { bvecsToFloat32, readBvecs, readFvecs, readIvecs } from '../data/vecs.js';

/** Vectors read from a file: `n` rows of `dim` floats, and ids when the file carries them. */
export interface VectorFile {
  data: Float32Array;
  n: number;
  dim: number;
  /** Ids given in the file (JSON lines objects with "id"), one per row, or null. */
  ids: Uint32Array | null;
}

const JSON_LINES = new Set(['.jsonl', '.ndjson', '.json']);

export const VECTOR_FORMATS = '.fvecs, .bvecs, .ivecs, .npy or JSON lines (.jsonl, .ndjson, .json)';

function bad(path: string, what: string): ZGQError {
  return new ZGQError('CORRUPT_FILE', `${path}: ${what}`);
}

/** Read a vector file by its extension. */
export async function readVectorFile(path: string): Promise<VectorFile> {
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
  if (ext === '.npy') return readNpy(path);
  if (JSON_LINES.has(ext)) return readJsonLines(path);
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

async function readNpy(path: string): Promise<VectorFile> {
  const bytes = await bytesOf(path);
  let array;
  try {
    array = parseNpy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  } catch (err) {
    throw bad(path, `not a readable .npy file (${(err as Error).message})`);
  }
  const { shape, data, fortranOrder, dtype } = array;
  if (fortranOrder) throw bad(path, 'Fortran-ordered arrays are not supported; save with numpy.ascontiguousarray');
  if (shape.length !== 2 && shape.length !== 1) throw bad(path, `expected a 2-D array (vectors x dim); found shape [${shape.join(', ')}]`);
  if (!('length' in data) || typeof (data as Float32Array)[0] === 'bigint' || dtype.startsWith('U') || dtype === 'c8' || dtype === 'c16') {
    throw bad(path, `dtype ${dtype} is not a real number type`);
  }
  const n = shape.length === 2 ? shape[0] : 1;
  const dim = shape.length === 2 ? shape[1] : shape[0];
  const values = data as unknown as ArrayLike<number>;
  if (values.length !== n * dim) throw bad(path, `holds ${values.length} values, not ${n} x ${dim}`);
  return { data: values instanceof Float32Array ? values : Float32Array.from(values), n, dim, ids: null };
}

async function readJsonLines(path: string): Promise<VectorFile> {
  const rows: number[][] = [];
  const ids: number[] = [];
  let dim = -1;
  let lineNo = 0;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw bad(path, `line ${lineNo} is not valid JSON`);
      }
      let vector = value;
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        const o = value as { id?: unknown; vector?: unknown };
        vector = o.vector;
        if (o.id !== undefined) {
          if (typeof o.id !== 'number' || !Number.isInteger(o.id) || o.id < 0 || o.id >= 0xffffffff) {
            throw bad(path, `line ${lineNo}: "id" must be an integer in [0, 4294967294]`);
          }
          ids.push(o.id);
        }
      }
      if (!Array.isArray(vector) || !vector.every((v) => typeof v === 'number')) {
        throw bad(path, `line ${lineNo} must be an array of numbers or an object with a "vector" array`);
      }
      if (dim === -1) dim = vector.length;
      if (vector.length !== dim || dim === 0) throw bad(path, `line ${lineNo} has ${vector.length} numbers; earlier lines have ${dim}`);
      rows.push(vector);
    }
  } catch (err) {
    if (err instanceof ZGQError) throw err;
    throw new ZGQError('IO', `cannot read '${path}': ${(err as Error).message}`, { cause: err });
  }
  if (ids.length !== 0 && ids.length !== rows.length) throw bad(path, 'either every line has an "id" or none does');
  const data = new Float32Array(rows.length * Math.max(dim, 0));
  rows.forEach((r, i) => data.set(r, i * dim));
  return { data, n: rows.length, dim: Math.max(dim, 0), ids: ids.length ? Uint32Array.from(ids) : null };
}

/**
 * Ids from a file: JSON lines or plain text with one integer per line, .ivecs with one value per
 * record, or a 1-D integer .npy array.
 */
export async function readIdFile(path: string): Promise<Uint32Array> {
  const ext = extname(path).toLowerCase();
  let values: ArrayLike<number>;
  if (ext === '.ivecs') {
    const r = await readIvecs(path);
    if (r.dim !== 1 && r.n > 0) throw bad(path, `id files hold one id per record; records here have ${r.dim}`);
    values = r.data;
  } else if (ext === '.npy') {
    const r = await readNpy(path);
    values = r.data;
  } else {
    const text = new TextDecoder().decode(await bytesOf(path));
    values = text.split(/\r?\n/).map((line, i) => {
      const t = line.trim();
      return t === '' ? NaN : idOf(t, path, i + 1);
    }).filter((v) => !Number.isNaN(v));
  }
  const ids = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < 0 || v >= 0xffffffff) throw bad(path, `id ${v} at position ${i} is not an integer in [0, 4294967294]`);
    ids[i] = v;
  }
  return ids;
}

function idOf(text: string, path: string, line: number): number {
  const v = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(v)) throw bad(path, `line ${line} is not an id: '${text.slice(0, 40)}'`);
  return v;
}
