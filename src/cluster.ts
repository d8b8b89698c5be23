/**
 * The `zgq/cluster` entry (Node): an index published to NATS JetStream, served by replicas, and the
 * client that searches and changes it. Needs the optional peer dependencies @nats-io/transport-node,
 * @nats-io/jetstream, @nats-io/kv and @nats-io/obj.
 */
import type { ZGQIndex } from './index.js';
import { type Manifest, publishIndex, type PublishOptions } from './cluster/manifest.js';
import { connectTo } from './cluster/protocol.js';

export {
  ZGQCluster, type ClusterBatchResult, type ClusterInfo, type ClusterOptions, type ClusterSearchOptions, type ClusterSearchResult, type ClusterStatus, type MissingShard,
} from './cluster/client.js';
export { Replica, type ReplicaOptions } from './cluster/replica.js';
export { FollowingReplica } from './cluster/follow.js';
export type { Manifest, PublishOptions, ShardEntry } from './cluster/manifest.js';

/**
 * Publish `index` on the NATS server(s) at `servers` as the cluster index `name`: each shard's file
 * and the zone tables in JetStream's object store, then the manifest naming them, as a new version.
 * Replicas started after it serve it (`zgq serve --nats`); writes made through the cluster before it
 * are not in it.
 * @throws ZGQError CONFLICT when another publish of `name` landed meanwhile; IO.
 */
export async function publish(servers: string | string[], index: ZGQIndex, name: string, options: PublishOptions = {}): Promise<Manifest> {
  const nc = await connectTo(servers, `zgq publish ${name}`, { once: true });
  try {
    return await publishIndex(nc, index, name, options);
  } finally {
    await nc.close();
  }
}
