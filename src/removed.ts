/**
 * The nodes of a built index removed since its last layout. They stay in the graph, which searches
 * cross, until compaction or a re-layout cuts them out; no search returns them, and nodes linked in
 * place never link to them.
 *
 * Two arena bitmaps of the index's capacity, made on the first removal (nothing is kept while none
 * is removed): `removed` (bit set: removed), read as it is by the linking kernels, and `live` (bit
 * set: in use and not removed), the allow-list searches pass once anything is removed. The arena's
 * memory is shared, so views of it stay valid when it grows.
 */
import type { Arena } from './memory.js';
import { countBits, hasBit, setBit } from './ids.js';

export class RemovedNodes {
  /** How many nodes are removed. */
  count = 0;
  /** Arena offsets of the two bitmaps, 0 until the first removal. */
  private removedPtr = 0;
  private livePtr = 0;

  /** `capacity`: rows of the index; `inUse()`: its nodes in use now ([0, n)). */
  constructor(private readonly arena: Arena, private readonly capacity: number, private readonly inUse: () => number) {}

  /** Nodes in use and not removed: what searches can return. */
  get live(): number {
    return this.inUse() - this.count;
  }

  /** Bitmap of the removed nodes (bit set; capacity-sized), or null while none is removed. */
  get bits(): Uint8Array | null {
    return this.count > 0 ? this.arena.u8(this.removedPtr, this.bytes) : null;
  }

  /** The removed bitmap's arena offset for the linking kernels: 0 while none is removed. */
  get kernelBits(): number {
    return this.count > 0 ? this.removedPtr : 0;
  }

  /** The live bitmap's arena offset (first ceil(n / 8) bytes: nodes in use), or 0 while none is removed. */
  get liveBits(): number {
    return this.count > 0 ? this.livePtr : 0;
  }

  /** The live bitmap's bytes for the `n` nodes in use, or null while none is removed. */
  liveView(n: number): Uint8Array | null {
    return this.count > 0 ? this.arena.u8(this.livePtr, (n + 7) >> 3) : null;
  }

  has(node: number): boolean {
    return this.count > 0 && hasBit(this.arena.u8(this.removedPtr, this.bytes), node);
  }

  /** Mark `node` removed; false when it already was. */
  remove(node: number): boolean {
    this.ensure();
    const removed = this.arena.u8(this.removedPtr, this.bytes);
    if (hasBit(removed, node)) return false;
    setBit(removed, node);
    this.arena.u8(this.livePtr, this.bytes)[node >> 3] &= ~(1 << (node & 7));
    this.count++;
    return true;
  }

  /** Nodes [from, to) were appended: live (nothing to do while no bitmap exists). */
  appended(from: number, to: number): void {
    if (!this.livePtr) return;
    const live = this.arena.u8(this.livePtr, this.bytes);
    for (let i = from; i < to; i++) setBit(live, i);
  }

  /** Take the removals of a loaded file (its DELS bitmap over the n nodes in use). */
  restore(bits: Uint8Array): void {
    const n = this.inUse();
    if (countBits(bits, n) === 0) return;
    for (let i = 0; i < n; i++) if (hasBit(bits, i)) this.remove(i);
  }

  private get bytes(): number {
    return (this.capacity + 7) >> 3;
  }

  private ensure(): void {
    if (this.removedPtr) return;
    this.removedPtr = this.arena.alloc(this.bytes);
    this.arena.u8(this.removedPtr, this.bytes).fill(0);
    this.livePtr = this.arena.alloc(this.bytes);
    const live = this.arena.u8(this.livePtr, this.bytes).fill(0);
    for (let i = 0; i < this.inUse(); i++) setBit(live, i);
  }
}
