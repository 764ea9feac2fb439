'use strict';
// Reference ("oracle") HTTP server built on Node's own `http` module.
//
// Tests start this script, read the port it prints, send raw bytes to it and
// compare Node's answers with ours.
//
// Usage: node echo_server.js '<json>'
//
// The JSON object holds the options for http.createServer(options, handler)
// (e.g. maxHeaderSize, insecureHTTPParser, connectionsCheckingInterval), plus
// these extra keys, which are removed from the options before the call:
//   keepAliveTimeout, headersTimeout, requestTimeout, maxRequestsPerSocket,
//   timeout             - set as properties on the server object
//   respond             - which behaviour the handler has:
//       "echo"    (default) read the whole body, answer 200 with a JSON
//                 description of the request (see echo() below)
//       "status"  read the whole body, then res.writeHead(status); res.end()
//       "te304"   like "status" but the handler also sets
//                 `Transfer-Encoding: chunked` before writeHead(status)
//   status              - status code for "status" / "te304" (default 200)
//
// Once listening it prints exactly one line, {"port": N}, to stdout.
// It exits when its stdin is closed, so a test stops it by closing stdin.
// No 'clientError' listener is added: Node's default behaviour is what we
// want to observe.

const http = require('http');

const config = JSON.parse(process.argv[2] || '{}');

// Keys that are not createServer() options.
const SERVER_PROPS = ['keepAliveTimeout', 'headersTimeout', 'requestTimeout',
  'maxRequestsPerSocket', 'timeout'];
const EXTRA_KEYS = SERVER_PROPS.concat(['respond', 'status']);

const options = {};
for (const [key, value] of Object.entries(config)) {
  if (!EXTRA_KEYS.includes(key)) options[key] = value;
}
const respond = config.respond || 'echo';
const status = config.status || 200;

// Collect the whole request body, then call done(bodyBuffer).
function readBody(req, done) {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => done(Buffer.concat(chunks)));
}

function echo(req, res) {
  readBody(req, (body) => {
    const json = JSON.stringify({
      method: req.method,
      url: req.url,
      httpVersion: req.httpVersion,
      rawHeaders: req.rawHeaders,
      headers: req.headers,
      body: body.toString('latin1'),
      remotePort: req.socket.remotePort,
      trailers: req.trailers,
      rawTrailers: req.rawTrailers,
    });
    res.setHeader('Content-Type', 'application/json');
    res.statusCode = 200;
    res.end(json);
  });
}

function statusOnly(req, res) {
  readBody(req, () => {
    res.writeHead(status);
    res.end();
  });
}

function te304(req, res) {
  readBody(req, () => {
    res.setHeader('Transfer-Encoding', 'chunked');
    res.writeHead(status);
    res.end();
  });
}

const handlers = { echo, status: statusOnly, te304 };
const handler = handlers[respond];
if (!handler) {
  console.error(`unknown respond mode: ${respond}`);
  process.exit(2);
}

const server = http.createServer(options, handler);
for (const key of SERVER_PROPS) {
  if (key in config) server[key] = config[key];
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`{"port": ${server.address().port}}\n`);
});

// Exit when the controlling test closes our stdin.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
