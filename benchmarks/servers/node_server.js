// Node's own http server, answering like the other benchmark servers.
// Usage: node node_server.js [PORT [KEEP_ALIVE_SECONDS]]; prints "LISTENING <port>".
'use strict';
const http = require('node:http');

const HELLO = Buffer.from('hello world');
const BIG = Buffer.alloc(1024 * 1024, 'x');

const server = http.createServer((req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end(req.url === '/big' ? BIG : HELLO);
});
server.keepAliveTimeout = Number(process.argv[3] ?? 5) * 1000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(`LISTENING ${server.address().port}`);
});
