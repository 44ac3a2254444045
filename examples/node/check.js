// Runs requests against app.js on a loopback port, for the Go test
// (examples/examples_test.go) and for trying tokens by hand.
//
// stdin:  {"issuer": "...", "cases": [{"name": "...", "audience": "...", "path": "/me", "token": "..."}]}
// stdout: {"results": [{"name": "...", "status": 200, "www_authenticate": "...", "body": {...}}]}
//
// A case without a token sends no Authorization header.
import { once } from 'node:events';
import { text } from 'node:stream/consumers';

import { createApp } from './app.js';

const request = JSON.parse(await text(process.stdin));
const servers = new Map(); // audience → listening server
const results = [];
try {
  for (const c of request.cases) {
    if (!servers.has(c.audience)) {
      const server = createApp({ issuer: request.issuer, audience: c.audience }).listen(0, '127.0.0.1');
      await once(server, 'listening');
      servers.set(c.audience, server);
    }
    const { port } = servers.get(c.audience).address();
    const response = await fetch(`http://127.0.0.1:${port}${c.path}`, {
      headers: c.token ? { Authorization: `Bearer ${c.token}` } : {},
    });
    results.push({
      name: c.name,
      status: response.status,
      www_authenticate: response.headers.get('www-authenticate') ?? '',
      body: await response.json(),
    });
  }
} finally {
  for (const server of servers.values()) server.close();
}
process.stdout.write(JSON.stringify({ results }));
