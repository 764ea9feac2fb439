'use strict';
// A Node http server for the client and Agent tests: each response tells which
// connection served it, and the server keeps books of the connections it accepted.
//
// Usage: node client_pool_server.js '<json>'
//
// The JSON object may hold keepAliveTimeout, headersTimeout, requestTimeout and
// maxRequestsPerSocket (milliseconds / counts, set as server properties).
//
// Routes (any method; the request body is always read first):
//   /            200, JSON {remotePort, method, url, headers, rawHeaders, body, trailers}
//   /slow?ms=N   the same JSON, sent after N ms
//   /close       the same JSON with `Connection: close`
//   /ka?timeout=N  the same JSON with `Connection: keep-alive` and `Keep-Alive: timeout=N`
//   /ka          the same JSON with `Connection: keep-alive` and no Keep-Alive hint at all
//                (Node sends no hint of its own when the handler sets Connection)
//   /chunked     chunked body "ab", "cd", "ef" and the trailer `X-Checksum: abcdef`
//   /info        102 Processing, 103 Early Hints (Link), then 200 "done"
//   /big?mb=N    N MiB of b'x' in 64 KiB writes, honouring backpressure
//   /head        200 with Content-Length 5 ("hello" for methods other than HEAD)
//   /status?code=N  an empty response with status N
//   /stats       JSON {accepted, maxConcurrent, open}: the connections this server
//                accepted, the most of them open at once, and the ones open now.
//                A connection whose first request is /stats is left out of all three.
//   /stats?reset=1  the same, then the books start afresh (open connections stay counted
//                as open from now on)
//
// Once listening it prints exactly one line, {"port": N}, to stdout.
// It exits when its stdin is closed.

const http = require('http');
const { URL } = require('url');

const config = JSON.parse(process.argv[2] || '{}');

// Books: one record per connection, with the sequence numbers of its open and close.
let seq = 0;
let records = [];

function stats() {
  const counted = records.filter((r) => !r.control);
  const events = [];
  for (const r of counted) {
    events.push([r.opened, 1]);
    if (r.closed !== null) events.push([r.closed, -1]);
  }
  events.sort((a, b) => a[0] - b[0]);
  let now = 0;
  let max = 0;
  for (const [, delta] of events) {
    now += delta;
    if (now > max) max = now;
  }
  return {
    accepted: counted.length,
    maxConcurrent: max,
    open: counted.filter((r) => r.closed === null).length,
  };
}

function readBody(req, done) {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => done(Buffer.concat(chunks)));
}

function describe(req, body) {
  return JSON.stringify({
    remotePort: req.socket.remotePort,
    method: req.method,
    url: req.url,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    body: body.toString('latin1'),
    trailers: req.trailers,
  });
}

function sendJson(res, text, extra) {
  res.setHeader('Content-Type', 'application/json');
  for (const [name, value] of Object.entries(extra || {})) res.setHeader(name, value);
  res.end(text);
}

function streamBig(res, total) {
  const chunk = Buffer.alloc(65536, 'x');
  let sent = 0;
  res.setHeader('Content-Length', String(total));
  function pump() {
    while (sent < total) {
      const piece = total - sent >= chunk.length ? chunk : chunk.subarray(0, total - sent);
      sent += piece.length;
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  }
  pump();
}

function handler(req, res) {
  const url = new URL(req.url, 'http://x');
  const record = req.socket._record;
  if (record && record.requests === 0 && url.pathname === '/stats') record.control = true;
  if (record) record.requests += 1;
  readBody(req, (body) => {
    const text = describe(req, body);
    switch (url.pathname) {
      case '/stats': {
        const result = stats();
        if (url.searchParams.get('reset')) {
          records = records.filter((r) => r.closed === null);
          for (const r of records) r.opened = seq++;
        }
        sendJson(res, JSON.stringify(result));
        break;
      }
      case '/slow':
        setTimeout(() => sendJson(res, text), Number(url.searchParams.get('ms') || 0));
        break;
      case '/close':
        sendJson(res, text, { Connection: 'close' });
        break;
      case '/ka': {
        // An explicit Connection header stops Node's own Keep-Alive hint.
        const extra = { Connection: 'keep-alive' };
        if (url.searchParams.has('timeout')) {
          extra['Keep-Alive'] = `timeout=${url.searchParams.get('timeout')}`;
        }
        sendJson(res, text, extra);
        break;
      }
      case '/chunked':
        res.setHeader('Trailer', 'X-Checksum');
        res.write('ab');
        res.write('cd');
        res.write('ef');
        res.addTrailers({ 'X-Checksum': 'abcdef' });
        res.end();
        break;
      case '/info':
        res.writeProcessing();
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' }, () => {
          res.end('done');
        });
        break;
      case '/big':
        streamBig(res, Number(url.searchParams.get('mb') || 1) * 1024 * 1024);
        break;
      case '/head':
        res.setHeader('Content-Length', '5');
        res.end(req.method === 'HEAD' ? undefined : 'hello');
        break;
      case '/status':
        res.statusCode = Number(url.searchParams.get('code'));
        res.end();
        break;
      default:
        sendJson(res, text);
    }
  });
}

const server = http.createServer(handler);
for (const key of ['keepAliveTimeout', 'headersTimeout', 'requestTimeout',
  'maxRequestsPerSocket']) {
  if (key in config) server[key] = config[key];
}

server.on('connection', (socket) => {
  const record = { opened: seq++, closed: null, control: false, requests: 0 };
  socket._record = record;
  records.push(record);
  socket.on('close', () => {
    record.closed = seq++;
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`{"port": ${server.address().port}}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
