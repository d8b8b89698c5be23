/**
 * Writes to a cluster index: messages on its JetStream stream (src/cluster/manifest.ts), acknowledged
 * once the stream has stored them, and applied by every replica of every shard in stream order, so
 * that all replicas of a shard hold the same vectors.
 *
 * | header `op` | payload (little-endian)                           |
 * | ----------- | ------------------------------------------------- |
 * | `add`       | u32 count, u32 ids[count], f32 vectors[count * dim] |
 * | `remove`    | u32 ids[]                                         |
 *
 * A replica sends each added vector to the shard owning the zone nearest to it, by the zone tables
 * of the version it serves (the writer's version may be older), and an id held by another shard is
 * removed there: an add replaces an id wherever it was, as a sharded ZGQIndex does in one process.
 * A write that is not valid as a whole (a dimension, a value that is not finite, an id repeated or
 * out of range) is skipped by every replica alike.
 */
import { ZGQError } from '../errors.js';
import { NO_ID } from '../ids.js';
import { checkFinite } from '../validate.js';
import { HEADER_ROOM } from './protocol.js';

export const OP = 'op';

export interface AddWrite {
  op: 'add';
  ids: Uint32Array;
  vectors: Float32Array;
}

export interface RemoveWrite {
  op: 'remove';
  ids: Uint32Array;
}

export type Write = AddWrite | RemoveWrite;

/** Vectors of `dim` per add message under max_payload bytes, headers included (at least 1). */
export function addChunk(maxPayload: number, dim: number): number {
  const per = Math.floor((maxPayload - HEADER_ROOM - 4) / (4 + dim * 4));
  if (per < 1) throw new ZGQError('INVALID_ARGUMENT', `one ${dim}-dimensional vector does not fit the NATS server's largest message (max_payload ${maxPayload} bytes)`);
  return per;
}

/** Ids per remove message under max_payload bytes, headers included. */
export function removeChunk(maxPayload: number): number {
  return Math.floor((maxPayload - HEADER_ROOM) / 4);
}

export function encodeAdd(ids: Uint32Array, vectors: Float32Array): Uint8Array {
  const count = ids.length;
  const out = new Uint8Array(4 + count * 4 + vectors.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, count, true);
  for (let i = 0; i < count; i++) view.setUint32(4 + i * 4, ids[i], true);
  const at = 4 + count * 4;
  for (let i = 0; i < vectors.length; i++) view.setFloat32(at + i * 4, vectors[i], true);
  return out;
}

export function encodeRemove(ids: Uint32Array): Uint8Array {
  const out = new Uint8Array(ids.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < ids.length; i++) view.setUint32(i * 4, ids[i], true);
  return out;
}

/**
 * A write message, checked as a whole against the index's dimension: INVALID_ARGUMENT (malformed,
 * an id repeated or NO_ID) or NOT_FINITE, and nothing of it applies.
 */
export function decodeWrite(op: string, data: Uint8Array, dim: number): Write {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const u32 = (at: number, count: number) => {
    const out = new Uint32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getUint32(at + i * 4, true);
    return out;
  };
  if (op === 'remove') {
    if (data.byteLength % 4) throw new ZGQError('INVALID_ARGUMENT', `remove of ${data.byteLength} bytes: not whole u32 ids`);
    return { op, ids: u32(0, data.byteLength / 4) };
  }
  if (op !== 'add') throw new ZGQError('INVALID_ARGUMENT', `unknown write op '${op}' (add or remove)`);
  const count = data.byteLength >= 4 ? view.getUint32(0, true) : -1;
  if (count < 0 || data.byteLength !== 4 + count * 4 + count * dim * 4) {
    throw new ZGQError('INVALID_ARGUMENT', `add of ${data.byteLength} bytes does not hold ${count} ids and ${dim}-dimensional vectors`);
  }
  const ids = u32(4, count);
  const seen = new Set<number>();
  for (const id of ids) {
    if (id === NO_ID) throw new ZGQError('INVALID_ARGUMENT', `add holds the id ${NO_ID}, which no vector may have`);
    if (seen.has(id)) throw new ZGQError('INVALID_ARGUMENT', `add holds the id ${id} twice`);
    seen.add(id);
  }
  const vectors = new Float32Array(count * dim);
  const at = 4 + count * 4;
  for (let i = 0; i < vectors.length; i++) vectors[i] = view.getFloat32(at + i * 4, true);
  checkFinite(vectors, dim, 'vector');
  return { op, ids, vectors };
}
