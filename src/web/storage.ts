/**
 * Index files in a browser: `save(path)` and `ZGQIndex.load(path)` keep containers in the origin
 * private file system (OPFS) where it can write files, else in IndexedDB. Both hold the exact
 * bytes of a Node file, so an index moves between the two as is.
 */
import { ZGQError } from '../errors.js';

/** Where this browser keeps saved indexes: 'opfs', 'indexeddb', or null (neither exists). */
export function storageKind(): 'opfs' | 'indexeddb' | null {
  const storage = typeof navigator === 'undefined' ? undefined : navigator.storage;
  // getDirectory alone is not enough: some browsers write OPFS files from workers only
  if (typeof storage?.getDirectory === 'function' && typeof FileSystemFileHandle !== 'undefined' && 'createWritable' in FileSystemFileHandle.prototype) {
    return 'opfs';
  }
  return typeof indexedDB === 'undefined' ? null : 'indexeddb';
}

/** Store `chunks` (concatenated) under `path`; the previous content stays until the write completes. */
export async function writeStored(path: string, chunks: Uint8Array[]): Promise<void> {
  const parts = checkPath(path);
  // storage APIs refuse views of shared memory (arena sections are): copy each chunk once
  const owned = chunks.map((c) => (c.buffer instanceof ArrayBuffer ? c : c.slice()));
  const kind = requireStorage(path);
  try {
    if (kind === 'opfs') {
      const file = await fileHandle(parts, true);
      // a writable stream writes a swap file that replaces the old content only on close()
      const out = await file.createWritable();
      try {
        for (const c of owned) await out.write(c as Uint8Array<ArrayBuffer>);
        await out.close();
      } catch (e) {
        await out.abort().catch(() => undefined);
        throw e;
      }
    } else {
      await idbRequest('readwrite', (store) => store.put(new Blob(owned as Uint8Array<ArrayBuffer>[]), parts.join('/')));
    }
  } catch (e) {
    throw e instanceof ZGQError ? e : new ZGQError('IO', `could not write ${path} to ${where(kind)}: ${describe(e)}`, { cause: e });
  }
}

/** The bytes stored under `path`. */
export async function readStored(path: string): Promise<Uint8Array> {
  const blob = await storedBlob(path);
  if (!blob) throw new ZGQError('IO', `${path}: not found in ${where(requireStorage(path))}`);
  return new Uint8Array(await blob.arrayBuffer());
}

/** What is stored under `path` as a Blob (read lazily, so a header costs a few bytes), or null when nothing is. */
export async function storedBlob(path: string): Promise<Blob | null> {
  const parts = checkPath(path);
  const kind = requireStorage(path);
  let blob: Blob | undefined;
  try {
    blob = kind === 'opfs' ? await (await fileHandle(parts, false)).getFile() : ((await idbRequest('readonly', (s) => s.get(parts.join('/')))) as Blob | undefined);
  } catch (e) {
    const missing = e instanceof DOMException && (e.name === 'NotFoundError' || e.name === 'TypeMismatchError');
    if (!missing) throw new ZGQError('IO', `could not read ${path} from ${where(kind)}: ${describe(e)}`, { cause: e });
  }
  return blob instanceof Blob ? blob : null;
}

/** The key `path` is stored under: its names joined by '/' (so 'a//b' and '/a/b' are one file). */
export function storageKey(path: string): string {
  return checkPath(path).join('/');
}

function requireStorage(path: string): 'opfs' | 'indexeddb' {
  const kind = storageKind();
  if (!kind) throw new ZGQError('IO', `${path}: this browser offers neither the origin private file system nor IndexedDB; use toBytes / fromBytes`);
  return kind;
}

/** Path segments; '.', '..' and empty names have no meaning in OPFS, so they are refused. */
function checkPath(path: string): string[] {
  if (typeof path !== 'string') throw new ZGQError('INVALID_ARGUMENT', `path must be a string; got ${path === null ? 'null' : typeof path}`);
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length === 0 || parts.some((p) => p === '.' || p === '..')) {
    throw new ZGQError('INVALID_ARGUMENT', `path must name a file with '/'-separated names other than '.' and '..'; got ${JSON.stringify(path)}`);
  }
  return parts;
}

async function fileHandle(parts: string[], create: boolean): Promise<FileSystemFileHandle> {
  let dir = await navigator.storage.getDirectory();
  for (const name of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(name, { create });
  return dir.getFileHandle(parts[parts.length - 1], { create });
}

const DB_NAME = 'zgq';
const STORE = 'indexes';

/** Run one request on the index store in its own transaction; resolves when the transaction commits. */
function idbRequest(mode: IDBTransactionMode, make: (store: IDBObjectStore) => IDBRequest): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction(STORE, mode);
      const request = make(tx.objectStore(STORE));
      tx.oncomplete = () => {
        db.close();
        resolve(request.result);
      };
      tx.onerror = tx.onabort = () => {
        db.close();
        reject(tx.error ?? request.error);
      };
    };
  });
}

function where(kind: 'opfs' | 'indexeddb'): string {
  return kind === 'opfs' ? 'the origin private file system' : `IndexedDB (database '${DB_NAME}')`;
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
