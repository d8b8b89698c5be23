/**
 * ZGQCluster: search an index served by replicas over NATS (`zgq serve --nats`, Replica) as one
 * would search a ZGQIndex. Each request goes to one live replica of the shard (NATS queue group)
 * and carries a deadline; no live replica, a deadline passed and a lost connection are typed errors.
 */
import { connect, headers, type NatsConnection, RequestError, TimeoutError } from '@nats-io/transport-node';
import { ZGQError } from '../errors.js';
import type { Metric, SearchOptions } from '../options.js';
import { NO_ID } from '../ids.js';
import { ERROR_CODE, ERROR_MESSAGE, checkIndexName, decodeResults, encodeSearch, replyError, subjectOf } from './protocol.js';

export interface ClusterOptions {
  /** Deadline of a request, in ms: past it, it fails with TIMEOUT. Default 5,000. */
  timeoutMs?: number;
  /**
   * Longest wait for one replica's reply, in ms: a request not answered by then is sent again, and
   * reaches another live replica (one that died holding it never answers). Default 1,000.
   */
  attemptMs?: number;
}

export interface ClusterSearchResult {
  ids: Uint32Array;
  distances: Float32Array;
}

export interface ClusterBatchResult extends ClusterSearchResult {
  nq: number;
}

/** Search options a cluster request may carry, and its filter (ids the search may return). */
export type ClusterSearchOptions = Pick<SearchOptions, 'ef' | 'nProbe' | 'rerank' | 'scan' | 'scanRatio' | 'traversal'> & { filter?: Iterable<number> };

export class ZGQCluster {
  private constructor(
    private readonly nc: NatsConnection,
    readonly name: string,
    readonly dim: number,
    readonly metric: Metric,
    private readonly timeoutMs: number,
    private readonly attemptMs: number,
  ) {}

  /**
   * Connect to the NATS server(s) at `servers` and to the index `name` (its shard 0 answers with
   * the index's dimension and metric).
   * @throws ZGQError UNAVAILABLE when no replica of the index answers, TIMEOUT, IO when the NATS
   * server cannot be reached.
   */
  static async connect(servers: string | string[], name: string, options: ClusterOptions = {}): Promise<ZGQCluster> {
    checkIndexName(name);
    const timeoutMs = options.timeoutMs ?? 5000;
    const attemptMs = options.attemptMs ?? Math.min(1000, timeoutMs);
    for (const [key, ms] of [['timeoutMs', timeoutMs], ['attemptMs', attemptMs]] as const) {
      if (!Number.isFinite(ms) || ms <= 0) throw new ZGQError('INVALID_ARGUMENT', `${key} must be a positive number of ms; got ${ms}`);
    }
    let nc: NatsConnection;
    try {
      nc = await connect({ servers, name: `zgq client ${name}`, maxReconnectAttempts: -1, timeout: timeoutMs });
    } catch (err) {
      throw new ZGQError('IO', `cannot reach the NATS server at ${String(servers)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    try {
      const reply = await request(nc, name, subjectOf(name, 0, 'info'), new Uint8Array(0), undefined, timeoutMs, attemptMs);
      const info = JSON.parse(new TextDecoder().decode(reply)) as { dim: number; metric: Metric };
      return new ZGQCluster(nc, name, info.dim, info.metric, timeoutMs, attemptMs);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  /** The k nearest neighbours of one query (rows end early with NO_ID when fewer match). */
  async search(query: ArrayLike<number>, k: number, options: ClusterSearchOptions = {}): Promise<ClusterSearchResult> {
    const r = await this.searchBatch([query], k, options);
    return { ids: r.ids, distances: r.distances };
  }

  /** The k nearest neighbours of each query; row q of the flat results is [q * k, (q + 1) * k). */
  async searchBatch(queries: Float32Array | ArrayLike<number>[], k: number, options: ClusterSearchOptions = {}): Promise<ClusterBatchResult> {
    if (!Number.isInteger(k) || k < 1) throw new ZGQError('INVALID_ARGUMENT', `k must be an integer >= 1; got ${k}`);
    const flat = flatten(queries, this.dim);
    const nq = flat.length / this.dim;
    const { filter, ...search } = options;
    const h = headers();
    h.set('k', String(k));
    h.set('options', JSON.stringify(search));
    const allow = filter === undefined ? null : Uint32Array.from(filter);
    if (allow && allow.length === 0) return { nq, ids: new Uint32Array(nq * k).fill(NO_ID), distances: new Float32Array(nq * k).fill(Infinity) };
    const reply = await request(this.nc, this.name, subjectOf(this.name, 0, 'search'), encodeSearch(flat, allow), h, this.timeoutMs, this.attemptMs);
    return { nq, ...decodeResults(reply, nq * k) };
  }

  /** Disconnect (requests in flight are answered first). */
  async close(): Promise<void> {
    await this.nc.drain();
  }
}

function flatten(queries: Float32Array | ArrayLike<number>[], dim: number): Float32Array {
  if (queries instanceof Float32Array) {
    if (queries.length === 0 || queries.length % dim !== 0) throw new ZGQError('DIMENSION_MISMATCH', `queries hold ${queries.length} values: not a whole number of ${dim}-dimensional vectors`);
    return queries;
  }
  const flat = new Float32Array(queries.length * dim);
  queries.forEach((q, i) => {
    if (q.length !== dim) throw new ZGQError('DIMENSION_MISMATCH', `queries[${i}] has ${q.length} values; the index dim is ${dim}`);
    for (let j = 0; j < dim; j++) flat[i * dim + j] = q[j];
  });
  if (flat.length === 0) throw new ZGQError('EMPTY_INPUT', 'no queries');
  return flat;
}

/**
 * One request to a shard's queue group, sent again after each attempt that gets no reply until the
 * deadline: its reply's payload, or the typed error it carries. Searches change nothing, so a
 * request answered twice is harmless.
 */
async function request(
  nc: NatsConnection, name: string, subject: string, data: Uint8Array, h: ReturnType<typeof headers> | undefined, timeoutMs: number, attemptMs: number,
): Promise<Uint8Array> {
  const deadline = performance.now() + timeoutMs;
  let msg;
  for (;;) {
    const left = deadline - performance.now();
    try {
      msg = await nc.request(subject, data, { timeout: Math.max(1, Math.min(attemptMs, left)), headers: h });
      break;
    } catch (err) {
      if (err instanceof RequestError && err.isNoResponders()) throw new ZGQError('UNAVAILABLE', `no live replica of index '${name}' answers on ${subject}`, { cause: err });
      const timedOut = err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError);
      if (!timedOut) throw new ZGQError('IO', `request on ${subject} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      if (performance.now() >= deadline) throw new ZGQError('TIMEOUT', `no reply on ${subject} within ${timeoutMs} ms`, { cause: err });
    }
  }
  const failed = replyError(msg.headers?.get(ERROR_CODE), msg.headers?.get(ERROR_MESSAGE));
  if (failed) throw failed;
  return msg.data;
}
