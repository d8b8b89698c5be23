/**
 * Re-ranking rows kept outside the index's WebAssembly memory. The walk needs only the graph, the
 * PQ codes and the zone tables; the rows it re-ranks can live in JS memory ('heap') or stay in the
 * saved file and be read for each re-rank ('file', src/rowfile.ts), so an index's memory holds a
 * fraction of its bytes. A store copies the rows of listed nodes into the arena, one after
 * another, where the rankStaged kernel compares them with the query.
 */
import { ZGQError } from './errors.js';

/** Where an index's re-ranking rows live. */
export type RowPlace = 'memory' | 'heap' | 'file';

/** Rows outside the arena, in the layout the index stores them (float32, or binary16 bits). */
export interface RowStore {
  readonly place: Exclude<RowPlace, 'memory'>;
  /** Bytes of one row. */
  readonly rowBytes: number;
  /** Bytes the store holds in this process (0 for a file: the OS page cache holds what was read). */
  readonly bytes: number;
  /** Copy the rows of nodes[0..count) into `into`, row i at i * rowBytes. */
  gather(nodes: Uint32Array, count: number, into: Uint8Array): void;
}

/** Rows in JS memory: one array, outside the 4 GiB of the index's WebAssembly memory. */
export class HeapRows implements RowStore {
  readonly place = 'heap';
  readonly rowBytes: number;
  private readonly rows: Uint8Array;

  /** `rows`: every row, row-major; copied, so the caller's array may change or go. */
  constructor(rows: Uint8Array, rowBytes: number) {
    this.rowBytes = rowBytes;
    this.rows = rows.slice();
  }

  get bytes(): number {
    return this.rows.byteLength;
  }

  gather(nodes: Uint32Array, count: number, into: Uint8Array): void {
    const { rows, rowBytes } = this;
    // a view per row, copied natively: 5-18x a word-by-word loop at 256-3,072 bytes a row
    for (let i = 0; i < count; i++) {
      const from = nodes[i] * rowBytes;
      into.set(rows.subarray(from, from + rowBytes), i * rowBytes);
    }
  }
}

/** The error for an operation that needs the rows in the index's memory. */
export function rowsOutside(place: RowPlace, what: string): ZGQError {
  const how = place === 'file' ? 'opened with ZGQIndex.open (its rows stay in the file)' : "loaded with rows: 'heap'";
  return new ZGQError('READ_ONLY', `${what} needs the index's rows in its memory; this index was ${how}: load it with ZGQIndex.load(path) to change it`);
}
