/**
 * Node file access for ZGQ containers: crash-safe atomic writes and checked reads. The format
 * itself (`format.ts`) stays free of Node imports so it can run in a browser.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, read, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import zlib from 'node:zlib';

import { ZGQError } from './errors.js';
import {
  checkedSection,
  containerStamp,
  crc32,
  decodeContainer,
  decodeLayout,
  encodeContainerChunks,
  headerLength,
  MAX_SECTIONS,
  type Checksum,
  type DecodedContainer,
  type PartlyRead,
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
 * Checks a file path given at the public boundary.
 *
 * @param what How to name the argument in the message, e.g. `'ZGQIndex.load: path'`.
 * @throws ZGQError `INVALID_ARGUMENT` unless `path` is a non-empty string without NUL characters.
 */
export function checkPath(path: unknown, what = 'path'): asserts path is string {
  if (typeof path !== 'string' || path === '' || path.includes('\0')) {
    const got = typeof path === 'string' ? JSON.stringify(path) : path === null ? 'null' : typeof path;
    throw new ZGQError('INVALID_ARGUMENT', `${what} must be a non-empty file path string without NUL characters; got ${got}`);
  }
}

/** Name of a temporary file of `path`; {@link removeStaleTemporaries} recognises exactly these. */
function temporaryName(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /**
   * Called after the temporary file is complete and flushed, just before it is renamed over
   * `path`; when it throws, nothing is replaced, the temporary file is removed and its error is
   * passed on as is. The writers' lock uses it to check that it still holds the lock.
   */
  beforeCommit?: () => Promise<void>;
}

/**
 * Atomically replaces the file at `path` with the concatenation of `chunks`.
 *
 * Writes a uniquely named temporary file in the same directory (`path.tmp-<pid>-<random>`),
 * fsyncs it, renames it over `path` and fsyncs the directory, so after a crash `path` holds
 * either the complete old or the complete new contents, never a mix.
 *
 * A process killed mid-write leaves its temporary file behind; {@link removeStaleTemporaries}
 * clears them, and a save holding the path's writers' lock calls it.
 *
 * @throws ZGQError `IO` naming `path` and the cause when anything fails; the temporary file is
 *   removed and any previous file at `path` is left untouched. `INVALID_ARGUMENT` when a chunk
 *   is not a Uint8Array (checked before touching the disk). What `options.beforeCommit` throws.
 */
export async function writeFileAtomic(
  path: string,
  chunks: Uint8Array | Uint8Array[],
  options: AtomicWriteOptions = {},
): Promise<void> {
  checkPath(path, 'writeFileAtomic: path');
  const list = chunks instanceof Uint8Array ? [chunks] : chunks;
  if (!Array.isArray(list) || !list.every((c) => c instanceof Uint8Array)) {
    throw new ZGQError('INVALID_ARGUMENT', `writeFileAtomic(${path}): chunks must be a Uint8Array or an array of them`);
  }
  const tmp = temporaryName(path);
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
    await options.beforeCommit?.();
    await rename(tmp, path);
    tmpExists = false;
  } catch (e) {
    if (handle !== undefined) await handle.close().catch(() => undefined);
    if (tmpExists) await rm(tmp, { force: true }).catch(() => undefined);
    if (e instanceof ZGQError) throw e;
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
 * Removes the temporary files that interrupted writes of `path` left behind (named as
 * {@link writeFileAtomic} names them: `<path>.tmp-<pid>-<12 hex digits>`). Temporaries of other
 * paths in the directory are left alone.
 *
 * Only safe while holding the writers' lock of `path` (lock.ts): then no other writer of `path`
 * is between creating and renaming its temporary file, so every one found is abandoned.
 *
 * @returns how many were removed.
 * @throws ZGQError `IO` when the directory cannot be listed or a temporary cannot be removed.
 */
export async function removeStaleTemporaries(path: string): Promise<number> {
  checkPath(path, 'removeStaleTemporaries: path');
  const dir = dirname(path);
  const pattern = new RegExp(`^${escapeRegExp(basename(path))}\\.tmp-\\d+-[0-9a-f]{12}$`);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 0;
    throw new ZGQError('IO', `could not list ${dir} to remove stale temporary files of ${path}: ${describeCause(e)}`, { cause: e });
  }
  let removed = 0;
  for (const name of names) {
    if (!pattern.test(name)) continue;
    try {
      await rm(join(dir, name), { force: true });
      removed++;
    } catch (e) {
      throw new ZGQError('IO', `could not remove the stale temporary file ${join(dir, name)}: ${describeCause(e)}`, { cause: e });
    }
  }
  return removed;
}

/**
 * The {@link containerStamp} of the file now at `path`, from its header alone (a few bytes, however
 * large the file): `null` when there is no file, `other/<size>` when it is not a ZGQ container.
 *
 * @throws ZGQError `IO` when the file exists but cannot be read.
 */
export async function fileStamp(path: string): Promise<string | null> {
  checkPath(path, 'fileStamp: path');
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    const { size } = await handle.stat();
    const fixed = new Uint8Array(headerLength(0));
    await handle.read(fixed, 0, fixed.length, 0);
    const count = new DataView(fixed.buffer).getUint32(24, true);
    let stamp = containerStamp(fixed, size);
    if (stamp === null && count <= MAX_SECTIONS && headerLength(count) <= size) {
      const head = new Uint8Array(headerLength(count));
      await handle.read(head, 0, head.length, 0);
      stamp = containerStamp(head, size);
    }
    return stamp ?? `other/${size}`;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return null;
    throw new ZGQError('IO', `${path}: cannot read its header (${describeCause(e)})`, { cause: e });
  } finally {
    await handle?.close().catch(() => undefined);
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
  checkPath(path, 'readFileBytes: path');
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
 * @returns the {@link containerStamp} of what was written.
 * @throws ZGQError `INVALID_ARGUMENT` for bad meta/sections, `IO` when writing fails; what
 *   `options.beforeCommit` throws.
 */
export async function writeContainerFile(
  path: string,
  meta: Record<string, unknown>,
  sections: Section[],
  options: AtomicWriteOptions = {},
): Promise<string> {
  const chunks = encodeContainerChunks(meta, sections, fastCrc32);
  await writeFileAtomic(path, chunks, options);
  let size = 0;
  for (const c of chunks) size += c.length;
  // the first chunk holds the whole header
  return containerStamp(chunks[0], size)!;
}

/**
 * Reads and validates a container file (see `decodeContainer`), naming `path` in errors and
 * using the native checksum.
 *
 * @throws ZGQError `IO` when the file cannot be read; `CORRUPT_FILE` / `UNSUPPORTED_VERSION` as
 *   for `decodeContainer`.
 */
export async function readContainerFile(path: string): Promise<DecodedContainer> {
  checkPath(path, 'path');
  let handle: FileHandle | undefined;
  let size: number;
  try {
    handle = await open(path, 'r');
    const info = await handle.stat();
    if (info.isDirectory()) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read`), { code: 'EISDIR' });
    size = info.size;
  } catch (e) {
    await handle?.close().catch(() => undefined);
    const code = errnoCode(e);
    const what = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : 'cannot read';
    throw new ZGQError('IO', `${path}: ${what} (${describeCause(e)})`, { cause: e });
  }
  try {
    if (size <= fileReading.wholeMax) return decodeContainer(await readAt(handle.fd, 0, size, path), path, fastCrc32);
    return await readBySection(handle, size, path);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Files up to `wholeMax` bytes are read whole; larger ones a section at a time, each into an array
 * of its own (one array holds at most 4 GiB, and readFile at most 2 GiB). Tests lower it to read
 * small files the second way; nothing else changes it.
 * @internal
 */
export const fileReading = { wholeMax: 1 << 30 };

const readAsync = promisify(read);

/** Bytes [offset, offset + length) of an open file (a new array: its memory starts at offset 0, so a whole file's sections are 16-byte aligned). */
async function readAt(fd: number, offset: number, length: number, path: string): Promise<Uint8Array> {
  const into = new Uint8Array(length);
  let done = 0;
  try {
    while (done < length) {
      const { bytesRead } = await readAsync(fd, into, done, Math.min(length - done, MAX_WRITE), offset + done);
      if (bytesRead <= 0) throw new Error(`the file ended at byte ${offset + done}, before ${offset + length}`);
      done += bytesRead;
    }
  } catch (e) {
    throw new ZGQError('IO', `${path}: cannot read (${describeCause(e)})`, { cause: e });
  }
  return into;
}

/** readAt without yielding: the small reads of a container's header, table and padding. */
function readAtSync(fd: number, offset: number, length: number, path: string): Uint8Array {
  const into = new Uint8Array(length);
  let done = 0;
  try {
    while (done < length) {
      const got = readSync(fd, into, done, length - done, offset + done);
      if (got <= 0) throw new Error(`the file ended at byte ${offset + done}, before ${offset + length}`);
      done += got;
    }
  } catch (e) {
    throw new ZGQError('IO', `${path}: cannot read (${describeCause(e)})`, { cause: e });
  }
  return into;
}

/**
 * A container read a section at a time: its header, table, metadata and padding through small
 * positional reads, checked as decodeContainer checks them, then each section into an array of its
 * own, checked against its checksum.
 */
async function readBySection(handle: FileHandle, size: number, path: string): Promise<DecodedContainer> {
  const fd = handle.fd;
  const layout = decodeLayout((offset, length) => readAtSync(fd, offset, length, path), size, path, fastCrc32);
  const sections = new Map<string, Uint8Array>();
  for (const entry of layout.entries) sections.set(entry.tag, checkedSection(entry, await readAt(fd, entry.offset, entry.length, path), path, fastCrc32));
  return { version: layout.version, stamp: layout.stamp, meta: layout.meta, sections };
}



/**
 * Open a container file for serving: every section read and checked except those `leave` names,
 * which stay in the file (their places returned), in the container and in each of its shards.
 * The file stays open: the caller owns `fd` and closes it (closeSync) when done with the sections left.
 *
 * @throws ZGQError `IO` when the file cannot be read; `CORRUPT_FILE` / `UNSUPPORTED_VERSION` as
 *   for `decodeContainer`.
 */
export async function openContainerFile(path: string, leave: (tag: string) => boolean): Promise<{ fd: number; container: PartlyRead }> {
  checkPath(path, 'path');
  let fd: number;
  let size: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = errnoCode(e);
    throw new ZGQError('IO', `${path}: ${code === 'ENOENT' ? 'file not found' : 'cannot read'} (${describeCause(e)})`, { cause: e });
  }
  try {
    const info = fstatSync(fd);
    if (info.isDirectory()) throw new ZGQError('IO', `${path}: is a directory`);
    size = info.size;
    return { fd, container: await readPartly(fd, 0, size, path, path, leave, true) };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The container of `size` bytes at `base` of an open file, read as openContainerFile describes. */
async function readPartly(fd: number, base: number, size: number, path: string, name: string, leave: (tag: string) => boolean, outer: boolean): Promise<PartlyRead> {
  const layout = decodeLayout((offset, length) => readAtSync(fd, base + offset, length, path), size, name, fastCrc32);
  const sections = new Map<string, Uint8Array>();
  const left = new Map<string, { offset: number; length: number }>();
  const shards: PartlyRead[] = [];
  for (const entry of layout.entries) {
    if (outer && /^S\d{3}$/.test(entry.tag)) {
      shards[Number(entry.tag.slice(1))] = await readPartly(fd, base + entry.offset, entry.length, path, `${name} (shard ${Number(entry.tag.slice(1))})`, leave, false);
    } else if (leave(entry.tag)) {
      left.set(entry.tag, { offset: base + entry.offset, length: entry.length });
    } else {
      sections.set(entry.tag, checkedSection(entry, await readAt(fd, base + entry.offset, entry.length, path), name, fastCrc32));
    }
  }
  return { version: layout.version, stamp: layout.stamp, meta: layout.meta, sections, left, shards };
}
