'use strict';
// Interop: gRPC's own xDS client (@grpc/grpc-js-xds, which validates resources strictly and
// decodes them with the upstream Envoy protos) against our control plane, the real
// `control-plane-stub` binary. A grpc-js channel to `xds:///echo.interop` resolves through an
// API listener (HCM with RDS) -> RouteConfiguration -> EDS cluster -> ClusterLoadAssignment,
// and calls one of two grpc-js Echo backends started here. The test then PUTs snapshots
// through the admin API and watches the channel follow them:
//   v1  echo.interop -> echo-primary -> backend-a
//   v2  EDS: echo-primary's endpoint moves to backend-b
//   v3  RDS + CDS: the route moves to a new cluster echo-canary (EDS service_name
//       echo-canary-endpoints) whose endpoint is backend-a
//   v4  an assignment gRPC rejects (no locality; our control plane and the proxy accept it):
//       gRPC NACKs, /v1/status shows the NACK, calls stay on backend-a, and the rejected
//       version is not resent
//   v5  a good assignment (backend-b) after the NACK is sent normally and followed;
//   v6  the control plane's example snapshot for gRPC clients serves xds:///greeter.
//
// usage: node grpc_js_xds_test.js --deps DIR --control-plane PATH

const assert = require('assert/strict');
const fs = require('fs');
const path = require('path');

const {ControlPlane, TIMEOUT_MS, tempDir, waitFor} = require('./control_plane_process');

function argument(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    throw new Error(`missing ${name}`);
  }
  return process.argv[i + 1];
}
const CONTROL_PLANE = argument('--control-plane');
const EXAMPLE = path.join(__dirname, '../../../control_plane_stub/examples/grpc-xds-snapshot.yaml');

const NODE_ID = 'grpc-js-interop';
const TARGET = 'echo.interop';

// ---- The backends ------------------------------------------------------------------------------

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const echoPackage = grpc.loadPackageDefinition(
    protoLoader.loadSync(path.join(__dirname, 'echo.proto'), {keepCase: true}));
const EchoService = echoPackage.proxy.interop.echo.v1.Echo;

async function startBackend(name) {
  const server = new grpc.Server();
  let calls = 0;
  server.addService(EchoService.service, {
    Echo: (call, callback) => {
      calls++;
      callback(null, {message: call.request.message, backend: name});
    },
  });
  const port = await new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(),
                     (error, port) => (error ? reject(error) : resolve(port)));
  });
  return {name, port, calls: () => calls, stop: () => server.forceShutdown()};
}

// ---- The snapshots -----------------------------------------------------------------------------

// A snapshot for gRPC clients, in the YAML a user writes: the API listener named after the
// target, its route configuration sending every call to `routeTo`, and the EDS clusters of
// `clusters` ([{name, serviceName?, port, locality?}]), one endpoint each. gRPC requires a
// locality with a non-zero load_balancing_weight on every LocalityLbEndpoints (it ignores the
// others); `locality: false` leaves both out, which gRPC NACKs.
function snapshotYaml(version, routeTo, clusters) {
  const clusterYaml = clusters.map((c) => `
  - name: ${c.name}
    type: EDS
    lb_policy: ROUND_ROBIN
    eds_cluster_config:
      eds_config: { ads: {}, resource_api_version: V3 }${c.serviceName ? `
      service_name: ${c.serviceName}` : ''}`).join('');
  const endpointYaml = clusters.map((c) => `
  - cluster_name: ${c.serviceName || c.name}
    endpoints:
    - ${c.locality === false ? '' : `locality: { region: interop, zone: zone-a }
      load_balancing_weight: 1
      `}lb_endpoints:
      - endpoint:
          address:
            socket_address: { address: 127.0.0.1, port_value: ${c.port} }`).join('');
  return `version: "${version}"
resources:
  listeners:
  - name: ${TARGET}
    api_listener:
      api_listener:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        rds:
          route_config_name: echo-route
          config_source: { ads: {}, resource_api_version: V3 }
        http_filters:
        - name: envoy.filters.http.router
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  routes:
  - name: echo-route
    virtual_hosts:
    - name: echo
      domains: ["*"]
      routes:
      - match: { prefix: "" }
        route: { cluster: ${routeTo} }
  clusters:${clusterYaml}
  endpoints:${endpointYaml}
`;
}

// ---- The client --------------------------------------------------------------------------------

function writeBootstrap(controlPlane) {
  const bootstrap = {
    xds_servers: [{
      server_uri: controlPlane.xdsAddress,
      channel_creds: [{type: 'insecure'}],
      server_features: ['xds_v3'],
    }],
    node: {id: NODE_ID, cluster: 'interop', locality: {region: 'interop', zone: 'zone-a'}},
  };
  const file = path.join(tempDir('grpc-xds-bootstrap-'), 'bootstrap.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap, null, 2));
  return file;
}

function echo(client, message) {
  return new Promise((resolve, reject) => {
    client.Echo({message}, {deadline: Date.now() + 5000},
                (error, reply) => (error ? reject(error) : resolve(reply)));
  });
}

// Calls until a reply comes from `backend` (the channel applied the new config), then
// `confirm` more calls that must all come from it.
async function waitForBackend(client, backend, confirm = 10) {
  await waitFor(async () => (await echo(client, 'probe')).backend === backend.name,
                `calls to reach ${backend.name}`);
  for (let i = 0; i < confirm; i++) {
    assert.equal((await echo(client, `confirm-${i}`)).backend, backend.name);
  }
}

// ---- The script --------------------------------------------------------------------------------

async function main() {
  const backendA = await startBackend('backend-a');
  const backendB = await startBackend('backend-b');
  const primaryOn = (backend) => ({name: 'echo-primary', port: backend.port});
  const canaryOn = (backend, extra = {}) =>
    Object.assign({name: 'echo-canary', serviceName: 'echo-canary-endpoints', port: backend.port},
                  extra);

  // The control plane starts with v1 from its --snapshot file.
  const controlPlane = await ControlPlane.start(
      CONTROL_PLANE, snapshotYaml('1', 'echo-primary', [primaryOn(backendA)]));
  let client;
  try {
    // grpc-js-xds reads the bootstrap when the first xds: channel resolves.
    process.env.GRPC_XDS_BOOTSTRAP = writeBootstrap(controlPlane);
    require('@grpc/grpc-js-xds').register();
    client = new EchoService(`xds:///${TARGET}`, grpc.credentials.createInsecure());

    // v1: the first call resolves LDS -> RDS -> CDS -> EDS and reaches backend-a.
    const reply = await echo(client, 'hello');
    assert.deepEqual(reply, {message: 'hello', backend: 'backend-a'});
    // gRPC subscribes by name (no wildcard) and ACKs every type at version 1.
    await controlPlane.waitForAcks(NODE_ID, {lds: '1', rds: '1', cds: '1', eds: '1'});
    let types = await controlPlane.types(NODE_ID);
    assert.deepEqual(types.lds.names, [TARGET]);
    assert.equal(types.lds.wildcard, false);
    assert.deepEqual(types.rds.names, ['echo-route']);
    assert.deepEqual(types.cds.names, ['echo-primary']);
    assert.deepEqual(types.eds.names, ['echo-primary']);
    assert.equal(types.lds.stream.method, 'StreamAggregatedResources');
    console.log('ok - v1: xds:///echo.interop resolves through the control plane to backend-a');

    // v2: only the assignment changes; the channel moves to backend-b.
    let put = await controlPlane.putSnapshot(
        snapshotYaml('2', 'echo-primary', [primaryOn(backendB)]));
    assert.equal(put.status, 200, put.body);
    await waitForBackend(client, backendB);
    await controlPlane.waitForAcks(NODE_ID, {eds: '2'});
    types = await controlPlane.types(NODE_ID);
    // Unchanged types keep their version: nothing was resent for them.
    assert.deepEqual([types.lds.acked_version, types.rds.acked_version, types.cds.acked_version],
                     ['1', '1', '1']);
    console.log('ok - v2: an EDS update moves the calls to backend-b');

    // v3: the route moves to a new cluster whose assignment has its own service_name.
    put = await controlPlane.putSnapshot(
        snapshotYaml('3', 'echo-canary', [primaryOn(backendB), canaryOn(backendA)]));
    assert.equal(put.status, 200, put.body);
    await waitForBackend(client, backendA);
    await controlPlane.waitForAcks(NODE_ID, {rds: '3', cds: '3', eds: '3'});
    types = await controlPlane.types(NODE_ID);
    // gRPC watches only the clusters its routes use: it dropped echo-primary.
    await waitFor(async () => {
      types = await controlPlane.types(NODE_ID);
      return types.cds.names.join() === 'echo-canary' &&
             types.eds.names.join() === 'echo-canary-endpoints';
    }, 'gRPC to watch only echo-canary');
    console.log('ok - v3: an RDS + CDS update moves the calls to a new cluster (backend-a)');

    // v4: an assignment without locality. Our control plane accepts it (the proxy would too);
    // gRPC rejects it, NACKs, and keeps the last good one.
    const responsesBefore = (await controlPlane.types(NODE_ID)).eds.stream.responses;
    put = await controlPlane.putSnapshot(snapshotYaml(
        '4', 'echo-canary', [primaryOn(backendB), canaryOn(backendB, {locality: false})]));
    assert.equal(put.status, 200, put.body);
    const nack = await waitFor(async () => {
      const eds = (await controlPlane.types(NODE_ID)).eds;
      return eds.last_nack && eds.last_nack.version === '4' ? eds.last_nack : null;
    }, 'the EDS NACK of version 4 in /v1/status');
    assert.equal(nack.type, 'eds');
    // gRPC's own wording (it names the resource by index only).
    assert.equal(nack.message,
                 'xDS response validation errors: [resource index 0: ClusterLoadAssignment ' +
                     'message validation failed: [endpoints[0].locality unset]]');
    types = await controlPlane.types(NODE_ID);
    assert.equal(types.eds.acked_version, '3', 'the last ACKed version stays 3');
    assert.equal(types.eds.pending_nonce, '', 'nothing is in flight after the NACK');
    const status = await controlPlane.status();
    const node = status.nodes.find((n) => n.node === NODE_ID);
    assert.ok(node.last_nacks.some((n) => n.version === '4' && n.type === 'eds'),
              JSON.stringify(node.last_nacks));
    assert.match(controlPlane.log(), /NACK/);
    // Calls keep going to backend-a, on the last good assignment; the rejected version was sent
    // exactly once (go-control-plane's resend loop would show as a growing response count).
    for (let i = 0; i < 20; i++) {
      assert.equal((await echo(client, `after-nack-${i}`)).backend, 'backend-a');
    }
    types = await controlPlane.types(NODE_ID);
    assert.equal(types.eds.stream.responses, responsesBefore + 1,
                 'the NACKed version is not resent');
    console.log('ok - v4: gRPC NACKs an assignment without locality; calls stay on backend-a');

    // v5: the next good snapshot after a NACK is sent normally.
    put = await controlPlane.putSnapshot(
        snapshotYaml('5', 'echo-canary', [primaryOn(backendB), canaryOn(backendB)]));
    assert.equal(put.status, 200, put.body);
    await waitForBackend(client, backendB);
    await controlPlane.waitForAcks(NODE_ID, {eds: '5'});
    console.log('ok - v5: the next snapshot after a NACK is applied (backend-b)');

    // The example snapshot for gRPC clients that ships with the control plane, its backend
    // port pointed at backend-a, serves a channel to xds:///greeter.
    const example = fs.readFileSync(EXAMPLE, 'utf8').replace(
        /port_value: 50051 \} # backend/, `port_value: ${backendA.port} } # backend`);
    assert.notEqual(example, fs.readFileSync(EXAMPLE, 'utf8'), 'the example names its backend');
    put = await controlPlane.putSnapshot(example.replace(/version: "1"/, 'version: "6"'));
    assert.equal(put.status, 200, put.body);
    const greeter = new EchoService('xds:///greeter', grpc.credentials.createInsecure());
    try {
      assert.deepEqual(await echo(greeter, 'hi'), {message: 'hi', backend: 'backend-a'});
    } finally {
      greeter.close();
    }
    console.log('ok - control_plane_stub/examples/grpc-xds-snapshot.yaml serves xds:///greeter');

    assert.ok(backendA.calls() > 0 && backendB.calls() > 0);
    client.close();
    client = null;
    assert.equal(await controlPlane.stop(), 0, 'control-plane-stub exits 0 on SIGTERM');
  } catch (error) {
    console.error(`control-plane-stub log:\n${controlPlane.log()}`);
    throw error;
  } finally {
    if (client) {
      client.close();
    }
    controlPlane.kill();
    backendA.stop();
    backendB.stop();
  }
}

// A hung step cannot hang ctest: the whole script is bounded.
setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${6 * TIMEOUT_MS} ms`);
  process.exit(1);
}, 6 * TIMEOUT_MS).unref();

main().then(() => process.exit(0), (error) => {
  console.error(`FAIL: ${error.stack || error}`);
  process.exit(1);
});
