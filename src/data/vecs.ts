/**
 * Readers and writers for the texmex vector formats (`.fvecs`, `.ivecs`, `.bvecs`) and for
 * gzip-compressed MNIST IDX image files. Pure parsers work on bytes so tests can feed them
 * hand-made (or deliberately corrupt) input; the file functions only add I/O around them.
 *
 * texmex layout (little-endian, no file header): a run of records, each `int32 d` followed by
 * `d` values (float32 / int32 / uint8). All records in a file must have the same `d`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { ZGQError } from '../errors.js';

const gunzipAsync = promisify(gunzip);

/** Largest per-record dimension accepted; anything above is treated as a corrupt header. */
export const MAX_VECS_DIM = 1 << 20;

/** A parsed vector file: `n` vectors of `dim` values, flat row-major. */
export interface VecsResult<T> {
  /** `n * dim` values, vector i at `data[i * dim .. (i + 1) * dim)`. */
  data: T;
  /** Number of vectors. */
  n: number;
  /** Values per vector (0 only for an empty file). */
  dim: number;
}

/** A file location: a filesystem path or a `file:` URL. */
export type VecsPath = string | URL;

// Memcpy of the value bytes is only correct when the host is little-endian like the file.
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function displayPath(path: VecsPath): string {
  if (path instanceof URL) return path.protocol === 'file:' ? fileURLToPath(path) : path.href;
  return path;
}

async function readBytes(path: VecsPath, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ZGQError('IO', `cannot read ${what} file '${displayPath(path)}': ${reason}`, { cause: err });
  }
}

async function writeBytes(path: VecsPath, bytes: Uint8Array, what: string): Promise<void> {
  try {
    await writeFile(path, bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ZGQError('IO', `cannot write ${what} file '${displayPath(path)}': ${reason}`, { cause: err });
  }
}

/**
 * Shared texmex parser. Validates every record header and returns the concatenated value bytes
 * (little-endian on disk, converted to host order when `elemSize > 1`) in a fresh, aligned buffer.
 */
function parseRecords(
  bytes: Uint8Array,
  name: string,
  elemSize: 1 | 4,
  ext: string,
): { buffer: ArrayBuffer; n: number; dim: number } {
  const size = bytes.byteLength;
  if (size === 0) return { buffer: new ArrayBuffer(0), n: 0, dim: 0 };
  if (size < 4) {
    throw new ZGQError(
      'CORRUPT_FILE',
      `${ext} file '${name}': ${size} bytes is too short for the 4-byte dimension header at byte offset 0`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, size);
  const dim = view.getInt32(0, true);
  if (dim <= 0 || dim > MAX_VECS_DIM) {
    throw new ZGQError(
      'CORRUPT_FILE',
      `${ext} file '${name}': record 0 at byte offset 0 has dimension ${dim}, expected 1..${MAX_VECS_DIM}`,
    );
  }
  const valueBytes = dim * elemSize;
  const recSize = 4 + valueBytes;
  const n = Math.floor(size / recSize);
  const rest = size - n * recSize;

  // Header check first (cheap, n int32 reads) so a record with a different dim is reported as
  // such rather than as the size mismatch it usually also causes.
  for (let i = 1, off = recSize; i < n; i++, off += recSize) {
    const d = view.getInt32(off, true);
    if (d !== dim) {
      throw new ZGQError(
        'CORRUPT_FILE',
        `${ext} file '${name}': record ${i} at byte offset ${off} has dimension ${d}, but record 0 has ${dim} (all records must match)`,
      );
    }
  }
  if (rest !== 0) {
    throw new ZGQError(
      'CORRUPT_FILE',
      `${ext} file '${name}': size ${size} bytes is not a multiple of the record size ${recSize} (4 + ${elemSize}*${dim}); ` +
        `record ${n} at byte offset ${n * recSize} is truncated (${rest} trailing bytes)`,
    );
  }

  const buffer = new ArrayBuffer(n * valueBytes);
  const out = new Uint8Array(buffer);
  if (elemSize === 1 || HOST_LITTLE_ENDIAN) {
    // One memcpy per record: the value section of record i starts at i*recSize + 4, which is not
    // 4-byte aligned relative to the file buffer in general, so a typed view over it is unsafe.
    for (let i = 0, src = 4, dst = 0; i < n; i++, src += recSize, dst += valueBytes) {
      out.set(bytes.subarray(src, src + valueBytes), dst);
    }
  } else {
    const dv = new DataView(buffer);
    for (let i = 0, src = 4, dst = 0; i < n; i++, src += recSize) {
      for (let j = 0; j < dim; j++, dst += 4) dv.setUint32(dst, view.getUint32(src + 4 * j, true), false);
    }
  }
  return { buffer, n, dim };
}

/**
 * Parses `.fvecs` bytes.
 * @param bytes - the whole file content.
 * @param name - file name used in error messages.
 * @throws ZGQError('CORRUPT_FILE') on a bad header, inconsistent record dims or a truncated record.
 */
export function parseFvecs(bytes: Uint8Array, name = '<bytes>'): VecsResult<Float32Array> {
  const { buffer, n, dim } = parseRecords(bytes, name, 4, 'fvecs');
  return { data: new Float32Array(buffer), n, dim };
}

/**
 * Parses `.ivecs` bytes (e.g. ground-truth neighbour ids).
 * @throws ZGQError('CORRUPT_FILE') on a bad header, inconsistent record dims or a truncated record.
 */
export function parseIvecs(bytes: Uint8Array, name = '<bytes>'): VecsResult<Int32Array> {
  const { buffer, n, dim } = parseRecords(bytes, name, 4, 'ivecs');
  return { data: new Int32Array(buffer), n, dim };
}

/**
 * Parses `.bvecs` bytes (uint8 values, e.g. BIGANN/SIFT1B).
 * @throws ZGQError('CORRUPT_FILE') on a bad header, inconsistent record dims or a truncated record.
 */
export function parseBvecs(bytes: Uint8Array, name = '<bytes>'): VecsResult<Uint8Array> {
  const { buffer, n, dim } = parseRecords(bytes, name, 1, 'bvecs');
  return { data: new Uint8Array(buffer), n, dim };
}

/**
 * Reads an `.fvecs` file.
 * @throws ZGQError('IO') if the file cannot be read, ZGQError('CORRUPT_FILE') if it is malformed.
 */
export async function readFvecs(path: VecsPath): Promise<VecsResult<Float32Array>> {
  return parseFvecs(await readBytes(path, 'fvecs'), displayPath(path));
}

/**
 * Reads an `.ivecs` file.
 * @throws ZGQError('IO') if the file cannot be read, ZGQError('CORRUPT_FILE') if it is malformed.
 */
export async function readIvecs(path: VecsPath): Promise<VecsResult<Int32Array>> {
  return parseIvecs(await readBytes(path, 'ivecs'), displayPath(path));
}

/**
 * Reads a `.bvecs` file.
 * @throws ZGQError('IO') if the file cannot be read, ZGQError('CORRUPT_FILE') if it is malformed.
 */
export async function readBvecs(path: VecsPath): Promise<VecsResult<Uint8Array>> {
  return parseBvecs(await readBytes(path, 'bvecs'), displayPath(path));
}

/** Widens uint8 vectors (bvecs, IDX images) to float32, value for value. */
export function bvecsToFloat32(data: Uint8Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i];
  return out;
}

function checkShape(fn: string, length: number, dim: number): number {
  if (!Number.isSafeInteger(dim) || dim <= 0 || dim > MAX_VECS_DIM) {
    throw new ZGQError('INVALID_ARGUMENT', `${fn}: dim must be an integer in 1..${MAX_VECS_DIM}, got ${dim}`);
  }
  if (length % dim !== 0) {
    throw new ZGQError(
      'DIMENSION_MISMATCH',
      `${fn}: data length ${length} is not a multiple of dim ${dim}`,
    );
  }
  return length / dim;
}

function encodeRecords(fn: string, values: Uint8Array, length: number, dim: number, elemSize: 1 | 4): Uint8Array {
  const n = checkShape(fn, length, dim);
  const valueBytes = dim * elemSize;
  const recSize = 4 + valueBytes;
  const out = new Uint8Array(n * recSize);
  const view = new DataView(out.buffer);
  if (elemSize === 1 || HOST_LITTLE_ENDIAN) {
    for (let i = 0, dst = 0, src = 0; i < n; i++, dst += recSize, src += valueBytes) {
      view.setInt32(dst, dim, true);
      out.set(values.subarray(src, src + valueBytes), dst + 4);
    }
  } else {
    const sv = new DataView(values.buffer, values.byteOffset, values.byteLength);
    for (let i = 0, dst = 0, src = 0; i < n; i++, dst += recSize) {
      view.setInt32(dst, dim, true);
      for (let j = 0; j < dim; j++, src += 4) view.setUint32(dst + 4 + 4 * j, sv.getUint32(src, false), true);
    }
  }
  return out;
}

function bytesOf(a: Float32Array | Int32Array | Uint32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Encodes flat row-major float32 vectors as `.fvecs` bytes.
 * @throws ZGQError('INVALID_ARGUMENT' | 'DIMENSION_MISMATCH') on a bad dim or length.
 */
export function encodeFvecs(data: Float32Array, dim: number): Uint8Array {
  return encodeRecords('encodeFvecs', bytesOf(data), data.length, dim, 4);
}

/**
 * Encodes flat row-major int32 vectors as `.ivecs` bytes (a Uint32Array is written bit for bit).
 * @throws ZGQError('INVALID_ARGUMENT' | 'DIMENSION_MISMATCH') on a bad dim or length.
 */
export function encodeIvecs(data: Int32Array | Uint32Array, dim: number): Uint8Array {
  return encodeRecords('encodeIvecs', bytesOf(data), data.length, dim, 4);
}

/**
 * Encodes flat row-major uint8 vectors as `.bvecs` bytes.
 * @throws ZGQError('INVALID_ARGUMENT' | 'DIMENSION_MISMATCH') on a bad dim or length.
 */
export function encodeBvecs(data: Uint8Array, dim: number): Uint8Array {
  return encodeRecords('encodeBvecs', data, data.length, dim, 1);
}

/**
 * Writes flat row-major float32 vectors to an `.fvecs` file.
 * @throws ZGQError('IO') if the file cannot be written.
 */
export async function writeFvecs(path: VecsPath, data: Float32Array, dim: number): Promise<void> {
  await writeBytes(path, encodeFvecs(data, dim), 'fvecs');
}

/**
 * Writes flat row-major int32 vectors to an `.ivecs` file.
 * @throws ZGQError('IO') if the file cannot be written.
 */
export async function writeIvecs(path: VecsPath, data: Int32Array | Uint32Array, dim: number): Promise<void> {
  await writeBytes(path, encodeIvecs(data, dim), 'ivecs');
}

/** IDX magic number for unsigned-byte 3-D arrays (images). */
export const IDX_IMAGES_MAGIC = 2051;
/** IDX magic number for unsigned-byte 1-D arrays (labels). */
export const IDX_LABELS_MAGIC = 2049;

/**
 * Parses an uncompressed IDX image file (big-endian header: magic 2051, count, rows, cols; then
 * `count * rows * cols` unsigned bytes). Each image becomes one `rows * cols`-dim vector.
 * @throws ZGQError('CORRUPT_FILE') on a bad magic, bad sizes or a length that does not match.
 */
export function parseIdxImages(bytes: Uint8Array, name = '<bytes>'): VecsResult<Uint8Array> & { rows: number; cols: number } {
  const size = bytes.byteLength;
  if (size < 16) {
    throw new ZGQError('CORRUPT_FILE', `IDX file '${name}': ${size} bytes is too short for the 16-byte image header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, size);
  const magic = view.getInt32(0, false);
  if (magic !== IDX_IMAGES_MAGIC) {
    const hint = magic === IDX_LABELS_MAGIC ? ' (this is an IDX labels file)' : '';
    throw new ZGQError(
      'CORRUPT_FILE',
      `IDX file '${name}': magic at byte offset 0 is ${magic}, expected ${IDX_IMAGES_MAGIC}${hint}`,
    );
  }
  const n = view.getInt32(4, false);
  const rows = view.getInt32(8, false);
  const cols = view.getInt32(12, false);
  if (n < 0) throw new ZGQError('CORRUPT_FILE', `IDX file '${name}': image count at byte offset 4 is ${n}`);
  if (rows <= 0 || cols <= 0 || rows * cols > MAX_VECS_DIM) {
    throw new ZGQError(
      'CORRUPT_FILE',
      `IDX file '${name}': image size ${rows}x${cols} (byte offsets 8 and 12) must be positive with at most ${MAX_VECS_DIM} pixels`,
    );
  }
  const dim = rows * cols;
  const expected = 16 + n * dim;
  if (size !== expected) {
    throw new ZGQError(
      'CORRUPT_FILE',
      `IDX file '${name}': header says ${n} images of ${rows}x${cols} = ${expected} bytes, but the data is ${size} bytes` +
        (size < expected ? ` (truncated in image ${Math.floor((size - 16) / dim)})` : ''),
    );
  }
  // Copy into a plain Uint8Array (not a Buffer slice) that owns its buffer from offset 0.
  return { data: new Uint8Array(bytes.subarray(16, expected)), n, dim, rows, cols };
}

/**
 * Reads an IDX image file (MNIST / Fashion-MNIST `*-idx3-ubyte.gz`). Gzip input is detected by
 * its magic bytes and decompressed; an already-uncompressed IDX file is accepted too.
 * @throws ZGQError('IO') if the file cannot be read, ZGQError('CORRUPT_FILE') if the gzip
 * stream or the IDX content is malformed.
 */
export async function readIdxImages(path: VecsPath): Promise<VecsResult<Uint8Array> & { rows: number; cols: number }> {
  const name = displayPath(path);
  let bytes = await readBytes(path, 'IDX');
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await gunzipAsync(bytes);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new ZGQError('CORRUPT_FILE', `IDX file '${name}': gzip decompression failed: ${reason}`, { cause: err });
    }
  }
  return parseIdxImages(bytes, name);
}
