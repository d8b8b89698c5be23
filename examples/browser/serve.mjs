// npm run demo:browser: serves this demo and the package's browser entry on 127.0.0.1 with the
// COOP / COEP headers that let ZGQ use Web Workers, and prints the URL. PORT sets the port.
import { fileURLToPath } from 'node:url';
import { startServer } from '../../scripts/browser-harness.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const server = await startServer({
  mounts: { '/': `${root}examples/browser`, '/zgq/': `${root}dist/browser` },
  port: Number(process.env.PORT ?? 0),
});
console.log(`ZGQ browser demo: ${server.url}/`);
console.log(`(without COOP/COEP, one thread: ${server.url}/?coi=0 ; Ctrl-C stops the server)`);
