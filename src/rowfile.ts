/**
 * Rows read from the saved index file for each re-rank (Node): one positional read per row, the OS
 * page cache as the cache. The file is held open; replacing it by a save (a rename) leaves this
 * handle on the rows it opened.
 */
import { closeSync, readSync } from 'node:fs';
import { ZGQError } from './errors.js';
import type { RowStore } from './rows.js';

export class FileRows implements RowStore {
  readonly place = 'file';
  readonly bytes = 0;

  /**
   * `file`: the file's descriptor, open for reading, shared by every shard of one file (null once
   * closed); `offset`: the byte of row 0; `n` rows of `rowBytes`.
   */
  constructor(
    private readonly file: OpenFile, private readonly offset: number, private readonly n: number, readonly rowBytes: number,
  ) {}

  gather(nodes: Uint32Array, count: number, into: Uint8Array): void {
    const { fd, path } = this.file;
    if (fd === null) throw new ZGQError('IO', `${path}: the index was closed`);
    const rowBytes = this.rowBytes;
    for (let i = 0; i < count; i++) {
      const node = nodes[i];
      let done = 0;
      try {
        while (done < rowBytes) {
          const read = readSync(fd, into, i * rowBytes + done, rowBytes - done, this.offset + node * rowBytes + done);
          if (read <= 0) throw new Error(`the file ended before row ${node} of ${this.n}`);
          done += read;
        }
      } catch (e) {
        throw new ZGQError('IO', `${path}: cannot read row ${node} (${e instanceof Error ? e.message : String(e)})`, { cause: e });
      }
    }
  }
}

/** A file held open for the row stores of its shards. */
export interface OpenFile {
  fd: number | null;
  readonly path: string;
}

/** Close the file; the stores over it fail with IO from then on. */
export function closeFile(file: OpenFile): void {
  const { fd } = file;
  file.fd = null;
  if (fd !== null) closeSync(fd);
}
