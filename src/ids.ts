/**
 * Caller id -> internal node, for remove, replace and allow-list filters: an open-addressing hash
 * table in two typed arrays (16 bytes per node, no per-entry objects, ~one cache miss per lookup).
 */
const EMPTY = 0xffffffff;

export class IdLookup {
  /** Uint32Array[capacity]: caller id per slot, EMPTY where free (caller ids are never EMPTY). */
  private readonly keys: Uint32Array;
  /** Uint32Array[capacity]: node of keys[slot]. */
  private readonly nodes: Uint32Array;
  private readonly mask: number;
  private readonly shift: number;

  /** ids: Uint32Array[n], caller id of each node (unique). */
  constructor(ids: Uint32Array) {
    let bits = 4;
    while (2 ** bits < ids.length * 2) bits++;
    const capacity = 2 ** bits;
    this.mask = capacity - 1;
    this.shift = 32 - bits;
    this.keys = new Uint32Array(capacity).fill(EMPTY);
    this.nodes = new Uint32Array(capacity);
    for (let node = 0; node < ids.length; node++) {
      let slot = this.slotOf(ids[node]);
      while (this.keys[slot] !== EMPTY) slot = (slot + 1) & this.mask;
      this.keys[slot] = ids[node];
      this.nodes[slot] = node;
    }
  }

  /** The node holding caller id `id`, or -1. */
  find(id: number): number {
    if (id === EMPTY) return -1;
    let slot = this.slotOf(id);
    for (;;) {
      const key = this.keys[slot];
      if (key === id) return this.nodes[slot];
      if (key === EMPTY) return -1;
      slot = (slot + 1) & this.mask;
    }
  }

  private slotOf(id: number): number {
    // Fibonacci hashing: the top bits of id * 2^32 / phi, so ids differing in any bits spread out
    return Math.imul(id, 0x9e3779b1) >>> this.shift;
  }
}

/** Bit `node` of a bitmap (bit i & 7 of byte i >> 3), the layout the kernels read. */
export function hasBit(bits: Uint8Array, node: number): boolean {
  return ((bits[node >> 3] >> (node & 7)) & 1) !== 0;
}

export function setBit(bits: Uint8Array, node: number): void {
  bits[node >> 3] |= 1 << (node & 7);
}
