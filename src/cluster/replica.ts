/**
 * A replica: one process's index answering a shard's requests over NATS (src/cluster/protocol.ts),
 * in the shard's queue group, so that each request reaches one live replica.
 */
import { connect, headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { ZGQError } from '../errors.js';
import type { ZGQIndex } from '../index.js';
import type { SearchOptions } from '../options.js';
import { ERROR_CODE, ERROR_MESSAGE, checkIndexName, decodeSearch, encodeResults, queueOf, subjectOf } from './protocol.js';

export interface ReplicaOptions {
  /** NATS server URL(s), e.g. 'nats://127.0.0.1:4222'. */
  servers: string | string[];
  /** The index's name in the cluster (one subject token). */
  name: string;
  /** The shard this replica serves. Default 0 (an index of one shard). */
  shard?: number;
}

/** Search options a request may carry (the rest of SearchOptions is the replica's own). */
const REQUEST_OPTIONS = ['ef', 'nProbe', 'rerank', 'scan', 'scanRatio', 'traversal'] as const;

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

/** A running replica: `close()` drains its subscriptions (requests in flight are answered) and disconnects. */
export class Replica {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly subs: Subscription[],
  ) {}

  /** Serve `index` as `options.shard` of `options.name` on the NATS server(s) given. */
  static async start(index: ZGQIndex, options: ReplicaOptions): Promise<Replica> {
    const name = checkIndexName(options.name);
    const shard = options.shard ?? 0;
    const nc = await connect({ servers: options.servers, name: `zgq replica ${name}.s${shard}`, maxReconnectAttempts: -1 });
    const queue = queueOf(name, shard);
    const answer = (msg: Msg, work: () => Promise<{ data: Uint8Array }>) => {
      work().then(
        ({ data }) => msg.respond(data),
        (err: unknown) => {
          const h = headers();
          h.set(ERROR_CODE, err instanceof ZGQError ? err.code : 'INTERNAL');
          h.set(ERROR_MESSAGE, (err instanceof Error ? err.message : String(err)).replace(/[\r\n]+/g, ' '));
          msg.respond(new Uint8Array(0), { headers: h });
        },
      );
    };
    const info = nc.subscribe(subjectOf(name, shard, 'info'), {
      queue,
      callback: (_err, msg) =>
        answer(msg, async () => ({
          data: new TextEncoder().encode(JSON.stringify({ dim: index.dim, metric: index.options.metric, size: index.size, shard })),
        })),
    });
    const search = nc.subscribe(subjectOf(name, shard, 'search'), {
      queue,
      callback: (_err, msg) =>
        answer(msg, async () => {
          const k = Number(msg.headers?.get('k') ?? 10);
          if (!Number.isInteger(k) || k < 1) throw new ZGQError('INVALID_ARGUMENT', `k must be an integer >= 1; got ${msg.headers?.get('k')}`);
          const options = searchOptionsOf(msg.headers?.get('options'));
          const { filter, queries } = decodeSearch(msg.data, index.dim);
          const r = await index.searchBatch(queries, k, { ...options, filter: filter ?? undefined });
          return { data: encodeResults(r.ids, r.distances) };
        }),
    });
    await nc.flush();
    return new Replica(nc, [info, search]);
  }

  async close(): Promise<void> {
    await Promise.all(this.subs.map((s) => s.drain()));
    await this.nc.drain();
  }
}
