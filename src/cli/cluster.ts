/**
 * `zgq cluster`: publish an index file to a NATS server's JetStream for `zgq serve --nats` replicas,
 * and show what is published and which shards answer.
 */
import { Command } from 'commander';
import { ZGQError, ZGQIndex } from '../index.js';
import { fractionProgress } from './progress.js';

/** The cluster modules, or UNSUPPORTED_PLATFORM naming the missing package. */
export async function clusterModules(what: string): Promise<typeof import('../cluster.js')> {
  return import('../cluster.js').catch((err: unknown) => {
    throw new ZGQError(
      'UNSUPPORTED_PLATFORM',
      `${what} needs the packages @nats-io/transport-node, @nats-io/jetstream, @nats-io/kv and @nats-io/obj (npm install them): ${err instanceof Error ? err.message : String(err)}`,
    );
  });
}

export function registerClusterCommands(program: Command): void {
  const cluster = program.command('cluster').description('publish an index to NATS JetStream for `zgq serve --nats` replicas, and inspect it');

  cluster
    .command('publish')
    .description("store an index file's shards and zone tables in JetStream as a new version of --name")
    .argument('<index>', 'index file (zgq build --shards N splits one into N shards)')
    .requiredOption('--nats <url>', 'NATS server with JetStream (nats-server -js)')
    .requiredOption('--name <index>', "the index's name in the cluster")
    .action(async (path: string, o) => {
      const { publish } = await clusterModules('zgq cluster publish');
      const index = await ZGQIndex.load(path);
      const progress = fractionProgress('publish');
      try {
        const m = await publish(o.nats, index, o.name, { onProgress: progress.onProgress });
        progress.stop();
        const vectors = m.shards.reduce((n, s) => n + s.size, 0);
        const bytes = m.shards.reduce((n, s) => n + s.bytes, 0);
        process.stderr.write(`published ${path} as '${o.name}' version ${m.version}: ${vectors} vectors in ${m.shards.length} shards, ${(bytes / 2 ** 20).toFixed(1)} MiB\n`);
      } finally {
        progress.stop();
        index.close();
      }
    });

  cluster
    .command('info')
    .description('the published version of --name, its shards, and whether each has a live replica (JSON)')
    .requiredOption('--nats <url>', 'NATS server')
    .requiredOption('--name <index>', "the index's name in the cluster")
    .action(async (o) => {
      const { ZGQCluster } = await clusterModules('zgq cluster info');
      const client = await ZGQCluster.connect(o.nats, o.name, { timeoutMs: 2000 });
      try {
        process.stdout.write(`${JSON.stringify(await client.status(), null, 2)}\n`);
      } finally {
        await client.close();
      }
    });
}
