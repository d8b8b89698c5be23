/**
 * ZGQCluster: search and change an index served by replicas over NATS (`zgq serve --nats`, Replica)
 * as one would a ZGQIndex. A search selects zones with the router built from the shards' zone
 * tables, sends each shard the queries routed to it (one live replica of the shard answers: NATS
 * queue group), and merges the results on their exact distances, within one deadline. Writes go
 * through the index's JetStream stream and are acknowledged once stored there; the client's later
 * searches see them.
 */
import { randomUUID } from 'node:crypto';
import { createInbox, headers, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { ZGQError } from '../errors.js';
import { kernelMetric, type Metric, resolveSearch, scansEveryVector, type SearchOptions } from '../options.js';
import { NO_ID } from '../ids.js';
import { Router, SortedMerge } from '../shards.js';
import { addedRows, flatRows, gatherRows, normalizedCopy } from '../validate.js';
import { ClusterStore, decodeZoneTables, type Manifest, streamOf, writesSubject } from './manifest.js';
import { AFTER_SEQ, BUDGET_MS, ERROR_CODE, ERROR_MESSAGE, REQUEST_OPTIONS, checkIndexName, connectTo, maxPayload, decodeResults, encodeSearch, replyError, searchChunk, subjectOf } from './protocol.js';
import { addChunk, encodeAdd, encodeRemove, OP, removeChunk } from './writes.js';

export interface ClusterOptions {
  /** Deadline of a request (a search, or one write message), in ms: past it, it fails with TIMEOUT. Default 5,000. */
  timeoutMs?: number;
  /**
   * Longest wait for one replica's reply, in ms: a request not answered by then is sent again, and
   * reaches another live replica (one that died holding it never answers). Default 1,000.
   */
  attemptMs?: number;
}

/** A shard no replica answered for (a search with `partial: true` goes on without it). */
export interface MissingShard {
  shard: number;
  /** Its zones, [start, end) of the index's zone numbering (ClusterInfo.shards). */
  zones: [number, number];
  /** Why: UNAVAILABLE (no live replica) or TIMEOUT. */
  error: ZGQError;
}

export interface ClusterSearchResult {
  ids: Uint32Array;
  distances: Float32Array;
  /** Shards the search needed and did not reach (only with `partial: true`; empty when complete). */
  missing: MissingShard[];
}

export interface ClusterBatchResult extends ClusterSearchResult {
  nq: number;
  /** Per query: 1 where a shard it was routed to is missing (its results may lack neighbours). */
  incomplete: Uint8Array;
}

/** Search options a cluster request may carry, its filter (ids the search may return), and whether a missing shard is allowed. */
export type ClusterSearchOptions = Pick<SearchOptions, (typeof REQUEST_OPTIONS)[number]> & {
  filter?: Iterable<number>;
  /**
   * Return what the live shards found when a shard the search needs has no live replica (or does
   * not answer in time), flagged in `missing` / `incomplete`, instead of failing with UNAVAILABLE
   * (or TIMEOUT). Default false.
   */
  partial?: boolean;
};

/** What a connected client knows of the index: its published version and shards. */
export interface ClusterInfo {
  name: string;
  version: number;
  dim: number;
  metric: Metric;
  /** Vectors when published (writes since not counted). */
  size: number;
  shards: { shard: number; size: number; zones: [number, number] }[];
}

/** ClusterInfo, with what one replica of each shard says now (null: none answered). */
export interface ClusterStatus extends ClusterInfo {
  shards: (ClusterInfo['shards'][number] & { replica: { size: number; version: number; applied: number } | null; error?: string })[];
}

export class ZGQCluster {
  /** Requests in flight (close() lets them finish). */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** The last write this client made (its searches wait for replicas to apply it). */
  private lastWrite = 0;
  private readonly merger = new SortedMerge();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly store: ClusterStore,
    readonly name: string,
    private manifest: Manifest,
    private router: Router,
    private readonly timeoutMs: number,
    private readonly attemptMs: number,
  ) {}

  /** The published manifest and its zone tables' router (NOT_FOUND when the index is not published). */
  private static async versionOf(store: ClusterStore, name: string): Promise<{ manifest: Manifest; router: Router }> {
    const { manifest } = await store.manifest();
    const tables = decodeZoneTables(await store.object(manifest.zones), manifest, name);
    return { manifest, router: new Router(tables, manifest.dim, kernelMetric(manifest.metric)) };
  }

  /**
   * Read the manifest again and move to its version when it is newer than this client's (with its
   * zone tables and shards); returns whether it moved. Searches call it when no replica of a shard
   * of this client's version answers (the replicas of a new version replaced them).
   */
  async refresh(): Promise<boolean> {
    const { manifest } = await this.store.manifest();
    if (manifest.version <= this.manifest.version) return false;
    const next = await ZGQCluster.versionOf(this.store, this.name);
    if (next.manifest.dim !== this.manifest.dim || next.manifest.metric !== this.manifest.metric) {
      throw new ZGQError('CONFLICT', `cluster index '${this.name}' version ${next.manifest.version} has ${next.manifest.dim} dimensions (${next.manifest.metric}), this client's version ${this.manifest.version} ${this.manifest.dim} (${this.manifest.metric}): connect again`);
    }
    ({ manifest: this.manifest, router: this.router } = next);
    return true;
  }

  get dim(): number {
    return this.manifest.dim;
  }

  get metric(): Metric {
    return this.manifest.metric;
  }

  /** The index as published: version, shards and their zones. */
  get info(): ClusterInfo {
    const m = this.manifest;
    return {
      name: this.name, version: m.version, dim: m.dim, metric: m.metric, size: m.shards.reduce((n, s) => n + s.size, 0),
      shards: m.shards.map((s, shard) => ({ shard, size: s.size, zones: this.zonesOf(shard) })),
    };
  }

  /**
   * Connect to the NATS server(s) at `servers` and to the published index `name`: its manifest and
   * zone tables (no replica need be alive yet).
   * @throws ZGQError NOT_FOUND when no index of that name is published; IO when the NATS server
   * cannot be reached or has no JetStream.
   */
  static async connect(servers: string | string[], name: string, options: ClusterOptions = {}): Promise<ZGQCluster> {
    checkIndexName(name);
    const timeoutMs = options.timeoutMs ?? 5000;
    const attemptMs = options.attemptMs ?? Math.min(1000, timeoutMs);
    for (const [key, ms] of [['timeoutMs', timeoutMs], ['attemptMs', attemptMs]] as const) {
      if (!Number.isFinite(ms) || ms <= 0) throw new ZGQError('INVALID_ARGUMENT', `${key} must be a positive number of ms; got ${ms}`);
    }
    const nc = await connectTo(servers, `zgq client ${name}`, { timeoutMs });
    try {
      const store = await ClusterStore.open(nc, name, false);
      const { manifest, router } = await ZGQCluster.versionOf(store, name);
      return new ZGQCluster(nc, jetstream(nc, { timeout: timeoutMs }), store, name, manifest, router, timeoutMs, attemptMs);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  /** The published index, and what one live replica of each shard says (its vectors, version, last write applied). */
  async status(): Promise<ClusterStatus> {
    const info = this.info;
    const deadline = performance.now() + this.timeoutMs;
    const shards = await Promise.all(info.shards.map(async (s) => {
      try {
        const reply = await request(this.nc, this.name, subjectOf(this.name, info.version, s.shard, 'info'), new Uint8Array(0), undefined, deadline, this.attemptMs);
        const r = JSON.parse(new TextDecoder().decode(reply)) as { size: number; version: number; applied: number };
        return { ...s, replica: { size: r.size, version: r.version, applied: r.applied } };
      } catch (err) {
        return { ...s, replica: null, error: err instanceof Error ? err.message : String(err) };
      }
    }));
    return { ...info, shards };
  }

  /** The k nearest neighbours of one query (rows end early with NO_ID when fewer match). */
  async search(query: ArrayLike<number>, k: number, options: ClusterSearchOptions = {}): Promise<ClusterSearchResult> {
    const r = await this.searchBatch([query], k, options);
    return { ids: r.ids, distances: r.distances, missing: r.missing };
  }

  /**
   * The k nearest neighbours of each query; row q of the flat results is [q * k, (q + 1) * k). Each
   * shard gets the queries routed to it at once (several requests where they would pass the NATS
   * server's largest message), the shards in parallel, all within the deadline.
   * @throws ZGQError UNAVAILABLE naming the shard and its zones when a shard the queries need has no
   * live replica (unless `partial`), TIMEOUT, IO, INVALID_ARGUMENT / DIMENSION_MISMATCH for bad input.
   */
  async searchBatch(queries: Float32Array | ArrayLike<number>[], k: number, options: ClusterSearchOptions = {}): Promise<ClusterBatchResult> {
    if (!Number.isInteger(k) || k < 1) throw new ZGQError('INVALID_ARGUMENT', `k must be an integer >= 1; got ${k}`);
    const given = flatten(queries, this.dim);
    const { filter, partial, ...search } = options;
    const allow = filter === undefined ? null : idList(filter, 'filter');
    const work = (async () => {
      let result = await this.scatter(given, k, search, allow, partial === true);
      // a shard of this version that no replica serves any more: the index may have a newer version
      if ((result.gone || result.missing.length) && (await this.refresh().catch(() => false))) result = await this.scatter(given, k, search, allow, partial === true);
      if (result.gone) throw result.gone;
      return result;
    })();
    this.inFlight.add(work);
    try {
      const { gone: _, ...result } = await work;
      return result;
    } finally {
      this.inFlight.delete(work);
    }
  }

  /**
   * One search of the batch at this client's version; a shard without a live replica is `gone`
   * (its error) unless `partial`, which lists it in `missing` instead.
   */
  private async scatter(
    given: Float32Array, k: number, search: Omit<ClusterSearchOptions, 'filter' | 'partial'>, allow: Uint32Array | null, partial: boolean,
  ): Promise<ClusterBatchResult & { gone: unknown }> {
    const { dim, manifest } = this;
    const nq = given.length / dim;
    const ids = new Uint32Array(nq * k).fill(NO_ID);
    const distances = new Float32Array(nq * k).fill(Infinity);
    const incomplete = new Uint8Array(nq);
    const missing: MissingShard[] = [];
    let gone: unknown = null;
    if (allow && allow.length === 0) return { nq, ids, distances, missing, incomplete, gone };
    // checked as the index checks them (the defaults here stand in for the replicas' own)
    const { nProbe, traversal } = resolveSearch(search, { ef: 1, nProbe: manifest.nProbe, rerank: 1, scan: 0, scanRatio: 1, traversal: manifest.traversal });
    // routed as the index routes: unit-length queries under cosine (each shard normalizes its own)
    const flat = manifest.metric === 'cosine' ? normalizedCopy(given, dim, 'query') : given;
    const everywhere = allow !== null || scansEveryVector(traversal);
    const lists = this.router.routeBatch(flat, nq, nProbe, manifest.shards.length, everywhere);
    const h = headers();
    h.set('k', String(k));
    h.set('options', JSON.stringify(search));
    if (this.lastWrite) h.set(AFTER_SEQ, String(this.lastWrite));
    const per = searchChunk(maxPayload(this.nc), dim, k, allow?.length ?? 0);
    const deadline = performance.now() + this.timeoutMs;
    await Promise.all(lists.map(async (list, p) => {
      if (list.length === 0) return;
      const rows = list.length === nq ? flat : gatherRows(flat, dim, list);
      try {
        for (let from = 0; from < list.length; from += per) {
          const count = Math.min(per, list.length - from);
          const payload = encodeSearch(rows.subarray(from * dim, (from + count) * dim), allow);
          const reply = await request(this.nc, this.name, subjectOf(this.name, manifest.version, p, 'search'), payload, h, deadline, this.attemptMs);
          const got = decodeResults(reply, count * k);
          for (let r = 0; r < count; r++) this.merger.merge(ids, distances, list[from + r] * k, k, got.ids, got.distances, r * k);
        }
      } catch (err) {
        const lost = err instanceof ZGQError && (err.code === 'UNAVAILABLE' || err.code === 'TIMEOUT');
        if (!lost) throw err;
        if (partial) {
          missing.push({ shard: p, zones: this.zonesOf(p), error: err });
          for (const q of list) incomplete[q] = 1;
        } else {
          gone ??= this.shardError(p, err);
        }
      }
    }));
    missing.sort((a, b) => a.shard - b.shard);
    if (lists.filter((list) => list.length > 0).length > 1) dropRepeats(ids, distances, nq, k);
    return { nq, ids, distances, missing, incomplete, gone };
  }

  /**
   * Add vectors under caller ids (an id already in the index is replaced, whichever shard held it):
   * each goes to the shard owning the zone nearest to it. Resolves once the writes are stored in the
   * index's JetStream stream (durable there; every replica applies them in order), after which this
   * client's searches see them. An add larger than one NATS message goes as several, in order; if
   * one fails, the error says how many vectors before it are stored.
   */
  async add(vectors: Float32Array | ArrayLike<number>[], ids: Uint32Array | ArrayLike<number>): Promise<void> {
    const dim = this.dim;
    const { vectors: given, ids: newIds, count } = addedRows(vectors, ids, dim);
    if (count === 0) return;
    const per = addChunk(maxPayload(this.nc), dim);
    for (let from = 0; from < count; from += per) {
      const to = Math.min(count, from + per);
      await this.write('add', encodeAdd(newIds.subarray(from, to), given.subarray(from * dim, to * dim)), from, count, 'vectors');
    }
  }

  /** Remove vectors by caller id (ids not in the index are ignored). Resolves once stored in the stream, as add. */
  async remove(ids: Uint32Array | ArrayLike<number>): Promise<void> {
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') throw new ZGQError('INVALID_ARGUMENT', 'ids must be a Uint32Array or an array of integers');
    const list = idList(Array.from(ids), 'ids');
    const per = removeChunk(maxPayload(this.nc));
    for (let from = 0; from < list.length; from += per) await this.write('remove', encodeRemove(list.subarray(from, from + per)), from, list.length, 'ids');
  }

  /**
   * One write message (items [from, ...) of `total`), stored in the stream within the deadline; a
   * resend after a lost acknowledgement is dropped there as a duplicate (its message id).
   */
  private async write(op: 'add' | 'remove', data: Uint8Array, from: number, total: number, what: string): Promise<void> {
    const h = headers();
    h.set(OP, op);
    const work = this.js.publish(writesSubject(this.name), data, { headers: h, msgID: randomUUID(), timeout: this.timeoutMs / 3, retries: 2 });
    this.inFlight.add(work);
    try {
      const ack = await work;
      this.lastWrite = Math.max(this.lastWrite, ack.seq);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const before = from > 0 ? `; ${what} 0-${from - 1} of ${total} are stored` : '';
      if (/timeout|timed out/i.test(message)) {
        throw new ZGQError('TIMEOUT', `${op} on cluster index '${this.name}': no acknowledgement within ${this.timeoutMs} ms; it may or may not be stored (adding or removing it again is safe)${before}`, { cause: err });
      }
      const missing = /not enabled|no responders|stream not found/i.test(message);
      throw new ZGQError(
        missing ? 'UNAVAILABLE' : 'IO',
        `${op} on cluster index '${this.name}' was not stored${missing ? `: the stream ${streamOf(this.name)} does not answer (JetStream off, or the stream deleted)` : ''}: ${message}${before}`,
        { cause: err },
      );
    } finally {
      this.inFlight.delete(work);
    }
  }

  /** Shard p's zones, [start, end). */
  private zonesOf(p: number): [number, number] {
    const s = this.manifest.shards[p];
    return [s.zoneStart, s.zoneStart + s.zones];
  }

  /** A shard's failure, naming the shard and its zones. */
  private shardError(p: number, err: unknown): unknown {
    if (!(err instanceof ZGQError) || (err.code !== 'UNAVAILABLE' && err.code !== 'TIMEOUT')) return err;
    const [start, end] = this.zonesOf(p);
    const what = `shard ${p} of ${this.manifest.shards.length} (zones ${start}-${end - 1} of ${this.router.nZones})`;
    return new ZGQError(err.code, `${what}: ${err.message}; pass partial: true for the other shards' results`, { cause: err });
  }

  /** Disconnect once the requests in flight are answered (or have failed). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    await this.nc.drain();
  }
}

/**
 * Keep the nearest of an id's results in each row: while an add moves an id from one shard to
 * another, the replicas of the two may both hold it for a moment. The rest of the row moves up.
 * @internal
 */
export function dropRepeats(ids: Uint32Array, distances: Float32Array, nq: number, k: number): void {
  const seen = new Set<number>();
  for (let q = 0; q < nq; q++) {
    const at = q * k;
    seen.clear();
    let out = at;
    for (let i = at; i < at + k && ids[i] !== NO_ID; i++) {
      if (seen.has(ids[i])) continue;
      seen.add(ids[i]);
      ids[out] = ids[i];
      distances[out++] = distances[i];
    }
    for (; out < at + k && ids[out] !== NO_ID; out++) {
      ids[out] = NO_ID;
      distances[out] = Infinity;
    }
  }
}

/** Ids (a filter's, or to remove), each an integer in [0, NO_ID). */
function idList(values: Iterable<number>, what: string): Uint32Array {
  const ids = Array.from(values);
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= NO_ID) throw new ZGQError('INVALID_ARGUMENT', `${what}[${i}] is ${id}: ids are integers in [0, ${NO_ID})`);
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
  nc: NatsConnection, name: string, subject: string, data: Uint8Array, h: MsgHdrs | undefined, deadline: number, attemptMs: number,
): Promise<Uint8Array> {
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
    // a copy per send: requests to several shards share the caller's headers
    const sendHeaders = headers();
    if (h) for (const [key, values] of h) for (const value of values) sendHeaders.append(key, value);
    sendHeaders.set(BUDGET_MS, String(Math.max(1, Math.round(deadline - performance.now()))));
    nc.publish(subject, data, { reply: inbox, headers: sendHeaders });
    sends++;
  };
  try {
    send();
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw new ZGQError('TIMEOUT', `no reply on ${subject} by the deadline (${sends} sends)`);
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
