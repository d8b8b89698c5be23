/**
 * Vectors from HDF5 files in the ann-benchmarks layout: one file holds the datasets `train` (base
 * vectors), `test` (queries), `neighbors` and `distances` (ground truth), each 2-D, one row per
 * vector. A reader names the dataset it wants; any 2-D float32 or float64 dataset can be read.
 *
 * h5wasm (the HDF5 C library compiled to WebAssembly) does the reading, gzip-chunked datasets
 * included. Rows are read in slices of about SLICE_BYTES and copied into the result, so the
 * library's heap never holds the whole dataset: a read costs the Float32Array result plus one
 * slice, not two full copies. float64 values are rounded to float32 like any float input.
 *
 * h5wasm is imported on first use: loading its WebAssembly module takes a few tens of milliseconds
 * that readers of other formats should not pay.
 */
import { open } from 'node:fs/promises';
import { ZGQError } from '../errors.js';
import type { VecsResult } from './vecs.js';
import { pastFloat32 } from './rows.js';

/** Bytes of one slice read from the file (16 MiB in the dataset's own type). */
const SLICE_BYTES = 16 << 20;

/** The 8-byte HDF5 signature; it opens the file or follows a user block of 512, 1024, 2048, ... bytes. */
const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Options of readHdf5Vectors. */
export interface Hdf5ReadOptions {
  /** Rows per slice; by default as many as fit in 16 MiB. Tests use a few, so reads span slices. */
  sliceRows?: number;
}

type H5 = typeof import('h5wasm/node');

let loaded: Promise<H5['default']> | null = null;

/** h5wasm's version range, as package.json's optional peer dependency names it. */
export const H5WASM_VERSION = '0.10';

/**
 * The h5wasm module, loaded and ready. It is an optional peer dependency (its WebAssembly build of
 * HDF5 weighs 4 MiB; most users have no HDF5 files), so a missing one is an error saying how to
 * install it.
 */
function h5wasm(): Promise<H5['default']> {
  loaded ??= import('h5wasm/node').then(
    async (m) => {
      await m.default.ready;
      return m.default;
    },
    (err: unknown) => {
      loaded = null;
      const missing = (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND';
      throw new ZGQError(
        'UNSUPPORTED_PLATFORM',
        missing
          ? `reading HDF5 files needs the h5wasm package, an optional dependency: npm install h5wasm@${H5WASM_VERSION}`
          : `h5wasm did not load: ${(err as Error).message}`,
        { cause: err },
      );
    },
  );
  return loaded;
}

function corrupt(path: string, what: string): ZGQError {
  return new ZGQError('CORRUPT_FILE', `${path}: ${what}`);
}

/**
 * Throw unless the file exists and carries the HDF5 signature. h5wasm does not throw on a file it
 * cannot open: it prints HDF5's error stack and returns a closed handle, so the checks come first.
 */
async function checkSignature(path: string): Promise<void> {
  let file;
  try {
    file = await open(path);
  } catch (err) {
    throw new ZGQError('IO', `cannot read '${path}': ${(err as Error).message}`, { cause: err });
  }
  try {
    const size = (await file.stat()).size;
    const head = new Uint8Array(SIGNATURE.length);
    for (let at = 0; at + SIGNATURE.length <= size; at = at === 0 ? 512 : at * 2) {
      await file.read(head, 0, head.length, at);
      if (SIGNATURE.every((b, i) => head[i] === b)) return;
    }
  } finally {
    await file.close();
  }
  throw corrupt(path, 'not an HDF5 file (no HDF5 signature)');
}

/**
 * Read the 2-D float dataset `dataset` of an HDF5 file as `n` vectors of `dim` float32 values.
 * @throws ZGQError('IO') if the file cannot be read; ZGQError('CORRUPT_FILE') if it is not HDF5,
 * has no such dataset (the message lists those it has), or the dataset is not a 2-D float array;
 * ZGQError('INVALID_ARGUMENT') for a float64 value outside the float32 range (row and column named).
 */
export async function readHdf5Vectors(path: string, dataset: string, options: Hdf5ReadOptions = {}): Promise<VecsResult<Float32Array>> {
  await checkSignature(path);
  const h5 = await h5wasm();
  const file = new h5.File(path, 'r');
  try {
    const entity = file.get(dataset);
    if (!(entity instanceof h5.Dataset)) {
      const names = datasetNames(file, h5);
      const have = names.length === 0 ? 'it has none' : `it has ${names.map((s) => `'${s}'`).join(', ')}`;
      const what = entity === null ? 'no dataset' : `'${dataset}' is not a dataset`;
      throw corrupt(path, `${what}${entity === null ? ` '${dataset}'` : ''}; ${have}`);
    }
    const meta = entity.metadata;
    const shape = entity.shape ?? [];
    // H5T class 1 is floating point; sizes 4 and 8 are float32 and float64 (2 would be float16)
    if (meta.type !== 1 || (meta.size !== 4 && meta.size !== 8)) {
      throw corrupt(path, `dataset '${dataset}' has type ${String(entity.dtype)}; vectors are float32 or float64`);
    }
    if (shape.length !== 2) throw corrupt(path, `dataset '${dataset}' has shape [${shape.join(', ')}]; vectors are a 2-D array (rows x dim)`);
    const [n, dim] = shape;
    if (n > 0 && dim === 0) throw corrupt(path, `dataset '${dataset}' has shape [${n}, 0]: rows without values`);
    const data = new Float32Array(n * dim);
    const step = Math.max(1, options.sliceRows ?? Math.floor(SLICE_BYTES / Math.max(1, dim * meta.size)));
    for (let row = 0; row < n; row += step) {
      const end = Math.min(n, row + step);
      const slice = entity.slice([[row, end], []]);
      if (!(slice instanceof Float32Array || slice instanceof Float64Array) || slice.length !== (end - row) * dim) {
        throw corrupt(path, `dataset '${dataset}': rows ${row}..${end - 1} did not read as ${(end - row) * dim} float values`);
      }
      const offset = row * dim;
      data.set(slice, offset);
      if (slice instanceof Float64Array) checkRange(data, slice, offset, dim, path, dataset);
    }
    return { data, n, dim };
  } finally {
    file.close();
  }
}

/** A finite float64 that became ±Infinity as float32 is out of range; NaN and ±Infinity pass on to the index's check. */
function checkRange(data: Float32Array, slice: Float64Array, offset: number, dim: number, path: string, dataset: string): void {
  for (let i = 0; i < slice.length; i++) {
    const x = data[offset + i];
    if (pastFloat32(x, slice[i])) {
      const at = offset + i;
      throw new ZGQError(
        'INVALID_ARGUMENT',
        `${path}: dataset '${dataset}', row ${Math.floor(at / dim)}, column ${at % dim}: value ${slice[i]} is outside the float32 range`,
      );
    }
  }
}

/** Paths of the datasets in a file, for messages (a file of the ann-benchmarks layout has four). */
function datasetNames(file: InstanceType<H5['default']['File']>, h5: H5['default']): string[] {
  const names: string[] = [];
  for (const path of file.paths()) {
    if (file.get(path) instanceof h5.Dataset) names.push(path.replace(/^\//, ''));
    if (names.length === 20) break;
  }
  return names;
}
