// Node's own http client as a peer: N GETs through one keep-alive Agent.
// Usage: node keepalive_client.js PORT COUNT MAX_SOCKETS
// Prints one JSON line: {"statuses": [...], "bodies": [...], "reused": n}
'use strict';
const http = require('http');

const [port, count, maxSockets] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets });
const statuses = [];
const bodies = [];
let reused = 0;
let done = 0;

for (let i = 0; i < count; i++) {
  const req = http.get({ host: '127.0.0.1', port, path: `/${i}`, agent }, (res) => {
    const chunks = [];
    res.on('data', (chunk) => chunks.push(chunk));
    res.on('end', () => {
      statuses[i] = res.statusCode;
      bodies[i] = Buffer.concat(chunks).toString('latin1');
      if (req.reusedSocket) reused++;
      if (++done === count) {
        agent.destroy();
        console.log(JSON.stringify({ statuses, bodies, reused }));
      }
    });
  });
  req.on('error', (err) => {
    console.error(err);
    process.exit(1);
  });
}
