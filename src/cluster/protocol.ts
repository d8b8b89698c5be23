/**
 * The NATS wire format between `zgq serve --nats` and ZGQCluster. Shard s of version v of an index
 * answers on `zgq.<index>.v<v>.s<s>.<op>` in the queue group `zgq.<index>.v<v>.s<s>`, so a request
 * reaches one live replica of the shard, and never a replica of another version (whose zones and
 * shards differ): a client whose version no replica serves any more hears "no responders" and
 * reads the manifest again. Vectors travel as raw little-endian bytes, options as headers (writes
 * go through JetStream instead: src/cluster/writes.ts):
 *
 * | op       | request                                                                | reply                                   |
 * | -------- | ---------------------------------------------------------------------- | --------------------------------------- |
 * | `info`   | empty                                                                  | JSON `{ dim, metric, size, shard, version, applied }` |
 * | `search` | headers `k`, `options` (JSON SearchOptions); payload: u32 filter count, | u32 ids, then f32 distances, nq * k each |
 * |          | the filter's u32 ids, then the f32 queries (nq * dim)                   |                                         |
 *
 * A failed request is answered with the headers `error-code` (a ZGQErrorCode, or REPLICA_FAILED) and
 * `error-message` and an empty payload. A request's header `budget-ms` is the ms left to its
 * deadline when it was sent: a replica that reaches it later skips it (its client has resent it
 * or given up). A search's header `after-seq` names the last write its client made: the replica
 * answers once it has applied it (TIMEOUT if not within the budget). Requests and replies stay under the NATS server's max_payload (searchChunk).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ZGQError, type ZGQErrorCode } from '../errors.js';

/**
 * A connection to the NATS server(s) at `servers` that reconnects for as long as it lives (`once`:
 * one that gives up when the server goes, for a command that ends); IO when none can be reached.
 */
export async function connectTo(servers: string | string[], name: string, options: { timeoutMs?: number; once?: boolean } = {}): Promise<NatsConnection> {
  try {
    return await connect({ servers, name, maxReconnectAttempts: options.once ? 0 : -1, timeout: options.timeoutMs });
  } catch (err) {
    throw new ZGQError('IO', `cannot reach the NATS server at ${String(servers)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The server's largest message in bytes (NATS's default until the server has said). */
export function maxPayload(nc: NatsConnection): number {
  return nc.info?.max_payload ?? 1 << 20;
}

/** Index names: one NATS subject token of letters, digits, '-' and '_'. */
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function checkIndexName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ZGQError('INVALID_ARGUMENT', `index name must be 1-64 letters, digits, '-' or '_' (one NATS subject token); got ${JSON.stringify(name)}`);
  }
  return name;
}

export type ClusterOp = 'info' | 'search';

/** The search options a request may carry (the replica's index decides the rest). */
export const REQUEST_OPTIONS = ['ef', 'nProbe', 'rerank', 'scan', 'scanRatio', 'traversal'] as const;

export function subjectOf(index: string, version: number, shard: number, op: ClusterOp): string {
  return `zgq.${index}.v${version}.s${shard}.${op}`;
}

export function queueOf(index: string, version: number, shard: number): string {
  return `zgq.${index}.v${version}.s${shard}`;
}

/**
 * Bytes of a message's max_payload left to its headers (they count against it): requests and
 * writes fill their payloads only up to max_payload minus this.
 */
export const HEADER_ROOM = 1024;

/** A header holding a non-negative integer; `absent` when missing (NATS reads a missing header as ''). */
export function headerInt(value: string | undefined, name: string, absent: number): number {
  if (!value) return absent;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new ZGQError('INVALID_ARGUMENT', `header ${name} must be a non-negative integer; got ${JSON.stringify(value.slice(0, 40))}`);
  return n;
}

export const ERROR_CODE = 'error-code';
export const ERROR_MESSAGE = 'error-message';
/** Header of a request: ms left to its deadline when it was sent (a replica skips it past that). */
export const BUDGET_MS = 'budget-ms';
/** Header of a search: the last write its client made; the replica applies it before searching. */
export const AFTER_SEQ = 'after-seq';

/** Bytes of a search reply: ids and distances, 4 bytes each, per result. */
export function replyBytes(nq: number, k: number): number {
  return nq * k * 8;
}

/**
 * Queries per search request under a server's largest message (max_payload bytes), for the request
 * (filter, queries) and its reply alike; at least 1.
 * @throws ZGQError INVALID_ARGUMENT when one query's request or reply alone does not fit.
 */
export function searchChunk(maxPayload: number, dim: number, k: number, filterCount: number): number {
  const room = maxPayload - HEADER_ROOM;
  const byRequest = Math.floor((room - 4 - filterCount * 4) / (dim * 4));
  const byReply = Math.floor(room / replyBytes(1, k));
  const per = Math.min(byRequest, byReply);
  if (per < 1) {
    throw new ZGQError('INVALID_ARGUMENT', `one query with k = ${k} and ${filterCount} filter ids does not fit the NATS server's largest message (max_payload ${maxPayload} bytes)`);
  }
  return per;
}

/** A search request's payload: the filter's ids (none: every id), then the queries. */
export function encodeSearch(queries: Float32Array, filter: Uint32Array | null): Uint8Array {
  const n = filter?.length ?? 0;
  const out = new Uint8Array(4 + n * 4 + queries.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, n, true);
  for (let i = 0; i < n; i++) view.setUint32(4 + i * 4, filter![i], true);
  for (let i = 0; i < queries.length; i++) view.setFloat32(4 + n * 4 + i * 4, queries[i], true);
  return out;
}

/** The filter (null when empty) and queries of a search payload, checked against dim. */
export function decodeSearch(data: Uint8Array, dim: number): { filter: Uint32Array | null; queries: Float32Array; nq: number } {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.byteLength < 4) throw new ZGQError('INVALID_ARGUMENT', `search request of ${data.byteLength} bytes: shorter than its filter count`);
  const n = view.getUint32(0, true);
  const rest = data.byteLength - 4 - n * 4;
  if (rest < 0) throw new ZGQError('INVALID_ARGUMENT', `search request names ${n} filter ids but holds ${data.byteLength} bytes`);
  if (rest === 0 || rest % (dim * 4) !== 0) {
    throw new ZGQError('DIMENSION_MISMATCH', `search request holds ${rest / 4} query values: not a whole number of ${dim}-dimensional vectors`);
  }
  const filter = n > 0 ? new Uint32Array(n) : null;
  for (let i = 0; i < n; i++) filter![i] = view.getUint32(4 + i * 4, true);
  const queries = new Float32Array(rest / 4);
  for (let i = 0; i < queries.length; i++) queries[i] = view.getFloat32(4 + n * 4 + i * 4, true);
  return { filter, queries, nq: queries.length / dim };
}

/** A search reply's payload: ids, then distances. */
export function encodeResults(ids: Uint32Array, distances: Float32Array): Uint8Array {
  const out = new Uint8Array(ids.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < ids.length; i++) {
    view.setUint32(i * 4, ids[i], true);
    view.setFloat32(ids.length * 4 + i * 4, distances[i], true);
  }
  return out;
}

export function decodeResults(data: Uint8Array, count: number): { ids: Uint32Array; distances: Float32Array } {
  if (data.byteLength !== count * 8) throw new ZGQError('IO', `search reply of ${data.byteLength} bytes where ${count * 8} were expected`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const ids = new Uint32Array(count);
  const distances = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    ids[i] = view.getUint32(i * 4, true);
    distances[i] = view.getFloat32(count * 4 + i * 4, true);
  }
  return { ids, distances };
}

/** What a replica sends for a failure that is not a ZGQError (a bug, or the machine). */
export const REPLICA_FAILED = 'REPLICA_FAILED';

/** The error a reply carries, or null. */
export function replyError(code: string | undefined, message: string | undefined): ZGQError | null {
  if (!code) return null;
  if (code === REPLICA_FAILED) return new ZGQError('IO', `a replica failed: ${message ?? 'no message'}`);
  return new ZGQError(code as ZGQErrorCode, message ?? code);
}
