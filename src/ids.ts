/**
 * Caller id -> internal node, for remove, replace and allow-list filters: an open-addressing hash
 * table in two typed arrays (16 bytes per node, no per-entry objects, ~one cache miss per lookup).
 * Ids are never unmapped: a removed node keeps its entry until a new node takes the id or the index
 * is laid out afresh (callers check the removed bitmap).
 */
const EMPTY = 0xffffffff;

/** Id reported in result slots that have no neighbour (k larger than the index); never a caller id. */
export const NO_ID = 0xffffffff;

export class IdLookup {
  /** Uint32Array[capacity]: caller id per slot, EMPTY where free (caller ids are never EMPTY). */
  private readonly keys: Uint32Array;
  /** Uint32Array[capacity]: node of keys[slot]. */
  private readonly nodes: Uint32Array;
  private readonly mask: number;
  private readonly shift: number;

  /**
   * ids[0..n): caller id of each node, unique among the nodes `skip` does not mark (removed ones);
   * room for `capacity` nodes in all.
   */
  constructor(ids: Uint32Array, n: number, capacity: number, skip: Uint8Array | null) {
    let bits = 4;
    while (2 ** bits < capacity * 2) bits++;
    const slots = 2 ** bits;
    this.mask = slots - 1;
    this.shift = 32 - bits;
    this.keys = new Uint32Array(slots).fill(EMPTY);
    this.nodes = new Uint32Array(slots);
    for (let node = 0; node < n; node++) if (!skip || !hasBit(skip, node)) this.set(ids[node], node);
  }

  /** Map `id` to `node` (replacing any node it had). */
  set(id: number, node: number): void {
    let slot = this.slotOf(id);
    while (this.keys[slot] !== EMPTY && this.keys[slot] !== id) slot = (slot + 1) & this.mask;
    this.keys[slot] = id;
    this.nodes[slot] = node;
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

  /**
   * The first node of ids[0..n) (those `skip` marks left out) whose id an earlier node holds, or -1:
   * the check a loaded file's ids pass, in a table of this kind (a Set of 10M ids took 4.5 s, this 1.4 s).
   */
  static firstRepeat(ids: Uint32Array, n: number, skip: Uint8Array | null): number {
    const table = new IdLookup(ids, 0, n, null);
    for (let node = 0; node < n; node++) {
      if (skip && hasBit(skip, node)) continue;
      const id = ids[node];
      let slot = table.slotOf(id);
      while (table.keys[slot] !== EMPTY) {
        if (table.keys[slot] === id) return node;
        slot = (slot + 1) & table.mask;
      }
      table.keys[slot] = id;
    }
    return -1;
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

/** Set bits of one byte. */
export function popcount8(b: number): number {
  b = b - ((b >> 1) & 0x55);
  b = (b & 0x33) + ((b >> 2) & 0x33);
  return (b + (b >> 4)) & 0x0f;
}

/** Set bits among the first n of a bitmap. */
export function countBits(bits: Uint8Array, n: number): number {
  let count = 0;
  for (let i = 0; i < n >> 3; i++) count += popcount8(bits[i]);
  if (n & 7) count += popcount8(bits[n >> 3] & ((1 << (n & 7)) - 1));
  return count;
}
