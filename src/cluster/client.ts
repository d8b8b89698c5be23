/**
 * ZGQCluster: search an index served by replicas over NATS (`zgq serve --nats`, Replica) as one
 * would search a ZGQIndex. Each request goes to one live replica of the shard (NATS queue group)
 * and carries a deadline; no live replica, a deadline passed and a lost connection are typed errors.
 */
import { connect, createInbox, headers, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { ZGQError } from '../errors.js';
import type { Metric, SearchOptions } from '../options.js';
import { NO_ID } from '../ids.js';
import { flatRows } from '../validate.js';
import { BUDGET_MS, ERROR_CODE, ERROR_MESSAGE, REQUEST_OPTIONS, checkIndexName, decodeResults, encodeSearch, replyError, searchChunk, subjectOf } from './protocol.js';

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
export type ClusterSearchOptions = Pick<SearchOptions, (typeof REQUEST_OPTIONS)[number]> & { filter?: Iterable<number> };

export class ZGQCluster {
  /** Requests in flight (close() lets them finish). */
  private readonly inFlight = new Set<Promise<unknown>>();

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

  /**
   * The k nearest neighbours of each query; row q of the flat results is [q * k, (q + 1) * k). A
   * batch whose request or reply would pass the NATS server's largest message goes as several
   * requests, one after another, each with the whole deadline.
   */
  async searchBatch(queries: Float32Array | ArrayLike<number>[], k: number, options: ClusterSearchOptions = {}): Promise<ClusterBatchResult> {
    if (!Number.isInteger(k) || k < 1) throw new ZGQError('INVALID_ARGUMENT', `k must be an integer >= 1; got ${k}`);
    const flat = flatten(queries, this.dim);
    const nq = flat.length / this.dim;
    const { filter, ...search } = options;
    const allow = filter === undefined ? null : filterIds(filter);
    const ids = new Uint32Array(nq * k).fill(NO_ID);
    const distances = new Float32Array(nq * k).fill(Infinity);
    if (allow && allow.length === 0) return { nq, ids, distances };
    const h = headers();
    h.set('k', String(k));
    h.set('options', JSON.stringify(search));
    const per = searchChunk(this.nc.info?.max_payload ?? 1 << 20, this.dim, k, allow?.length ?? 0);
    for (let from = 0; from < nq; from += per) {
      const count = Math.min(per, nq - from);
      const payload = encodeSearch(flat.subarray(from * this.dim, (from + count) * this.dim), allow);
      const work = request(this.nc, this.name, subjectOf(this.name, 0, 'search'), payload, h, this.timeoutMs, this.attemptMs);
      this.inFlight.add(work);
      try {
        const part = decodeResults(await work, count * k);
        ids.set(part.ids, from * k);
        distances.set(part.distances, from * k);
      } finally {
        this.inFlight.delete(work);
      }
    }
    return { nq, ids, distances };
  }

  /** Disconnect once the requests in flight are answered (or have failed). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    await this.nc.drain();
  }
}

/** A filter's ids, each an integer id in [0, NO_ID). */
function filterIds(filter: Iterable<number>): Uint32Array {
  const ids = Array.from(filter);
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= NO_ID) throw new ZGQError('INVALID_ARGUMENT', `filter[${i}] is ${id}: ids are integers in [0, ${NO_ID})`);
  });
  return Uint32Array.from(ids);
}

/** The queries as one flat Float32Array, a whole number (at least one) of dim-dimensional rows. */
function flatten(queries: Float32Array | ArrayLike<number>[], dim: number): Float32Array {
  const flat = flatRows(queries, dim, 'queries');
  // flat values not made of rows (an empty one too) are a dimension error; no rows at all, no input
  if (flat.length % dim !== 0 || (flat.length === 0 && queries instanceof Float32Array)) {
    throw new ZGQError('DIMENSION_MISMATCH', `queries hold ${flat.length} values: not a whole number of ${dim}-dimensional vectors`);
  }
  if (flat.length === 0) throw new ZGQError('EMPTY_INPUT', 'no queries');
  return flat;
}

/** Sends of one request at most: the first, and resends after attempts that got no reply. */
const MAX_SENDS = 3;

/**
 * One request to a shard's queue group, its reply taken from any of its sends: a send unanswered
 * after attemptMs is repeated (it reaches another live replica; one that died holding it never
 * answers), up to MAX_SENDS, until the deadline. Searches change nothing, so a request answered
 * twice is harmless; a replica skips one whose budget (the deadline, as ms left) has passed.
 * Returns the reply's payload, or throws the typed error it carries.
 */
async function request(
  nc: NatsConnection, name: string, subject: string, data: Uint8Array, h: MsgHdrs | undefined, timeoutMs: number, attemptMs: number,
): Promise<Uint8Array> {
  const deadline = performance.now() + timeoutMs;
  const inbox = createInbox();
  let sub;
  try {
    sub = nc.subscribe(inbox);
  } catch (err) {
    throw new ZGQError('IO', `cannot listen for replies on ${subject}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const replies = sub[Symbol.asyncIterator]();
  let next = replies.next();
  let sends = 0;
  const send = () => {
    const sendHeaders = h ?? headers();
    sendHeaders.set(BUDGET_MS, String(Math.max(1, Math.round(deadline - performance.now()))));
    nc.publish(subject, data, { reply: inbox, headers: sendHeaders });
    sends++;
  };
  try {
    send();
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw new ZGQError('TIMEOUT', `no reply on ${subject} within ${timeoutMs} ms (${sends} sends)`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waited = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), sends < MAX_SENDS ? Math.min(attemptMs, left) : left)));
      const got = await Promise.race([next, waited]);
      clearTimeout(timer);
      if (got === null) {
        if (sends < MAX_SENDS && performance.now() < deadline) send();
        continue;
      }
      if (got.done) throw new ZGQError('IO', `the connection closed while waiting for a reply on ${subject}`);
      const msg: Msg = got.value;
      next = replies.next();
      // the server's answer to a request nobody listens to: an empty message with status 503
      if (msg.data.length === 0 && msg.headers?.code === 503) throw new ZGQError('UNAVAILABLE', `no live replica of index '${name}' answers on ${subject}`);
      const failed = replyError(msg.headers?.get(ERROR_CODE), msg.headers?.get(ERROR_MESSAGE));
      if (failed) throw failed;
      return msg.data;
    }
  } catch (err) {
    if (err instanceof ZGQError) throw err;
    throw new ZGQError('IO', `request on ${subject} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  } finally {
    sub.unsubscribe();
  }
}
