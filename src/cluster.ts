/**
 * The `zgq/cluster` entry (Node): an index served by replicas over NATS, and the client that
 * searches it. Needs the optional peer dependency `@nats-io/transport-node`.
 */
export { ZGQCluster, type ClusterBatchResult, type ClusterOptions, type ClusterSearchOptions, type ClusterSearchResult } from './cluster/client.js';
export { Replica, type ReplicaOptions } from './cluster/replica.js';
