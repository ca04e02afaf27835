'use strict';
// Interop, one direction: what our control plane sends decodes with the UPSTREAM Envoy protos.
// The real `control-plane-stub` serves a snapshot using every field the proxy reads; a gRPC
// client built here from the upstream .proto files (@grpc/grpc-js + @grpc/proto-loader over
// @grpc/grpc-js-xds's deps/) subscribes over
//  - SotW ADS: CDS and LDS wildcard, EDS and RDS by name; every resource decodes upstream with
//    no field unknown upstream (nested Anys included) and with the values of the snapshot; the
//    upstream-encoded ACKs and a NACK reach /v1/status with their versions and message; a
//    removal is sent make-before-break (the dropped cluster stays until routes move on);
//  - Delta ADS: per-resource names and versions, removals;
//  - a per-type service (ClusterDiscoveryService).
//
// usage: node control_plane_upstream_test.js --deps DIR --control-plane PATH

const assert = require('assert/strict');

const grpc = require('@grpc/grpc-js');
const {ControlPlane, TIMEOUT_MS, waitFor} = require('../grpc_js_xds/control_plane_process');
const upstream = require('./upstream');
const {LDS, RDS, CDS, EDS, HCM, ROUTER, TCP_PROXY, HTTP_OPTIONS, STDOUT_LOG} = upstream;

function argument(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    throw new Error(`missing ${name}`);
  }
  return process.argv[i + 1];
}
const CONTROL_PLANE = argument('--control-plane');
const protos = upstream.load(argument('--deps'));
const discovery = protos.services.envoy.service;

// ---- The snapshot: every field the proxy reads, with non-default values ------------------------

function snapshotYaml(version, {withStatic = true} = {}) {
  return `version: "${version}"
resources:
  listeners:
  - name: ingress_http
    address: { socket_address: { address: 127.0.0.1, port_value: 10080 } }
    per_connection_buffer_limit_bytes: 65536
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": ${HCM}
          stat_prefix: ingress_http
          codec_type: HTTP1
          rds:
            route_config_name: main_routes
            config_source: { ads: {}, resource_api_version: V3 }
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": ${ROUTER} }
          common_http_protocol_options: { idle_timeout: 300s }
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config: { "@type": ${STDOUT_LOG} }
${withStatic ? `  - name: ingress_tcp
    address: { socket_address: { address: 127.0.0.1, port_value: 10081 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config: { "@type": ${TCP_PROXY}, stat_prefix: tcp, cluster: static_backend }
` : ''}  routes:
  - name: main_routes
    virtual_hosts:
    - name: backend
      domains: ["*"]
      routes:
      - match: { prefix: /api }
        route: { cluster: eds_backend, timeout: 5s, prefix_rewrite: / }
      - match:
          path: /exact
          headers: [{ name: x-env, string_match: { exact: prod } }]
        route:
          weighted_clusters:
            clusters:
            - { name: eds_backend, weight: 80 }
            - { name: ${withStatic ? 'static_backend' : 'eds_backend'}, weight: 20 }
      - match: { prefix: / }
        direct_response: { status: 404 }
  clusters:
  - name: eds_backend
    type: EDS
    connect_timeout: 2.5s
    lb_policy: LEAST_REQUEST
    eds_cluster_config:
      eds_config: { ads: {}, resource_api_version: V3 }
      service_name: eds_backend_endpoints
    circuit_breakers:
      thresholds: [{ max_connections: 100, max_requests: 200 }]
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": ${HTTP_OPTIONS}
        explicit_http_config: { http_protocol_options: {} }
${withStatic ? `  - name: static_backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: static_backend
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }
          load_balancing_weight: 3
` : ''}  endpoints:
  - cluster_name: eds_backend_endpoints
    endpoints:
    - locality: { region: r1, zone: z1 }
      load_balancing_weight: 10
      lb_endpoints:
      - endpoint:
          address: { socket_address: { address: 127.0.0.2, port_value: 9090 } }
          hostname: backend-1
        health_status: HEALTHY
        load_balancing_weight: 7
      - endpoint: { address: { socket_address: { address: 127.0.0.3, port_value: 9091 } } }
        health_status: DRAINING
`;
}

// What each resource must decode to upstream (toObject: durations and wrappers as messages,
// nested Anys expanded).
const EXPECTED = {
  eds_backend: {
    name: 'eds_backend',
    type: 'EDS',
    connect_timeout: {seconds: '2', nanos: 500000000},
    lb_policy: 'LEAST_REQUEST',
    eds_cluster_config: {
      eds_config: {ads: {}, resource_api_version: 'V3'},
      service_name: 'eds_backend_endpoints',
    },
    circuit_breakers: {thresholds: [{max_connections: {value: 100}, max_requests: {value: 200}}]},
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions':
          {'@type': HTTP_OPTIONS, explicit_http_config: {http_protocol_options: {}}},
    },
  },
  static_backend: {
    name: 'static_backend',
    type: 'STATIC',
    connect_timeout: {seconds: '1'},
    load_assignment: {
      cluster_name: 'static_backend',
      endpoints: [{
        lb_endpoints: [{
          endpoint: {address: {socket_address: {address: '127.0.0.1', port_value: 8080}}},
          load_balancing_weight: {value: 3},
        }],
      }],
    },
  },
  eds_backend_endpoints: {
    cluster_name: 'eds_backend_endpoints',
    endpoints: [{
      locality: {region: 'r1', zone: 'z1'},
      load_balancing_weight: {value: 10},
      lb_endpoints: [
        {
          endpoint: {
            address: {socket_address: {address: '127.0.0.2', port_value: 9090}},
            hostname: 'backend-1',
          },
          health_status: 'HEALTHY',
          load_balancing_weight: {value: 7},
        },
        {
          endpoint: {address: {socket_address: {address: '127.0.0.3', port_value: 9091}}},
          health_status: 'DRAINING',
        },
      ],
    }],
  },
  ingress_http: {
    name: 'ingress_http',
    address: {socket_address: {address: '127.0.0.1', port_value: 10080}},
    per_connection_buffer_limit_bytes: {value: 65536},
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': HCM,
          stat_prefix: 'ingress_http',
          codec_type: 'HTTP1',
          rds: {
            config_source: {ads: {}, resource_api_version: 'V3'},
            route_config_name: 'main_routes',
          },
          http_filters: [{name: 'envoy.filters.http.router', typed_config: {'@type': ROUTER}}],
          common_http_protocol_options: {idle_timeout: {seconds: '300'}},
          access_log: [{name: 'envoy.access_loggers.stdout', typed_config: {'@type': STDOUT_LOG}}],
        },
      }],
    }],
  },
  ingress_tcp: {
    name: 'ingress_tcp',
    address: {socket_address: {address: '127.0.0.1', port_value: 10081}},
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: {'@type': TCP_PROXY, stat_prefix: 'tcp', cluster: 'static_backend'},
      }],
    }],
  },
  main_routes: {
    name: 'main_routes',
    virtual_hosts: [{
      name: 'backend',
      domains: ['*'],
      routes: [
        {
          match: {prefix: '/api'},
          route: {cluster: 'eds_backend', timeout: {seconds: '5'}, prefix_rewrite: '/'},
        },
        {
          match: {path: '/exact', headers: [{name: 'x-env', string_match: {exact: 'prod'}}]},
          route: {
            weighted_clusters: {
              clusters: [
                {name: 'eds_backend', weight: {value: 80}},
                {name: 'static_backend', weight: {value: 20}},
              ],
            },
          },
        },
        {match: {prefix: '/'}, direct_response: {status: 404}},
      ],
    }],
  },
};

// ---- A client stream: responses queue up; next(type_url) takes the oldest of a type ------------

class ClientStream {
  constructor(call) {
    this.call = call;
    this.responses = [];
    this.waiters = [];
    this.error = null;
    call.on('data', (response) => {
      this.responses.push(response);
      this.waiters.splice(0).forEach((wake) => wake());
    });
    call.on('error', (error) => {
      this.error = error;
    });
  }

  send(request) {
    this.call.write(request);
  }

  async next(typeUrl) {
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const i = this.responses.findIndex((r) => r.type_url === typeUrl);
      if (i >= 0) {
        return this.responses.splice(i, 1)[0];
      }
      if (this.error) {
        throw this.error;
      }
      if (Date.now() > deadline) {
        throw new Error(`no ${typeUrl} response within ${TIMEOUT_MS} ms`);
      }
      await new Promise((wake) => {
        this.waiters.push(wake);
        setTimeout(wake, 100);
      });
    }
  }

  close() {
    this.call.end();
    this.call.cancel();
  }
}

function node(id) {
  return {id, cluster: 'upstream-protos', user_agent_name: 'upstream-protos-test'};
}

// Decodes every resource of a SotW response by name and checks it against EXPECTED.
function checkSotw(response, typeUrl, version, names) {
  assert.equal(response.type_url, typeUrl);
  assert.equal(response.version_info, version);
  assert.notEqual(response.nonce, '');
  const decoded = {};
  for (const resource of response.resources) {
    const message = protos.decodeAny(resource, typeUrl);
    decoded[message.name || message.cluster_name] = message;
  }
  assert.deepEqual(Object.keys(decoded).sort(), [...names].sort());
  for (const name of names) {
    assert.deepEqual(decoded[name], EXPECTED[name], `${typeUrl} ${name}`);
  }
  return decoded;
}

// ---- SotW ADS ----------------------------------------------------------------------------------

async function stateOfTheWorld(controlPlane) {
  const client = new discovery.discovery.v3.AggregatedDiscoveryService(
      controlPlane.xdsAddress, grpc.credentials.createInsecure());
  const stream = new ClientStream(client.StreamAggregatedResources());
  // An upstream-encoded ACK of `response`, restating the subscription.
  const ack = (response, names = []) => stream.send({
    type_url: response.type_url, version_info: response.version_info,
    response_nonce: response.nonce, resource_names: names,
  });
  try {
    // Envoy's order: CDS (wildcard, with the node), then EDS by the clusters' service names,
    // LDS (wildcard), RDS by the listeners' route_config_names. Each response decodes upstream
    // into the snapshot's values, and is ACKed.
    stream.send({node: node('sotw-node'), type_url: CDS});
    const cds = await stream.next(CDS);
    checkSotw(cds, CDS, '1', ['eds_backend', 'static_backend']);
    ack(cds);
    stream.send({type_url: EDS, resource_names: ['eds_backend_endpoints']});
    const eds = await stream.next(EDS);
    checkSotw(eds, EDS, '1', ['eds_backend_endpoints']);
    ack(eds, ['eds_backend_endpoints']);
    stream.send({type_url: LDS});
    const lds = await stream.next(LDS);
    checkSotw(lds, LDS, '1', ['ingress_http', 'ingress_tcp']);
    ack(lds);
    stream.send({type_url: RDS, resource_names: ['main_routes']});
    const rds = await stream.next(RDS);
    checkSotw(rds, RDS, '1', ['main_routes']);
    ack(rds, ['main_routes']);

    // The control plane decoded the upstream-encoded node and ACKs.
    await controlPlane.waitForAcks('sotw-node', {cds: '1', eds: '1', lds: '1', rds: '1'});
    const types = await controlPlane.types('sotw-node');
    assert.equal(types.cds.wildcard, true);
    assert.deepEqual(types.eds.names, ['eds_backend_endpoints']);
    assert.deepEqual(types.rds.names, ['main_routes']);
    console.log('ok - SotW ADS: every resource decodes upstream with the snapshot\'s values; ' +
                'upstream ACKs are recorded');

    // A new snapshot without the static cluster and the TCP listener that uses it, and with a
    // route that no longer does. Make before break: CDS '2' first still carries static_backend
    // (the listener and route updates that stop using it are not ACKed yet), and LDS waits
    // for the CDS ACK.
    const put = await controlPlane.putSnapshot(snapshotYaml('2', {withStatic: false}));
    assert.equal(put.status, 200, put.body);
    const cdsKept = await stream.next(CDS);
    checkSotw(cdsKept, CDS, '2', ['eds_backend', 'static_backend']);
    assert.equal((await controlPlane.types('sotw-node')).lds.sent_version, '1',
                 'LDS waits for the CDS ACK');
    ack(cdsKept);
    const lds2 = await stream.next(LDS);
    const listeners = lds2.resources.map((r) => protos.decodeAny(r, LDS).name);
    assert.deepEqual(listeners, ['ingress_http'], 'absence from LDS is removal');
    ack(lds2);
    const rds2 = await stream.next(RDS);
    const route = protos.decodeAny(rds2.resources[0], RDS);
    assert.deepEqual(route.virtual_hosts[0].routes[1].route.weighted_clusters.clusters, [
      {name: 'eds_backend', weight: {value: 80}},
      {name: 'eds_backend', weight: {value: 20}},
    ]);
    ack(rds2, ['main_routes']);

    // Then the removal: CDS '2' without static_backend. NACKed here, upstream-encoded
    // (google.rpc.Status from upstream googleapis): /v1/status has the message.
    const cdsRemoval = await stream.next(CDS);
    checkSotw(cdsRemoval, CDS, '2', ['eds_backend']);
    stream.send({type_url: CDS, version_info: '2', response_nonce: cdsRemoval.nonce,
                 error_detail: {code: 3, message: 'upstream-encoded NACK of the removal'}});
    const nack = await waitFor(async () => {
      const cdsStatus = (await controlPlane.types('sotw-node')).cds;
      return cdsStatus.last_nack && cdsStatus.last_nack.nonce === cdsRemoval.nonce &&
             cdsStatus.last_nack;
    }, 'the CDS NACK in /v1/status');
    assert.equal(nack.message, 'upstream-encoded NACK of the removal');
    assert.equal(nack.version, '2');
    await controlPlane.waitForAcks('sotw-node', {cds: '2', eds: '1', lds: '2', rds: '2'});
    assert.equal(stream.responses.length, 0, 'nothing else was sent (no EDS, no CDS resend)');
    console.log('ok - SotW ADS: make before break, removals, an upstream-encoded NACK');
  } finally {
    stream.close();
    client.close();
  }
}

// ---- Delta ADS ---------------------------------------------------------------------------------

async function delta(controlPlane) {
  const client = new discovery.discovery.v3.AggregatedDiscoveryService(
      controlPlane.xdsAddress, grpc.credentials.createInsecure());
  const stream = new ClientStream(client.DeltaAggregatedResources());
  try {
    // Subscribe to every cluster (wildcard: no names on the first request).
    stream.send({node: node('delta-node'), type_url: CDS});
    const first = await stream.next(CDS);
    assert.notEqual(first.nonce, '');
    assert.equal(first.system_version_info, '2');
    assert.deepEqual(first.removed_resources, []);
    assert.equal(first.resources.length, 1);
    const resource = first.resources[0];
    assert.equal(resource.name, 'eds_backend');
    assert.match(resource.version, /^[0-9a-f]{16}$/, 'a per-resource content version');
    assert.deepEqual(protos.decodeAny(resource.resource, CDS), EXPECTED.eds_backend);
    stream.send({type_url: CDS, response_nonce: first.nonce});

    // Named EDS.
    stream.send({type_url: EDS, resource_names_subscribe: ['eds_backend_endpoints']});
    const eds = await stream.next(EDS);
    assert.deepEqual(eds.resources.map((r) => r.name), ['eds_backend_endpoints']);
    assert.deepEqual(protos.decodeAny(eds.resources[0].resource, EDS),
                     EXPECTED.eds_backend_endpoints);
    stream.send({type_url: EDS, response_nonce: eds.nonce});

    // The static cluster comes back (v3): only it is sent, with its own version.
    let put = await controlPlane.putSnapshot(snapshotYaml('3'));
    assert.equal(put.status, 200, put.body);
    const added = await stream.next(CDS);
    assert.deepEqual(added.resources.map((r) => r.name), ['static_backend']);
    assert.deepEqual(protos.decodeAny(added.resources[0].resource, CDS), EXPECTED.static_backend);
    stream.send({type_url: CDS, response_nonce: added.nonce});

    // And goes again (v4): a removal by name.
    put = await controlPlane.putSnapshot(snapshotYaml('4', {withStatic: false}));
    assert.equal(put.status, 200, put.body);
    const removed = await stream.next(CDS);
    assert.deepEqual(removed.resources, []);
    assert.deepEqual(removed.removed_resources, ['static_backend']);
    stream.send({type_url: CDS, response_nonce: removed.nonce});
    await waitFor(async () => {
      const types = await controlPlane.types('delta-node');
      return types.cds && types.cds.stream.delta && types.cds.pending_nonce === '';
    }, 'the Delta ACK of the removal');
    console.log('ok - Delta ADS: resources with versions decode upstream; additions, removals');
  } finally {
    stream.close();
    client.close();
  }
}

// ---- A per-type service ------------------------------------------------------------------------

async function perType(controlPlane) {
  const client = new discovery.cluster.v3.ClusterDiscoveryService(
      controlPlane.xdsAddress, grpc.credentials.createInsecure());
  const stream = new ClientStream(client.StreamClusters());
  try {
    stream.send({node: node('cds-node'), type_url: CDS});
    const cds = await stream.next(CDS);
    checkSotw(cds, CDS, '4', ['eds_backend']);
    console.log('ok - ClusterDiscoveryService.StreamClusters decodes upstream');
  } finally {
    stream.close();
    client.close();
  }
}

async function main() {
  const controlPlane = await ControlPlane.start(CONTROL_PLANE, snapshotYaml('1'));
  try {
    await stateOfTheWorld(controlPlane);
    await delta(controlPlane);
    await perType(controlPlane);
    assert.equal(await controlPlane.stop(), 0, 'control-plane-stub exits 0 on SIGTERM');
  } catch (error) {
    console.error(`control-plane-stub log:\n${controlPlane.log()}`);
    throw error;
  } finally {
    controlPlane.kill();
  }
}

setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${6 * TIMEOUT_MS} ms`);
  process.exit(1);
}, 6 * TIMEOUT_MS).unref();

main().then(() => process.exit(0), (error) => {
  console.error(`FAIL: ${error.stack || error}`);
  process.exit(1);
});
