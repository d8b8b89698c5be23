/**
 * NumPy `.npy` arrays as vectors or ids. npyjs reads the header and gives a typed view of the
 * values; here they are checked and converted by value, because the dtype alone says too little:
 * numpy's default integer is int64 (npyjs: BigInt64Array), whose values are usually small ids.
 *
 * Vectors: float32 is used as is (a view of the file's bytes, no copy); float16 and float64 are
 * rounded to float32 like any float input; integer dtypes (i1..i8, u1..u8) and bool convert to
 * float32 only where the value is exactly representable (|v| <= 2^24, or a multiple of a larger
 * power of two), else the file is refused naming the row, column and value: an integer that
 * changes on the way in is more likely an id or a hash than a coordinate.
 * Ids: any integer or float dtype, 1-D or one column, every value an integer in [0, 2^32 - 2].
 */
import { parse as parseNpy } from 'npyjs';
import { ZGQError } from '../errors.js';
import { NO_ID } from '../ids.js';
import type { VecsResult } from './vecs.js';

/** Largest caller id (NO_ID, 2^32 - 1, marks empty result slots). */
export const MAX_ID = NO_ID - 1;

interface NpyValues {
  /** Row-major values; a JS array only for bool (npyjs gives booleans). */
  values: ArrayLike<number> | ArrayLike<bigint> | ArrayLike<boolean>;
  shape: number[];
  dtype: string;
}

function corrupt(name: string, what: string): ZGQError {
  return new ZGQError('CORRUPT_FILE', `${name}: ${what}`);
}

function parse(bytes: Uint8Array, name: string): NpyValues {
  // npyjs wants an ArrayBuffer of the file alone; a Buffer from readFile of a large file owns its
  // buffer, so the copy is skipped there
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  const buffer = (whole ? bytes.buffer : bytes.slice().buffer) as ArrayBuffer;
  let array;
  try {
    array = parseNpy(buffer);
  } catch (err) {
    throw corrupt(name, `not a readable .npy file (${(err as Error).message})`);
  }
  const { shape, data, fortranOrder, dtype } = array;
  if (fortranOrder) throw corrupt(name, 'Fortran-ordered arrays are not supported; save with numpy.ascontiguousarray');
  if (!('length' in data) || dtype.startsWith('U') || dtype === 'c8' || dtype === 'c16') {
    throw corrupt(name, `dtype ${dtype} is not a real number type`);
  }
  const values = data as unknown as NpyValues['values'];
  const count = shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw corrupt(name, `holds ${values.length} values, not the ${count} of shape [${shape.join(', ')}]`);
  return { values, shape, dtype };
}

/**
 * Vectors from the bytes of a `.npy` file: a 2-D array (rows x dim), or a 1-D array as one vector.
 * The returned data is a view of `bytes` for float32, else a new Float32Array.
 */
export function npyVectors(bytes: Uint8Array, name: string): VecsResult<Float32Array> {
  const { values, shape, dtype } = parse(bytes, name);
  if (shape.length !== 2 && shape.length !== 1) throw corrupt(name, `expected a 2-D array (vectors x dim); found shape [${shape.join(', ')}]`);
  const n = shape.length === 2 ? shape[0] : 1;
  const dim = shape.length === 2 ? shape[1] : shape[0];
  if (values instanceof Float32Array) return { data: values, n, dim };
  const data = new Float32Array(values.length);
  const integer = dtype[0] === 'i' || dtype[0] === 'u';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const x = Number(v);
    data[i] = x;
    // BigInt(x) only past 2^53, where Number(v) itself may have rounded
    if (integer && (data[i] !== x || (Math.abs(x) > 2 ** 53 && BigInt(x) !== v))) {
      throw new ZGQError(
        'INVALID_ARGUMENT',
        `${name}: value ${String(v)} at row ${Math.floor(i / dim)}, column ${i % dim} is not exactly representable as float32 ` +
          `(dtype ${dtype}; integers convert only where exact: |v| <= 16777216 or a multiple of a large enough power of two)`,
      );
    }
  }
  return { data, n, dim };
}

/** Ids from the bytes of a `.npy` file: a 1-D array or one column, each value an integer in [0, MAX_ID]. */
export function npyIds(bytes: Uint8Array, name: string): Uint32Array {
  const { values, shape } = parse(bytes, name);
  if (shape.length !== 1 && !(shape.length === 2 && shape[1] === 1)) {
    throw corrupt(name, `id files hold a 1-D array; found shape [${shape.join(', ')}]`);
  }
  const ids = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    // typeof first: bigint and number compare by value, booleans are not ids
    const ok = typeof v === 'bigint' ? v >= 0n && v <= BigInt(MAX_ID) : typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_ID;
    if (!ok) throw new ZGQError('INVALID_ARGUMENT', `${name}: id ${String(v)} at position ${i} is not an integer in [0, ${MAX_ID}]`);
    ids[i] = Number(v);
  }
  return ids;
}
