/**
 * A replica: one process's index answering a shard's requests over NATS (src/cluster/protocol.ts),
 * in the shard's queue group, so that each request reaches one live replica.
 */
import { connect, headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { ZGQError } from '../errors.js';
import type { ZGQIndex } from '../index.js';
import type { SearchOptions } from '../options.js';
import { BUDGET_MS, ERROR_CODE, ERROR_MESSAGE, REPLICA_FAILED, REQUEST_OPTIONS, checkIndexName, decodeSearch, encodeResults, queueOf, replyBytes, subjectOf } from './protocol.js';

export interface ReplicaOptions {
  /** NATS server URL(s), e.g. 'nats://127.0.0.1:4222'. */
  servers: string | string[];
  /** The index's name in the cluster (one subject token). */
  name: string;
}

function searchOptionsOf(json: string | undefined): SearchOptions {
  if (!json) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ZGQError('INVALID_ARGUMENT', `search options header is not JSON: ${json.slice(0, 80)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ZGQError('INVALID_ARGUMENT', 'search options header must be a JSON object');
  const unknown = Object.keys(parsed).filter((key) => !(REQUEST_OPTIONS as readonly string[]).includes(key));
  if (unknown.length) throw new ZGQError('INVALID_ARGUMENT', `unknown search options ${unknown.join(', ')} (known: ${REQUEST_OPTIONS.join(', ')})`);
  return parsed as SearchOptions;
}

/**
 * A running replica. Its requests run one at a time, in arrival order; one whose budget ran out
 * while it waited is skipped. `close()` stops taking requests, answers those it holds, and
 * disconnects.
 */
export class Replica {
  /** Requests taken and not yet answered. */
  private readonly inFlight = new Set<Promise<void>>();
  private queue: Promise<void> = Promise.resolve();
  private subs: Subscription[] = [];

  private constructor(
    private readonly nc: NatsConnection,
    private readonly index: ZGQIndex,
  ) {}

  /** Serve `index` as `options.name` on the NATS server(s) given. */
  static async start(index: ZGQIndex, options: ReplicaOptions): Promise<Replica> {
    const name = checkIndexName(options.name);
    const shard = 0;
    const nc = await connect({ servers: options.servers, name: `zgq replica ${name}`, maxReconnectAttempts: -1 });
    const replica = new Replica(nc, index);
    const queue = queueOf(name, shard);
    replica.subs = [
      nc.subscribe(subjectOf(name, shard, 'info'), { queue, callback: (_err, msg) => replica.take(msg, () => replica.info(shard)) }),
      nc.subscribe(subjectOf(name, shard, 'search'), { queue, callback: (_err, msg) => replica.take(msg, () => replica.search(msg)) }),
    ];
    await nc.flush();
    return replica;
  }

  private async info(shard: number): Promise<Uint8Array> {
    const { index } = this;
    return new TextEncoder().encode(JSON.stringify({ dim: index.dim, metric: index.options.metric, size: index.size, shard }));
  }

  private async search(msg: Msg): Promise<Uint8Array> {
    const { index } = this;
    // a header that is absent reads as ''
    const k = Number(msg.headers?.get('k') || 10);
    if (!Number.isInteger(k) || k < 1) throw new ZGQError('INVALID_ARGUMENT', `k must be an integer >= 1; got ${msg.headers?.get('k')}`);
    const options = searchOptionsOf(msg.headers?.get('options'));
    const { filter, queries, nq } = decodeSearch(msg.data, index.dim);
    const max = this.nc.info?.max_payload ?? 1 << 20;
    if (replyBytes(nq, k) > max) {
      throw new ZGQError('INVALID_ARGUMENT', `the reply to ${nq} queries with k = ${k} would be ${replyBytes(nq, k)} bytes, over the NATS server's max_payload of ${max}: send fewer queries per request`);
    }
    const r = await index.searchBatch(queries, k, { ...options, filter: filter ?? undefined });
    return encodeResults(r.ids, r.distances);
  }

  /** Queue one request; answer it with `work`'s payload or its error, unless its budget ran out first. */
  private take(msg: Msg, work: () => Promise<Uint8Array>): void {
    const received = performance.now();
    const budget = Number(msg.headers?.get(BUDGET_MS) || Infinity);
    const done = (this.queue = this.queue.then(async () => {
      if (performance.now() - received > budget) return;
      let data: Uint8Array;
      let h: MsgHdrs | undefined;
      try {
        data = await work();
      } catch (err) {
        h = headers();
        h.set(ERROR_CODE, err instanceof ZGQError ? err.code : REPLICA_FAILED);
        h.set(ERROR_MESSAGE, (err instanceof Error ? err.message : String(err)).replace(/[\r\n]+/g, ' '));
        data = new Uint8Array(0);
      }
      try {
        msg.respond(data, { headers: h });
      } catch {
        // the connection closed, or the reply would not fit: the client's deadline answers for it
      }
    }));
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  async close(): Promise<void> {
    for (const sub of this.subs) sub.unsubscribe();
    await Promise.allSettled([...this.inFlight]);
    await this.nc.drain();
  }
}
