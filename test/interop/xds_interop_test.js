'use strict';
// Interop: our xDS client against a management server we did not write. The server is
// Node's @grpc/grpc-js with the UPSTREAM Envoy protos (from @grpc/grpc-js-xds's deps, loaded
// by @grpc/proto-loader; resource bodies encoded with the protobufjs root it builds). The
// client is xds_client_probe, which prints what it decoded as JSON of OUR protos.
//
// It checks, for SotW ADS and Delta ADS:
//  - our requests decode as upstream DiscoveryRequest / DeltaDiscoveryRequest: node (id,
//    cluster, metadata, locality, user agent, build version, client features) on the first
//    request only, type_url, resource names, version_info, response_nonce, error_detail;
//  - every field the proxy uses, encoded upstream, decodes into the same value in our protos,
//    with no field left unknown; a field our protos leave out survives decoding (re-encoded
//    bytes decode upstream with it intact);
//  - a NACK carries the previous version and the exact error text.
//
// usage: node xds_interop_test.js --probe PATH --deps DIR   (DIR = @grpc/grpc-js-xds/deps)

const assert = require('assert/strict');
const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const {loadProtosWithOptionsSync} = require('@grpc/proto-loader/build/src/util');

function argument(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    throw new Error(`missing ${name}`);
  }
  return process.argv[i + 1];
}
const PROBE = argument('--probe');
const DEPS = argument('--deps');
const TIMEOUT_MS = 20000;

const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const RDS = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

// ---- Upstream protos ---------------------------------------------------------------------------

const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map(
    (dir) => path.join(DEPS, dir));
const loaderOptions = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
  includeDirs,
};
const adsPackage = grpc.loadPackageDefinition(
    protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', loaderOptions));
const AggregatedDiscoveryService =
    adsPackage.envoy.service.discovery.v3.AggregatedDiscoveryService;

const root = loadProtosWithOptionsSync([
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
], {keepCase: true, includeDirs});

// protobufjs's fromObject ignores keys it does not know: check every key names a field, so a
// typo here cannot silently drop what the test means to send.
function checkKeys(type, object, where) {
  type.resolveAll();
  for (const [key, value] of Object.entries(object)) {
    if (key === '@type' && type.fullName === '.google.protobuf.Any') {
      const inner = root.lookupType(value.split('/').pop());
      const rest = Object.assign({}, object);
      delete rest['@type'];
      checkKeys(inner, rest, `${where}(${value})`);
      return;
    }
    const field = type.fields[key];
    assert.ok(field, `${where}: ${type.fullName} has no field '${key}'`);
    if (!field.resolvedType || field.resolvedType.fields === undefined) {
      continue;  // a scalar or an enum
    }
    const values = field.map ? Object.values(value) : field.repeated ? value : [value];
    values.forEach((v, i) => checkKeys(field.resolvedType, v, `${where}.${key}[${i}]`));
  }
}

// An upstream-encoded Any: any(LDS, {...listener fields...}).
function any(typeUrl, object) {
  const type = root.lookupType(typeUrl.split('/').pop());
  checkKeys(type, object, typeUrl);
  return {type_url: typeUrl, value: Buffer.from(type.encode(type.fromObject(object)).finish())};
}

function decodeUpstream(typeUrl, base64) {
  const type = root.lookupType(typeUrl.split('/').pop());
  return type.toObject(type.decode(Buffer.from(base64, 'base64')),
                       {longs: String, enums: String, json: true});
}

// ---- The resources: every field the proxy reads, with non-default values -----------------------

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const HTTP_OPTIONS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

const listenerHttp = {
  name: 'listener_http',
  address: {socket_address: {address: '0.0.0.0', port_value: 10000}},
  per_connection_buffer_limit_bytes: {value: 65536},
  filter_chains: [{
    filters: [{
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: {
        '@type': HCM,
        stat_prefix: 'ingress_http',
        codec_type: 'HTTP1',
        rds: {config_source: {ads: {}, resource_api_version: 'V3'}, route_config_name: 'route_main'},
        http_filters: [{name: 'envoy.filters.http.router', typed_config: {'@type': ROUTER}}],
        common_http_protocol_options: {idle_timeout: {seconds: 300}},
      },
    }],
  }],
};
// A field our protos leave out (Listener.deprecated_v1 = 7): it must survive decoding.
const listenerTcp = {
  name: 'listener_tcp',
  address: {socket_address: {address: '127.0.0.1', port_value: 10001}},
  deprecated_v1: {bind_to_port: {value: true}},
  filter_chains: [{
    filters: [{
      name: 'envoy.filters.network.tcp_proxy',
      typed_config: {'@type': TCP_PROXY, stat_prefix: 'tcp', cluster: 'cluster_static'},
    }],
  }],
};
const clusterEds = {
  name: 'cluster_eds',
  type: 'EDS',
  eds_cluster_config: {eds_config: {ads: {}, resource_api_version: 'V3'}},
  connect_timeout: {seconds: 2, nanos: 500000000},
  lb_policy: 'LEAST_REQUEST',
  circuit_breakers: {thresholds: [{max_connections: {value: 100}, max_requests: {value: 200}}]},
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': HTTP_OPTIONS,
      explicit_http_config: {http2_protocol_options: {}},
    },
  },
};
const clusterStatic = {
  name: 'cluster_static',
  type: 'STATIC',
  connect_timeout: {seconds: 1},
  load_assignment: {
    cluster_name: 'cluster_static',
    endpoints: [{
      lb_endpoints: [{
        endpoint: {address: {socket_address: {address: '127.0.0.1', port_value: 8080}}},
        load_balancing_weight: {value: 3},
      }],
    }],
  },
};
const assignment = {
  cluster_name: 'cluster_eds',
  endpoints: [{
    locality: {region: 'r1', zone: 'z1'},
    load_balancing_weight: {value: 10},
    priority: 1,
    lb_endpoints: [{
      endpoint: {
        address: {socket_address: {address: '127.0.0.2', port_value: 9090}},
        hostname: 'backend-1',
      },
      health_status: 'DRAINING',
      load_balancing_weight: {value: 7},
    }],
  }],
  policy: {overprovisioning_factor: {value: 150}},
};
const routeMain = {
  name: 'route_main',
  virtual_hosts: [{
    name: 'backend',
    domains: ['*'],
    routes: [
      {
        match: {prefix: '/api'},
        route: {cluster: 'cluster_eds', timeout: {seconds: 5}, prefix_rewrite: '/'},
      },
      {
        match: {path: '/exact', headers: [{name: 'x-env', string_match: {exact: 'prod'}}]},
        route: {
          weighted_clusters: {
            clusters: [
              {name: 'cluster_eds', weight: {value: 80}},
              {name: 'cluster_static', weight: {value: 20}},
            ],
          },
        },
      },
      {match: {prefix: '/'}, direct_response: {status: 404}},
    ],
  }],
};

// ---- The server side ---------------------------------------------------------------------------

// A stream as the server sees it: requests queue up; next(type_url) takes the oldest of a type.
class ServerStream {
  constructor(call) {
    this.call = call;
    this.requests = [];
    this.all = [];
    this.waiters = [];
    call.on('data', (request) => {
      this.requests.push(request);
      this.all.push(request);
      this.waiters.splice(0).forEach((wake) => wake());
    });
    call.on('error', () => {});
    call.on('end', () => call.end());
  }

  async next(typeUrl) {
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const i = this.requests.findIndex((r) => r.type_url === typeUrl);
      if (i >= 0) {
        return this.requests.splice(i, 1)[0];
      }
      if (Date.now() > deadline) {
        throw new Error(`no ${typeUrl} request within ${TIMEOUT_MS} ms`);
      }
      await new Promise((wake) => {
        this.waiters.push(wake);
        setTimeout(wake, 100);
      });
    }
  }

  send(response) {
    this.call.write(response);
  }
}

async function startServer() {
  const sotw = [];
  const delta = [];
  const server = new grpc.Server();
  server.addService(AggregatedDiscoveryService.service, {
    StreamAggregatedResources: (call) => sotw.push(new ServerStream(call)),
    DeltaAggregatedResources: (call) => delta.push(new ServerStream(call)),
  });
  const port = await new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(),
                     (error, port) => (error ? reject(error) : resolve(port)));
  });
  const waitFor = async (list, n) => {
    const deadline = Date.now() + TIMEOUT_MS;
    while (list.length <= n) {
      if (Date.now() > deadline) {
        throw new Error(`stream ${n} did not open within ${TIMEOUT_MS} ms`);
      }
      await new Promise((wake) => setTimeout(wake, 20));
    }
    return list[n];
  };
  return {
    port,
    sotwStream: (n) => waitFor(sotw, n),
    deltaStream: (n) => waitFor(delta, n),
    stop: () => server.forceShutdown(),
  };
}

// ---- The client side ---------------------------------------------------------------------------

function writeBootstrap(port, apiType) {
  const bootstrap = {
    node: {
      id: 'interop-node',
      cluster: 'interop-cluster',
      metadata: {team: 'edge', shard: 3},
      locality: {region: 'r1', zone: 'z1', sub_zone: 's1'},
    },
    static_resources: {
      clusters: [{
        name: 'xds_cluster',
        type: 'STATIC',
        connect_timeout: '1s',
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': HTTP_OPTIONS,
            explicit_http_config: {http2_protocol_options: {}},
          },
        },
        load_assignment: {
          cluster_name: 'xds_cluster',
          endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {
            address: '127.0.0.1', port_value: port}}}}]}],
        },
      }],
    },
    dynamic_resources: {
      ads_config: {
        api_type: apiType,
        transport_api_version: 'V3',
        grpc_services: [{envoy_grpc: {cluster_name: 'xds_cluster'}}],
      },
      lds_config: {ads: {}, resource_api_version: 'V3'},
      cds_config: {ads: {}, resource_api_version: 'V3'},
    },
  };
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xds-interop-')),
                         'bootstrap.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap, null, 2));
  return file;
}

// The probe, and the JSON events it prints.
function startProbe(bootstrap) {
  const child = childProcess.spawn(
      PROBE, ['--bootstrap', bootstrap, '--rds', 'route_main', '--eds', 'cluster_eds',
              '--timeout-ms', '60000', '--exit-on-stdin-eof'],
      {stdio: ['pipe', 'pipe', 'inherit']});
  const events = [];
  const waiters = [];
  readline.createInterface({input: child.stdout}).on('line', (line) => {
    events.push(JSON.parse(line));
    waiters.splice(0).forEach((wake) => wake());
  });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    // The oldest event matching `predicate` not taken yet.
    async next(predicate, what) {
      const deadline = Date.now() + TIMEOUT_MS;
      for (;;) {
        const i = events.findIndex(predicate);
        if (i >= 0) {
          return events.splice(i, 1)[0];
        }
        if (Date.now() > deadline) {
          throw new Error(`probe: no ${what} within ${TIMEOUT_MS} ms; events: ` +
                          JSON.stringify(events).slice(0, 2000));
        }
        await new Promise((wake) => {
          waiters.push(wake);
          setTimeout(wake, 100);
        });
      }
    },
    update(type) {
      return this.next((e) => e.event === 'update' && e.type === type, `${type} update`);
    },
    async stop() {
      child.stdin.end();
      const code = await exited;
      assert.equal(code, 0, 'the probe exits cleanly');
      return this.next((e) => e.event === 'stats', 'stats');
    },
    kill() {
      child.kill('SIGKILL');
    },
  };
}

function byName(update) {
  const result = {};
  for (const resource of update.added) {
    result[resource.name] = resource;
  }
  return result;
}

function expectNoUnknownFields(resource) {
  assert.deepEqual(resource.unknown_fields, [], `${resource.name}: every field is known`);
}

// ---- The node on the first request -------------------------------------------------------------

function checkNode(node) {
  assert.ok(node, 'the first request carries the node');
  assert.equal(node.id, 'interop-node');
  assert.equal(node.cluster, 'interop-cluster');
  // protobufjs's built-in google.protobuf types keep their camelCase names.
  assert.equal(node.metadata.fields.team.stringValue, 'edge');
  assert.equal(node.metadata.fields.shard.numberValue, 3);
  assert.deepEqual(
      {region: node.locality.region, zone: node.locality.zone, sub_zone: node.locality.sub_zone},
      {region: 'r1', zone: 'z1', sub_zone: 's1'});
  assert.equal(node.user_agent_name, 'xds-proxy');
  assert.equal(node.user_agent_version_type, 'user_agent_build_version');
  assert.deepEqual(node.user_agent_build_version.version,
                   {major_number: 0, minor_number: 1, patch: 0});
  assert.deepEqual(node.client_features, ['xds.config.resource-in-sotw']);
}

// ---- State of the World ------------------------------------------------------------------------

async function stateOfTheWorld(server) {
  const probe = startProbe(writeBootstrap(server.port, 'GRPC'));
  try {
    const stream = await server.sotwStream(0);

    // The first requests, decoded by the upstream DiscoveryRequest.
    const cds = await stream.next(CDS);
    const eds = await stream.next(EDS);
    const lds = await stream.next(LDS);
    const rds = await stream.next(RDS);
    assert.equal(stream.all[0].type_url, CDS, 'CDS goes first');
    checkNode(stream.all[0].node);
    for (const request of stream.all.slice(1)) {
      assert.equal(request.node, null, 'only the first request of the stream carries the node');
    }
    for (const request of [cds, eds, lds, rds]) {
      assert.equal(request.version_info, '');
      assert.equal(request.response_nonce, '');
      assert.equal(request.error_detail, null);
    }
    assert.deepEqual(cds.resource_names, [], 'CDS is a wildcard subscription');
    assert.deepEqual(lds.resource_names, [], 'LDS is a wildcard subscription');
    assert.deepEqual(eds.resource_names, ['cluster_eds']);
    assert.deepEqual(rds.resource_names, ['route_main']);

    // Resources encoded with the upstream protos; each response is ACKed.
    const respond = async (typeUrl, version, nonce, resources, names) => {
      stream.send({version_info: version, nonce, type_url: typeUrl, resources});
      const ack = await stream.next(typeUrl);
      assert.equal(ack.version_info, version, `${typeUrl}: the ACK carries the version`);
      assert.equal(ack.response_nonce, nonce, `${typeUrl}: the ACK carries the nonce`);
      assert.equal(ack.error_detail, null, `${typeUrl}: an ACK has no error_detail`);
      assert.deepEqual(ack.resource_names, names);
    };
    await respond(CDS, '1', 'cds-1', [any(CDS, clusterEds), any(CDS, clusterStatic)], []);
    await respond(EDS, '1', 'eds-1', [any(EDS, assignment)], ['cluster_eds']);
    await respond(LDS, '1', 'lds-1', [any(LDS, listenerHttp), any(LDS, listenerTcp)], []);
    await respond(RDS, '1', 'rds-1', [any(RDS, routeMain)], ['route_main']);

    // What the client decoded, field by field, in our protos.
    const clusters = byName(await probe.update('cds'));
    const c = clusters.cluster_eds.resource;
    expectNoUnknownFields(clusters.cluster_eds);
    assert.equal(c.type, 'EDS');
    assert.deepEqual(c.eds_cluster_config, {eds_config: {ads: {}, resource_api_version: 'V3'}});
    assert.equal(c.connect_timeout, '2.500s');
    assert.equal(c.lb_policy, 'LEAST_REQUEST');
    assert.deepEqual(c.circuit_breakers, {thresholds: [{max_connections: 100, max_requests: 200}]});
    assert.deepEqual(c.typed_extension_protocol_options, {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions':
          {'@type': HTTP_OPTIONS, explicit_http_config: {http2_protocol_options: {}}},
    });
    const s = clusters.cluster_static.resource;
    expectNoUnknownFields(clusters.cluster_static);
    assert.equal(s.connect_timeout, '1s');
    assert.deepEqual(s.load_assignment.endpoints[0].lb_endpoints[0], {
      endpoint: {address: {socket_address: {address: '127.0.0.1', port_value: 8080}}},
      load_balancing_weight: 3,
    });

    const endpoints = byName(await probe.update('eds'));
    expectNoUnknownFields(endpoints.cluster_eds);
    assert.deepEqual(endpoints.cluster_eds.resource, {
      cluster_name: 'cluster_eds',
      endpoints: [{
        locality: {region: 'r1', zone: 'z1'},
        load_balancing_weight: 10,
        priority: 1,
        lb_endpoints: [{
          endpoint: {
            address: {socket_address: {address: '127.0.0.2', port_value: 9090}},
            hostname: 'backend-1',
          },
          health_status: 'DRAINING',
          load_balancing_weight: 7,
        }],
      }],
      policy: {overprovisioning_factor: 150},
    });

    const listeners = byName(await probe.update('lds'));
    expectNoUnknownFields(listeners.listener_http);
    const l = listeners.listener_http.resource;
    assert.deepEqual(l.address, {socket_address: {address: '0.0.0.0', port_value: 10000}});
    assert.equal(l.per_connection_buffer_limit_bytes, 65536);
    const hcm = l.filter_chains[0].filters[0];
    assert.equal(hcm.name, 'envoy.filters.network.http_connection_manager');
    assert.deepEqual(hcm.typed_config, {
      '@type': HCM,
      stat_prefix: 'ingress_http',
      codec_type: 'HTTP1',
      rds: {config_source: {ads: {}, resource_api_version: 'V3'}, route_config_name: 'route_main'},
      http_filters: [{name: 'envoy.filters.http.router', typed_config: {'@type': ROUTER}}],
      common_http_protocol_options: {idle_timeout: '300s'},
    });
    // listener_tcp: its tcp_proxy decodes, and deprecated_v1 (not in our protos) survives.
    const tcp = listeners.listener_tcp;
    assert.deepEqual(tcp.resource.filter_chains[0].filters[0].typed_config,
                     {'@type': TCP_PROXY, stat_prefix: 'tcp', cluster: 'cluster_static'});
    assert.deepEqual(tcp.unknown_fields, ['#7']);
    assert.deepEqual(decodeUpstream(LDS, tcp.bytes).deprecated_v1, {bind_to_port: {value: true}});

    const routes = byName(await probe.update('rds'));
    expectNoUnknownFields(routes.route_main);
    assert.deepEqual(routes.route_main.resource.virtual_hosts[0], {
      name: 'backend',
      domains: ['*'],
      routes: [
        {match: {prefix: '/api'},
         route: {cluster: 'cluster_eds', timeout: '5s', prefix_rewrite: '/'}},
        {match: {path: '/exact', headers: [{name: 'x-env', string_match: {exact: 'prod'}}]},
         route: {weighted_clusters: {clusters: [{name: 'cluster_eds', weight: 80},
                                                {name: 'cluster_static', weight: 20}]}}},
        {match: {prefix: '/'}, direct_response: {status: 404}},
      ],
    });

    // A NACK: version 2 of CDS carries a Listener. The previous version, the new nonce, and
    // the exact problem come back.
    stream.send({version_info: '2', nonce: 'cds-2', type_url: CDS,
                 resources: [any(LDS, {name: 'not_a_cluster'})]});
    const nack = await stream.next(CDS);
    assert.equal(nack.version_info, '1');
    assert.equal(nack.response_nonce, 'cds-2');
    assert.equal(nack.error_detail.code, 3);
    assert.equal(
        nack.error_detail.message,
        "resource index 0: not_a_cluster: resource type 'type.googleapis.com/envoy.config." +
            "listener.v3.Listener' does not match the response type 'type.googleapis.com/" +
            "envoy.config.cluster.v3.Cluster'");

    const stats = await probe.stop();
    assert.equal(stats.counters['cds.update_rejected'], 1);
    assert.equal(stats.counters['lds.update_success'], 1);
    console.log('ok - SotW ADS: requests decode upstream, resources decode in our protos, NACK');
  } catch (error) {
    probe.kill();
    throw error;
  }
}

// ---- Delta -------------------------------------------------------------------------------------

async function delta(server) {
  const probe = startProbe(writeBootstrap(server.port, 'DELTA_GRPC'));
  try {
    const stream = await server.deltaStream(0);
    const cds = await stream.next(CDS);
    const eds = await stream.next(EDS);
    await stream.next(LDS);
    await stream.next(RDS);
    assert.equal(stream.all[0].type_url, CDS);
    checkNode(stream.all[0].node);
    assert.deepEqual(cds.resource_names_subscribe, [], 'CDS: wildcard');
    assert.deepEqual(eds.resource_names_subscribe, ['cluster_eds']);
    assert.deepEqual(eds.initial_resource_versions, {});
    assert.equal(eds.response_nonce, '');

    // A resource with its own version; the ACK pairs with the nonce.
    stream.send({system_version_info: 'd1', nonce: 'dcds-1', type_url: CDS,
                 resources: [{name: 'cluster_eds', version: 'cv1',
                              resource: any(CDS, clusterEds)}]});
    let ack = await stream.next(CDS);
    assert.equal(ack.response_nonce, 'dcds-1');
    assert.equal(ack.error_detail, null);
    assert.deepEqual(ack.resource_names_subscribe, []);
    const added = await probe.update('cds');
    assert.equal(added.version, 'd1');
    assert.equal(added.added[0].name, 'cluster_eds');
    assert.equal(added.added[0].version, 'cv1');
    assert.equal(added.added[0].resource.lb_policy, 'LEAST_REQUEST');

    // Removal.
    stream.send({system_version_info: 'd2', nonce: 'dcds-2', type_url: CDS,
                 removed_resources: ['cluster_eds']});
    ack = await stream.next(CDS);
    assert.equal(ack.response_nonce, 'dcds-2');
    assert.deepEqual((await probe.update('cds')).removed, ['cluster_eds']);

    // A NACK names the resource.
    stream.send({nonce: 'deds-1', type_url: EDS,
                 resources: [{name: 'cluster_eds', version: 'ev1',
                              resource: any(CDS, clusterEds)}]});
    const nack = await stream.next(EDS);
    assert.equal(nack.response_nonce, 'deds-1');
    assert.equal(nack.error_detail.code, 3);
    assert.equal(
        nack.error_detail.message,
        "resource index 0: cluster_eds: resource type 'type.googleapis.com/envoy.config." +
            "cluster.v3.Cluster' does not match the response type 'type.googleapis.com/" +
            "envoy.config.endpoint.v3.ClusterLoadAssignment'");

    await probe.stop();
    console.log('ok - Delta ADS: subscribe, versions, removal, NACK');
  } catch (error) {
    probe.kill();
    throw error;
  }
}

async function main() {
  const server = await startServer();
  try {
    await stateOfTheWorld(server);
    await delta(server);
  } finally {
    server.stop();
  }
}

main().then(() => process.exit(0), (error) => {
  console.error(`FAIL: ${error.stack || error}`);
  process.exit(1);
});
