'use strict';
// What Node's own http module makes of llhttp's test corpus: the cross-check behind
// tests/test_llhttp_corpus.py (whose expectations come from llhttp 9.3.1's logs, which
// is the llhttp inside Node 20; another Node may differ).
//
// Usage: node llhttp_oracle.js < cases.json > observations.json
//
// stdin holds a JSON list of cases, each {id, kind, data, eof, method}: kind is
// "request" (data, base64, goes raw to a Node http server) or "response" (data is played
// by a raw TCP server to a Node http client whose request uses `method`); with eof the
// raw side ends its half of the connection after the data. stdout gets one JSON object
// mapping each id to what Node did (see observeRequest and observeResponse).
//
// Everything runs at once, on 127.0.0.1 only. The timeouts are shortened (headersTimeout
// 1 s, requestTimeout 2 s, keepAliveTimeout 0.5 s) so that a case whose bytes leave a
// message unfinished shows what Node does then; each case is watched for SETTLE_MS.

const http = require('http');
const net = require('net');

const SETTLE_MS = 3500;

function pairs(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

function b64(buffer) {
  return Buffer.from(buffer).toString('base64');
}

function observeRequest(testCase) {
  return new Promise((resolve) => {
    const started = Date.now();
    const seen = [];
    const clientErrors = [];
    const server = http.createServer({
      requireHostHeader: false,
      connectionsCheckingInterval: 100,
    });
    server.headersTimeout = 1000;
    server.requestTimeout = 2000;
    server.keepAliveTimeout = 500;
    server.on('request', (req, res) => {
      const record = {
        event: 'request', method: req.method, url: req.url, version: req.httpVersion,
        headers: pairs(req.rawHeaders), body: null, bodyError: null, trailers: [],
      };
      seen.push(record);
      const chunks = [];
      req.on('data', (chunk) => chunks.push(chunk));
      req.on('error', (err) => { record.bodyError = err.code || String(err); });
      req.on('end', () => {
        record.body = b64(Buffer.concat(chunks));
        record.trailers = pairs(req.rawTrailers);
        res.end();
      });
    });
    const tunnel = (event) => (req, socket, head) => {
      const record = {
        event, method: req.method, url: req.url, version: req.httpVersion,
        headers: pairs(req.rawHeaders), head: '',
      };
      seen.push(record);
      const chunks = [head];
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('error', () => {});
      const done = () => { record.head = b64(Buffer.concat(chunks)); };
      socket.on('end', () => { done(); socket.destroy(); });
      setTimeout(() => { done(); socket.destroy(); }, 1000);
    };
    server.on('upgrade', tunnel('upgrade'));
    server.on('connect', tunnel('connect'));
    server.on('clientError', (err, socket) => {
      clientErrors.push({ code: err.code, at: Date.now() - started });
      socket.destroy();
    });
    server.listen(0, '127.0.0.1', () => {
      const socket = net.connect(server.address().port, '127.0.0.1');
      const received = [];
      let closedAt = null;
      socket.on('data', (chunk) => received.push(chunk));
      socket.on('error', () => {});
      socket.on('close', () => { closedAt = Date.now() - started; });
      socket.write(Buffer.from(testCase.data, 'base64'));
      if (testCase.eof) socket.end();
      setTimeout(() => {
        const raw = Buffer.concat(received).toString('latin1');
        const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
        // A snapshot first: what the teardown does is not the case's doing.
        resolve(JSON.parse(JSON.stringify({ seen, clientErrors, statuses, closedAt })));
        socket.destroy();
        server.closeAllConnections();
        server.close();
      }, SETTLE_MS);
    });
  });
}

function observeResponse(testCase) {
  return new Promise((resolve) => {
    const result = {
      informational: [], status: null, reason: null, version: null, headers: null,
      body: '', complete: false, error: null, errorStage: null, upgrade: null,
      trailers: [],
    };
    const chunks = [];
    const peer = net.createServer((socket) => {
      socket.once('data', () => {
        socket.write(Buffer.from(testCase.data, 'base64'));
        if (testCase.eof) socket.end();
      });
      socket.on('error', () => {});
    });
    peer.listen(0, '127.0.0.1', () => {
      const req = http.request({
        host: '127.0.0.1', port: peer.address().port, method: testCase.method,
        agent: new http.Agent({ keepAlive: false }),
      });
      req.on('information', (info) => {
        result.informational.push([info.statusCode, info.statusMessage, pairs(info.rawHeaders)]);
      });
      const head = (res) => {
        result.status = res.statusCode;
        result.reason = res.statusMessage;
        result.version = res.httpVersion;
        result.headers = pairs(res.rawHeaders);
      };
      req.on('response', (res) => {
        head(res);
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => {
          result.complete = true;
          result.trailers = pairs(res.rawTrailers);
        });
        res.on('aborted', () => { result.error = result.error || 'aborted'; });
        res.on('error', (err) => {
          result.error = result.error || err.code;
          result.errorStage = result.errorStage || 'body';
        });
      });
      const tunnel = (res, socket, upgradeHead) => {
        head(res);
        result.upgrade = b64(upgradeHead);
        socket.destroy();
      };
      req.on('upgrade', tunnel);
      req.on('connect', tunnel);
      req.on('error', (err) => {
        result.error = result.error || err.code;
        result.errorStage = result.errorStage || (result.status === null ? 'head' : 'body');
      });
      req.end();
      setTimeout(() => {
        result.body = b64(Buffer.concat(chunks));
        resolve(JSON.parse(JSON.stringify(result)));
        req.destroy();
        peer.close();
      }, SETTLE_MS);
    });
  });
}

async function main() {
  const input = [];
  for await (const chunk of process.stdin) input.push(chunk);
  const cases = JSON.parse(Buffer.concat(input).toString('utf8'));
  const results = await Promise.all(cases.map(
    (testCase) => (testCase.kind === 'request' ? observeRequest : observeResponse)(testCase)));
  const out = {};
  cases.forEach((testCase, index) => { out[testCase.id] = results[index]; });
  process.stdout.write(JSON.stringify(out));
}

main();
