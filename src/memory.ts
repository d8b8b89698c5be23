/**
 * The arena: one WebAssembly.Memory that holds every flat array of an index and the search
 * scratch, so JS and the kernels see the same bytes with no copies, and worker threads can share it.
 *
 * ```
 * 0            1 KiB           64 KiB                                              top      limit
 * +------------+----------------+--------------------------------------------------+--------+
 * | reserved   | kernel statics | index regions, then scratch, bump-allocated,     | free   |
 * | (null)     | (AS runtime)   | each 16-byte aligned (vectors, codes, adjacency, |        |
 * |            |                | centroids, ..., visited tags, LUT, pool)         |        |
 * +------------+----------------+--------------------------------------------------+--------+
 * ```
 * Allocation is a bump pointer with mark/release for temporaries (training buffers); memory grows
 * in whole 64 KiB pages as needed. Typed-array views go stale when the memory grows, so views are
 * re-made from the current buffer (see `view`); never keep one across an allocation.
 */
import { ZGQError } from './errors.js';

export const PAGE_BYTES = 65536;
/** Index data starts above the kernel module's static data (AssemblyScript puts it at 1024). */
export const ARENA_BASE = PAGE_BYTES;
/** 4 GiB - 64 KiB: the wasm32 address space less one page. */
export const MAX_PAGES = 65536;
/** Bytes an arena may hand out: the wasm32 address space less one page. */
export const ARENA_LIMIT = (MAX_PAGES - 1) * PAGE_BYTES;

/**
 * Where new arenas start and how far they may grow. Tests move `base` past 2 GiB (offsets there
 * must stay unsigned all the way to the kernels) and lower `limit` to reach OUT_OF_MEMORY with
 * small data; nothing else changes them.
 * @internal
 */
export const arenaBounds = { base: ARENA_BASE, limit: ARENA_LIMIT };

/** Human-readable bytes for messages: "3.21 GiB (3446000000 bytes)". */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} bytes` : `${v.toFixed(2)} ${units[u]} (${bytes} bytes)`;
}

/**
 * Refuse work that would need more arena bytes than the limit, before any of it is done: `bytes`
 * is the caller's estimate of the arena's high-water mark, `what` names the work.
 */
export function checkArenaBudget(bytes: number, what: string, limit = arenaBounds.limit): void {
  if (bytes > limit) {
    throw new ZGQError(
      'OUT_OF_MEMORY',
      `${what} needs about ${formatBytes(Math.ceil(bytes))} of WebAssembly memory; one index memory holds at most ${formatBytes(limit)}`,
    );
  }
}

export class Arena {
  readonly memory: WebAssembly.Memory;
  /** Next free byte. Offsets are plain (unsigned) numbers up to 4 GiB: never pass them through `|`, `&` or `~`. */
  private top: number;
  private highWater: number;
  private buffer: ArrayBufferLike;
  private u8View: Uint8Array;
  private readonly limit: number;

  constructor(memory?: WebAssembly.Memory) {
    this.memory = memory ?? sharedMemory();
    this.buffer = this.memory.buffer;
    this.u8View = new Uint8Array(this.buffer);
    this.top = arenaBounds.base;
    this.highWater = this.top;
    this.limit = arenaBounds.limit;
  }

  /** Bytes handed out so far (index data plus scratch), including the reserved low region. */
  get used(): number {
    return this.top;
  }

  /** The most bytes this arena may hold (allocations past it are OUT_OF_MEMORY). */
  get limitBytes(): number {
    return this.limit;
  }

  /** The highest `used` has been (temporaries released since included): what the memory grew to. */
  get peak(): number {
    return this.highWater;
  }

  /**
   * Reserve `bytes` (16-byte aligned), zeroed, and return the byte offset; the memory grows if
   * needed. Past the limit: OUT_OF_MEMORY, with the arena as it was. Only bytes below the high
   * water mark need zeroing (temporaries released there; the memory above it was never used): a
   * context block whose unset fields read as stale floats would send a worker's walk through a
   * filter bitmap that does not exist.
   */
  alloc(bytes: number): number {
    const offset = Math.ceil(this.top / 16) * 16;
    const end = offset + bytes;
    if (end > this.limit) {
      throw new ZGQError(
        'OUT_OF_MEMORY',
        `the index needs ${formatBytes(end)} of WebAssembly memory; one index memory holds at most ${formatBytes(this.limit)}`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / PAGE_BYTES));
      } catch (cause) {
        throw new ZGQError('OUT_OF_MEMORY', `growing WebAssembly memory to ${formatBytes(end)} failed: ${String(cause)}`, { cause });
      }
    }
    if (offset < this.highWater) this.bytes.fill(0, offset, Math.min(end, this.highWater));
    this.top = end;
    if (end > this.highWater) this.highWater = end;
    return offset;
  }

  /** Current top, to hand back to `release` once temporaries are no longer needed. */
  mark(): number {
    return this.top;
  }

  /** Free everything allocated after `mark` (stack discipline: temporaries only). */
  release(mark: number): void {
    this.top = mark;
  }

  /** The whole memory as bytes, re-made after growth. */
  get bytes(): Uint8Array {
    if (this.memory.buffer !== this.buffer || this.u8View.byteLength !== this.memory.buffer.byteLength) {
      this.buffer = this.memory.buffer;
      this.u8View = new Uint8Array(this.buffer);
    }
    return this.u8View;
  }

  /** A Float32Array view of `length` floats at `offset` (a view into the memory, not a copy). */
  f32(offset: number, length: number): Float32Array {
    return new Float32Array(this.bytes.buffer, offset, length);
  }

  /** A Uint32Array view of `length` values at `offset` (a view, not a copy). */
  u32(offset: number, length: number): Uint32Array {
    return new Uint32Array(this.bytes.buffer, offset, length);
  }

  /** A Uint16Array view of `length` values at `offset` (a view, not a copy). */
  u16(offset: number, length: number): Uint16Array {
    return new Uint16Array(this.bytes.buffer, offset, length);
  }

  /** A Uint8Array view of `length` bytes at `offset` (a view, not a copy). */
  u8(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.bytes.buffer, offset, length);
  }

  /** Allocate and fill from a typed array; returns the offset. */
  allocFrom(data: Float32Array | Uint32Array | Uint16Array | Int16Array | Uint8Array): number {
    const offset = this.alloc(data.byteLength);
    this.bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    return offset;
  }
}

/** A fresh shared memory for an arena (the kernels are built for shared memory, see asconfig.json). */
function sharedMemory(): WebAssembly.Memory {
  try {
    return new WebAssembly.Memory({ initial: 2, maximum: MAX_PAGES, shared: true });
  } catch (cause) {
    throw new ZGQError(
      'UNSUPPORTED_PLATFORM',
      `this runtime cannot create a shared WebAssembly.Memory (WebAssembly threads), which the ZGQ kernels need; some browsers allow it only on cross-origin isolated pages (${String(cause)})`,
      { cause },
    );
  }
}
