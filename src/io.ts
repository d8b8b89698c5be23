/**
 * Node file access for ZGQ containers: crash-safe atomic writes and checked reads. The format
 * itself (`format.ts`) stays free of Node imports so it can run in a browser.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import zlib from 'node:zlib';

import { ZGQError } from './errors.js';
import {
  crc32,
  decodeContainer,
  encodeContainerChunks,
  type Checksum,
  type DecodedContainer,
  type Section,
} from './format.js';

/**
 * The fastest CRC-32 available: Node's native `zlib.crc32` (≈ 3.4× the portable one, see
 * format.ts) where it exists (Node ≥ 20.15), else the portable {@link crc32}. Same results.
 */
export const fastCrc32: Checksum =
  typeof zlib.crc32 === 'function' ? (bytes, seed = 0) => zlib.crc32(bytes, seed) : crc32;

// Single write() calls are capped well below the 2 GiB per-call limit of some platforms.
const MAX_WRITE = 1 << 30;

// Directory fsync is refused on some platforms/filesystems (Windows, some network mounts);
// there the rename itself is the best durability available.
const IGNORABLE_DIR_SYNC_CODES = new Set(['EINVAL', 'EPERM', 'EISDIR', 'ENOTSUP', 'EBADF', 'EACCES']);

function describeCause(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code !== undefined && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

function errnoCode(e: unknown): string | undefined {
  return e instanceof Error ? (e as NodeJS.ErrnoException).code : undefined;
}

/**
 * Atomically replaces the file at `path` with the concatenation of `chunks`.
 *
 * Writes a uniquely named temporary file in the same directory (`path.tmp-<pid>-<random>`),
 * fsyncs it, renames it over `path` and fsyncs the directory, so after a crash `path` holds
 * either the complete old or the complete new contents, never a mix.
 *
 * @throws ZGQError `IO` naming `path` and the cause when anything fails; the temporary file is
 *   removed and any previous file at `path` is left untouched. `INVALID_ARGUMENT` when a chunk
 *   is not a Uint8Array (checked before touching the disk).
 */
export async function writeFileAtomic(path: string, chunks: Uint8Array | Uint8Array[]): Promise<void> {
  const list = chunks instanceof Uint8Array ? [chunks] : chunks;
  if (!Array.isArray(list) || !list.every((c) => c instanceof Uint8Array)) {
    throw new ZGQError('INVALID_ARGUMENT', `writeFileAtomic(${path}): chunks must be a Uint8Array or an array of them`);
  }
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: FileHandle | undefined;
  let tmpExists = false;
  try {
    // 'wx' so that a colliding name is an error rather than clobbering someone else's file.
    handle = await open(tmp, 'wx', 0o666);
    tmpExists = true;
    for (const chunk of list) {
      let done = 0;
      const total = chunk.byteLength;
      while (done < total) {
        const { bytesWritten } = await handle.write(chunk, done, Math.min(total - done, MAX_WRITE), null);
        if (bytesWritten <= 0) throw new Error(`write made no progress at byte ${done} of a ${total}-byte chunk`);
        done += bytesWritten;
      }
    }
    await handle.sync();
    const h = handle;
    handle = undefined;
    await h.close();
    await rename(tmp, path);
    tmpExists = false;
  } catch (e) {
    if (handle !== undefined) await handle.close().catch(() => undefined);
    if (tmpExists) await rm(tmp, { force: true }).catch(() => undefined);
    throw new ZGQError('IO', `could not write ${path}: ${describeCause(e)}`, { cause: e });
  }

  // Make the rename itself durable.
  let dir: FileHandle | undefined;
  try {
    dir = await open(dirname(path), 'r');
    await dir.sync();
  } catch (e) {
    if (!IGNORABLE_DIR_SYNC_CODES.has(errnoCode(e) ?? '')) {
      throw new ZGQError(
        'IO',
        `wrote ${path}, but syncing its directory failed, so the new contents may not survive a crash: ${describeCause(e)}`,
        { cause: e },
      );
    }
  } finally {
    await dir?.close().catch(() => undefined);
  }
}

/**
 * Reads a whole file. The result owns its memory from offset 0 of its ArrayBuffer (never a
 * slice of Node's shared pool), so container sections inside it are 16-byte aligned.
 *
 * @throws ZGQError `IO` naming `path` and the cause when it is missing, a directory or
 *   unreadable.
 */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    const code = errnoCode(e);
    const what = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : 'cannot read';
    throw new ZGQError('IO', `${path}: ${what} (${describeCause(e)})`, { cause: e });
  }
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) {
    return new Uint8Array(buf.buffer, 0, buf.byteLength);
  }
  // Small reads come from Node's shared pool at arbitrary offsets: copy to own, aligned memory.
  return new Uint8Array(buf);
}

/**
 * Encodes a container (see `format.ts`) with the native checksum and writes it with
 * {@link writeFileAtomic}, streaming section payloads without concatenating them first.
 *
 * @throws ZGQError `INVALID_ARGUMENT` for bad meta/sections, `IO` when writing fails.
 */
export async function writeContainerFile(
  path: string,
  meta: Record<string, unknown>,
  sections: Section[],
): Promise<void> {
  await writeFileAtomic(path, encodeContainerChunks(meta, sections, fastCrc32));
}

/**
 * Reads and validates a container file (see `decodeContainer`), naming `path` in errors and
 * using the native checksum.
 *
 * @throws ZGQError `IO` when the file cannot be read; `CORRUPT_FILE` / `UNSUPPORTED_VERSION` as
 *   for `decodeContainer`.
 */
export async function readContainerFile(path: string): Promise<DecodedContainer> {
  return decodeContainer(await readFileBytes(path), path, fastCrc32);
}
