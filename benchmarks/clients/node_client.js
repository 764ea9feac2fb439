// Node's own http client with a keep-alive Agent: the same two loads.
// Usage: node node_client.js PORT MODE COUNT; prints {"seconds", "requests"}.
'use strict';
const http = require('node:http');

const [port, mode, count] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const CONCURRENCY = 200;
const POOL = 10;
const agent = new http.Agent({ keepAlive: true, maxSockets: mode === 'sequential' ? 1 : POOL });

function one() {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.on('data', () => {});
      res.on('end', resolve);
    }).on('error', reject);
  });
}

async function load(n) {
  if (mode === 'sequential') {
    for (let i = 0; i < n; i++) await one();
    return;
  }
  const workers = [];
  for (let w = 0; w < CONCURRENCY; w++) {
    const share = Math.floor(n / CONCURRENCY) + (w < n % CONCURRENCY ? 1 : 0);
    workers.push((async () => { for (let i = 0; i < share; i++) await one(); })());
  }
  await Promise.all(workers);
}

(async () => {
  await load(100);
  const start = process.hrtime.bigint();
  await load(count);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({ seconds, requests: count }));
  agent.destroy();
})();
