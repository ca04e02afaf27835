'use strict';
// The real `control-plane-stub` binary as a child process of a Node.js interop test: started on
// 127.0.0.1 port 0 (the ports come back through --port-file), driven through its admin HTTP API
// (PUT/GET /v1/snapshot, GET /v1/status), stopped with SIGTERM. Only the one PID it spawned is
// ever signalled. Shared by the interop tests in test/interop/grpc_js_xds and upstream_protos.

const assert = require('assert/strict');
const childProcess = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const TIMEOUT_MS = 20000;

// Polls `condition` (sync or async) every 25 ms until it returns a truthy value, which it
// returns; fails after `timeoutMs`. The polling is the wait itself, never a fixed sleep.
async function waitFor(condition, what, timeoutMs = TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await condition();
      if (value) {
        return value;
      }
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` +
                      (last ? ` (last error: ${last.message})` : ''));
    }
    await new Promise((wake) => setTimeout(wake, 25));
  }
}

// A private temp dir, removed when the process exits (PROXY_IT_KEEP_TMP keeps it, like the C++
// integration tests).
const tempDirs = [];
process.on('exit', () => {
  if (process.env.PROXY_IT_KEEP_TMP === undefined) {
    tempDirs.forEach((dir) => fs.rmSync(dir, {recursive: true, force: true}));
  }
});
function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

// One HTTP/1.1 request to 127.0.0.1:`port`; resolves to {status, body}.
function httpRequest(port, method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const request = http.request(
        {host: '127.0.0.1', port, method, path: urlPath, agent: false, timeout: TIMEOUT_MS,
         headers: body === undefined ? {} : {'content-type': 'application/yaml'}},
        (response) => {
          const chunks = [];
          response.on('data', (chunk) => chunks.push(chunk));
          response.on('end', () => resolve({status: response.statusCode,
                                            headers: response.headers,
                                            body: Buffer.concat(chunks).toString()}));
          response.on('error', reject);
        });
    request.on('timeout', () => request.destroy(new Error(`${method} ${urlPath}: timed out`)));
    request.on('error', reject);
    request.end(body);
  });
}

class ControlPlane {
  // Starts `binary` serving `snapshotYaml` (written to a file passed as --snapshot) and waits
  // for its port file. `extraArgs` go after the standard flags.
  static async start(binary, snapshotYaml, extraArgs = []) {
    const dir = tempDir('control-plane-');
    const snapshotPath = path.join(dir, 'snapshot.yaml');
    const portFile = path.join(dir, 'ports');
    const logPath = path.join(dir, 'control-plane.log');
    fs.writeFileSync(snapshotPath, snapshotYaml);
    const log = fs.openSync(logPath, 'w');
    const child = childProcess.spawn(
        binary,
        ['--xds-address', '127.0.0.1:0', '--admin-address', '127.0.0.1:0', '--snapshot',
         snapshotPath, '--port-file', portFile, '--watch-interval-ms', '0', ...extraArgs],
        {stdio: ['ignore', log, log]});
    fs.closeSync(log);
    const controlPlane = new ControlPlane(child, dir, logPath);
    const ports = await waitFor(() => {
      assert.equal(controlPlane.exitCode, null,
                   `control-plane-stub exited early:\n${controlPlane.log()}`);
      const text = fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8') : '';
      return /xds=\S+:(\d+) admin=\S+:(\d+)/.exec(text);
    }, 'the control plane port file');
    controlPlane.xdsPort = Number(ports[1]);
    controlPlane.adminPort = Number(ports[2]);
    return controlPlane;
  }

  constructor(child, dir, logPath) {
    this.child = child;
    this.dir = dir;
    this.logPath = logPath;
    this.exitCode = null;
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => {
      this.exitCode = code === null ? 128 + os.constants.signals[signal] : code;
      resolve(this.exitCode);
    }));
  }

  get xdsAddress() {
    return `127.0.0.1:${this.xdsPort}`;
  }

  // What the control plane logged so far (one line per stream open/close, ACK, NACK).
  log() {
    return fs.existsSync(this.logPath) ? fs.readFileSync(this.logPath, 'utf8') : '';
  }

  admin(method, urlPath, body) {
    return httpRequest(this.adminPort, method, urlPath, body);
  }

  // PUT /v1/snapshot; resolves to {status, body}.
  putSnapshot(yaml, query = '') {
    return this.admin('PUT', `/v1/snapshot${query}`, yaml);
  }

  // GET /v1/status, parsed.
  async status() {
    const response = await this.admin('GET', '/v1/status');
    assert.equal(response.status, 200, `GET /v1/status: ${response.body}`);
    return JSON.parse(response.body);
  }

  // The per-type entries ({type, names, acked_version, last_nack, ...}) of every open stream
  // of `node`, flattened and keyed by short type name ("lds", "rds", "cds", "eds").
  async types(node) {
    const status = await this.status();
    const result = {};
    for (const entry of status.nodes.filter((n) => n.node === node)) {
      for (const stream of entry.streams) {
        for (const type of stream.types) {
          result[type.type] = Object.assign({stream}, type);
        }
      }
    }
    return result;
  }

  // Waits until every type in `versions` ({lds: '1', ...}) is ACKed at that version by `node`.
  waitForAcks(node, versions) {
    return waitFor(async () => {
      const types = await this.types(node);
      return Object.entries(versions).every(
          ([type, version]) => types[type] && types[type].acked_version === version);
    }, `node '${node}' to ACK ${JSON.stringify(versions)}`);
  }

  async stop() {
    if (this.exitCode === null) {
      this.child.kill('SIGTERM');
    }
    return this.exited;
  }

  kill() {
    if (this.exitCode === null) {
      this.child.kill('SIGKILL');
    }
  }
}

module.exports = {ControlPlane, TIMEOUT_MS, httpRequest, tempDir, waitFor};
