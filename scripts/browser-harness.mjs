// Shared by the browser tests, bench/browser.ts and the demo server: a static server on 127.0.0.1
// with the headers that make a page cross-origin isolated, and headless Chromium (the system's,
// driven by playwright-core) that opens a page and collects what it reports.
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
};

/**
 * Serve `mounts` (URL prefix -> directory; '/' -> index.html) and `files` (URL path -> bytes or
 * string) on 127.0.0.1, port 0 unless given. Every response carries COOP same-origin + COEP
 * require-corp (so pages are cross-origin isolated and Web Workers can share a WebAssembly.Memory),
 * except requests whose query has `coi=0`. `POST /upload/<name>` stores the body in `uploads`;
 * `requests` lists every request as "STATUS METHOD PATH".
 * @param {{ mounts?: Record<string, string>, files?: Record<string, Uint8Array | string>, port?: number }} options
 */
export async function startServer({ mounts = {}, files = {}, port = 0 } = {}) {
  const uploads = new Map();
  const requests = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headers = { 'cache-control': 'no-store' };
    if (url.searchParams.get('coi') !== '0') {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    const send = (status, body, type) => {
      requests.push(`${status} ${req.method} ${url.pathname}`);
      if (status >= 400) process.stderr.write(`browser-harness: HTTP ${status} ${req.method} ${url.pathname}\n`);
      res.writeHead(status, { ...headers, 'content-type': type });
      res.end(body);
    };
    try {
      if (req.method === 'POST' && url.pathname.startsWith('/upload/')) {
        const chunks = [];
        for await (const c of req) chunks.push(c);
        uploads.set(url.pathname.slice('/upload/'.length), new Uint8Array(Buffer.concat(chunks)));
        return send(200, 'ok', 'text/plain');
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed', 'text/plain');
      if (url.pathname in files) {
        const body = files[url.pathname];
        return send(200, body, TYPES[extname(url.pathname)] ?? 'application/octet-stream');
      }
      // longest matching prefix first, so '/zgq/' wins over '/'
      const prefix = Object.keys(mounts).filter((p) => url.pathname.startsWith(p)).sort((a, b) => b.length - a.length)[0];
      if (prefix === undefined) return send(404, 'not found', 'text/plain');
      const dir = mounts[prefix];
      let path = normalize(join(dir, decodeURIComponent(url.pathname.slice(prefix.length))));
      if (path !== dir && !path.startsWith(dir.endsWith(sep) ? dir : dir + sep)) return send(403, 'forbidden', 'text/plain');
      if ((await stat(path).catch(() => null))?.isDirectory()) path = join(path, 'index.html');
      const body = await readFile(path).catch(() => null);
      if (body === null) return send(404, 'not found', 'text/plain');
      return send(200, body, TYPES[extname(path)] ?? 'application/octet-stream');
    } catch (e) {
      return send(500, String(e), 'text/plain');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address();
  return {
    url: `http://127.0.0.1:${address.port}`,
    uploads,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}

/** Where Debian's chromium package puts the browser; $ZGQ_CHROMIUM overrides. */
export const CHROMIUM_PATHS = ['/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** Path of a Chromium executable, or null with the reason in `why`. */
export function findChromium() {
  const env = process.env.ZGQ_CHROMIUM;
  if (env) return existsSync(env) ? { path: env } : { path: null, why: `ZGQ_CHROMIUM=${env} does not exist` };
  const path = CHROMIUM_PATHS.find((p) => existsSync(p));
  return path
    ? { path }
    : {
        path: null,
        why: `no Chromium at ${CHROMIUM_PATHS.join(', ')} (install it with: apt-get install -y --no-install-recommends chromium, or set ZGQ_CHROMIUM)`,
      };
}

/** Launch headless Chromium (no sandbox: tests run as root in containers). */
export async function launchChromium(executablePath) {
  const { chromium } = await import('playwright-core');
  // WebGPU is behind a flag in headless Chromium on Linux: there it runs on SwiftShader (no GPU speed)
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--enable-unsafe-webgpu'] });
}

/**
 * Open `url` in a fresh page, wait until the page sets `window.__done`, and return what
 * `window.__results` resolves to, with every uncaught page error and console error seen meanwhile;
 * either stops the wait at once and fails, except console errors matching `allowConsoleError`.
 * @returns {Promise<{ results: any, pageErrors: string[], consoleErrors: string[], log: string[] }>}
 */
export async function runPage(browser, url, { timeoutMs = 300_000, allowConsoleError = null } = {}) {
  const page = await browser.newPage();
  const pageErrors = [];
  const consoleErrors = [];
  const log = [];
  // an uncaught error or a failed load stops the wait at once instead of at the timeout
  let stop = () => {};
  const stopped = new Promise((_, reject) => {
    stop = (what) => reject(new Error(`${url}: ${what}\n${log.join('\n')}`));
  });
  stopped.catch(() => undefined);
  page.on('pageerror', (e) => {
    pageErrors.push(String(e?.stack ?? e));
    stop(`uncaught page error: ${e?.stack ?? e}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) log.push(`HTTP ${r.status()} ${r.url()}`);
  });
  page.on('console', (m) => {
    log.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error' && !allowConsoleError?.test(m.text())) {
      consoleErrors.push(m.text());
      stop(`console error: ${m.text()}`);
    }
  });
  try {
    await page.goto(url);
    await Promise.race([
      page.waitForFunction(() => globalThis.__done === true, undefined, { timeout: timeoutMs, polling: 100 }),
      stopped,
    ]);
    const results = await page.evaluate(() => globalThis.__results);
    return { results, pageErrors, consoleErrors, log };
  } finally {
    await page.close();
  }
}
