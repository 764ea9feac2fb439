'use strict';
// Node's side of the differential fuzzer (tests/test_fuzz_differential.py).
//
// Usage: node fuzz_server.js '<json>'
//
// The JSON object may set headersTimeout, requestTimeout (milliseconds, set as
// properties on the server) and connectionsCheckingInterval (a createServer()
// option: how often Node looks for expired requests; its default, 30 s, would
// make the timeouts useless for a test).
//
// Two servers listen on 127.0.0.1:
//   * the fuzzed server: Node's own http server with Node's default handling of
//     bad input (no 'clientError' listener). Its handler reads the whole body
//     and answers 200 with JSON: method, url, httpVersion, rawHeaders and
//     rawTrailers (as [name, value] pairs) and the body (latin-1).
//   * a control server: `GET /?port=N` answers, as JSON, what the fuzzed server
//     logged for the connection whose client port is N, and forgets it:
//       requests - the echo of every request whose body the handler read to the
//                  end, in order, answered or not (Node may lose an answer when
//                  it destroys the socket for a later parse error);
//       codes    - the codes of the errors Node passed to 'clientError' (e.g.
//                  HPE_INVALID_CHUNK_SIZE, HPE_INVALID_EOF_STATE).
//
// The codes are taken by wrapping server.emit rather than by listening for
// 'clientError': with no listener emit() returns false, so Node still writes
// its own canned answer (400, 408, 413 or 431) and destroys the socket.
//
// Once listening it prints one line, {"port": N, "control": M}, to stdout, and
// it exits when its stdin is closed.

const http = require('http');

const config = JSON.parse(process.argv[2] || '{}');

function pairs(flat) {
  const out = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}

const logs = new Map(); // client port -> {requests: [...], codes: [...]}
function logOf(socket) {
  const port = socket.fuzzPort;
  if (!logs.has(port)) logs.set(port, { requests: [], codes: [] });
  return logs.get(port);
}

function echo(req, res) {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const echoed = {
      method: req.method,
      url: req.url,
      httpVersion: req.httpVersion,
      rawHeaders: pairs(req.rawHeaders),
      rawTrailers: pairs(req.rawTrailers),
      body: Buffer.concat(chunks).toString('latin1'),
    };
    logOf(req.socket).requests.push(echoed);
    res.setHeader('Content-Type', 'application/json');
    res.statusCode = 200;
    res.end(JSON.stringify(echoed));
  });
}

const server = http.createServer(
  { connectionsCheckingInterval: config.connectionsCheckingInterval || 100 },
  echo,
);
for (const key of ['headersTimeout', 'requestTimeout']) {
  if (key in config) server[key] = config[key];
}

server.on('connection', (socket) => {
  socket.fuzzPort = socket.remotePort; // kept: remotePort is gone once destroyed
});
const emit = server.emit;
server.emit = function (event, ...args) {
  if (event === 'clientError') {
    const [error, socket] = args;
    logOf(socket).codes.push(String(error.code || error.message));
  }
  return emit.call(this, event, ...args);
};

const control = http.createServer((req, res) => {
  const port = Number(new URL(req.url, 'http://control').searchParams.get('port'));
  const log = logs.get(port) || { requests: [], codes: [] };
  logs.delete(port);
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(log));
});

server.listen(0, '127.0.0.1', () => {
  control.listen(0, '127.0.0.1', () => {
    const ports = { port: server.address().port, control: control.address().port };
    process.stdout.write(JSON.stringify(ports) + '\n');
  });
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
