/**
 * Caller id -> internal node, for remove, replace and allow-list filters: the ids sorted ascending
 * with their nodes beside them (8 bytes per node and a binary search, rather than a Map's ~50).
 */
export class IdLookup {
  /** Uint32Array[n]: caller ids, ascending. */
  private readonly sortedIds: Uint32Array;
  /** Uint32Array[n]: node of sortedIds[i]. */
  private readonly nodes: Uint32Array;

  /** ids: Uint32Array[n], caller id of each node (unique). */
  constructor(ids: Uint32Array) {
    const n = ids.length;
    this.nodes = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.nodes[i] = i;
    this.nodes.sort((a, b) => ids[a] - ids[b]);
    this.sortedIds = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.sortedIds[i] = ids[this.nodes[i]];
  }

  /** The node holding caller id `id`, or -1. */
  find(id: number): number {
    const a = this.sortedIds;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    return lo < a.length && a[lo] === id ? this.nodes[lo] : -1;
  }
}

/** Bit `node` of a bitmap (bit i & 7 of byte i >> 3), the layout the kernels read. */
export function hasBit(bits: Uint8Array, node: number): boolean {
  return ((bits[node >> 3] >> (node & 7)) & 1) !== 0;
}

export function setBit(bits: Uint8Array, node: number): void {
  bits[node >> 3] |= 1 << (node & 7);
}
