/**
 * Writes to a cluster index: messages on its JetStream stream (src/cluster/manifest.ts), acknowledged
 * once the stream has stored them, and applied by every replica of every shard in stream order, so
 * that all replicas of a shard hold the same vectors.
 *
 * | header `op` | payload (little-endian)                                                          |
 * | ----------- | -------------------------------------------------------------------------------- |
 * | `add`       | u32 count, u32 ids[count], u32 shard[count] (the owner of each vector's nearest zone), f32 vectors[count * dim] |
 * | `remove`    | u32 ids[]                                                                        |
 *
 * An add replaces an id held anywhere: the shard it joins replaces its own, every other shard
 * removes it (as a sharded ZGQIndex does in one process).
 */
import { ZGQError } from '../errors.js';

export const OP = 'op';

export interface AddWrite {
  op: 'add';
  ids: Uint32Array;
  shard: Uint32Array;
  vectors: Float32Array;
}

export interface RemoveWrite {
  op: 'remove';
  ids: Uint32Array;
}

export type Write = AddWrite | RemoveWrite;

/** Vectors of `dim` per add message under max_payload bytes (at least 1). */
export function addChunk(maxPayload: number, dim: number): number {
  const per = Math.floor((maxPayload - 4) / (8 + dim * 4));
  if (per < 1) throw new ZGQError('INVALID_ARGUMENT', `one ${dim}-dimensional vector does not fit the NATS server's largest message (max_payload ${maxPayload} bytes)`);
  return per;
}

export function encodeAdd(ids: Uint32Array, shard: Uint32Array, vectors: Float32Array): Uint8Array {
  const count = ids.length;
  const out = new Uint8Array(4 + count * 8 + vectors.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, count, true);
  for (let i = 0; i < count; i++) {
    view.setUint32(4 + i * 4, ids[i], true);
    view.setUint32(4 + count * 4 + i * 4, shard[i], true);
  }
  const at = 4 + count * 8;
  for (let i = 0; i < vectors.length; i++) view.setFloat32(at + i * 4, vectors[i], true);
  return out;
}

export function encodeRemove(ids: Uint32Array): Uint8Array {
  const out = new Uint8Array(ids.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < ids.length; i++) view.setUint32(i * 4, ids[i], true);
  return out;
}

/** A write message, checked against the index's dimension (a malformed one is INVALID_ARGUMENT). */
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
  if (count < 0 || data.byteLength !== 4 + count * 8 + count * dim * 4) {
    throw new ZGQError('INVALID_ARGUMENT', `add of ${data.byteLength} bytes does not hold ${count} ids, shards and ${dim}-dimensional vectors`);
  }
  const vectors = new Float32Array(count * dim);
  const at = 4 + count * 8;
  for (let i = 0; i < vectors.length; i++) vectors[i] = view.getFloat32(at + i * 4, true);
  return { op, ids: u32(4, count), shard: u32(4 + count * 4, count), vectors };
}
