'use strict';
// Interop, the other direction: the proxy accepts resources encoded from the UPSTREAM Envoy
// protos. An ADS server written here (@grpc/grpc-js, services and resource bodies from
// @grpc/grpc-js-xds's deps/ via @grpc/proto-loader) configures the real `proxy` binary, whose
// bootstrap has only dynamic_resources. The test checks that
//  - the proxy's requests decode upstream (node, type_url, names, versions, nonces) and it ACKs
//    CDS, EDS, LDS and RDS;
//  - a field our protos leave out (VirtualHost.rate_limits, field 6) arrives as an unknown
//    field and is NACKed by number rather than silently ignored;
//  - HTTP traffic through the proxy reaches a Node.js upstream as the resources say (EDS
//    endpoint, prefix_rewrite, request_headers_to_add);
//  - a listener the proxy rejects is NACKed with the previous version and a message naming it,
//    shows in /config_dump's error_state, and traffic keeps flowing;
//  - a route update is ACKed and followed.
//
// usage: node proxy_upstream_test.js --deps DIR --proxy PATH

const assert = require('assert/strict');
const childProcess = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');

const grpc = require('@grpc/grpc-js');
const {TIMEOUT_MS, httpRequest, tempDir, waitFor} =
    require('../grpc_js_xds/control_plane_process');
const upstream = require('./upstream');
const {LDS, RDS, CDS, EDS, HCM, ROUTER, HTTP_OPTIONS, STDOUT_LOG} = upstream;

function argument(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    throw new Error(`missing ${name}`);
  }
  return process.argv[i + 1];
}
const PROXY = argument('--proxy');
const protos = upstream.load(argument('--deps'));

// ---- The HTTP upstream: answers with its name and remembers what it received ------------------

async function startHttpUpstream(name) {
  const requests = [];
  const server = http.createServer((request, response) => {
    requests.push({path: request.url, headers: request.headers});
    response.setHeader('x-upstream', name);
    response.end(`hello from ${name}\npath: ${request.url}\n`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {port: server.address().port, requests, stop: () => server.close()};
}

// ---- The ADS server ----------------------------------------------------------------------------

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

async function startAdsServer() {
  const streams = [];
  const server = new grpc.Server();
  server.addService(
      protos.services.envoy.service.discovery.v3.AggregatedDiscoveryService.service, {
        StreamAggregatedResources: (call) => streams.push(new ServerStream(call)),
        DeltaAggregatedResources: (call) => call.end(),
      });
  const port = await new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(),
                     (error, port) => (error ? reject(error) : resolve(port)));
  });
  return {
    port,
    stream: () => waitFor(() => streams[0], 'the proxy\'s ADS stream'),
    stop: () => server.forceShutdown(),
  };
}

// ---- The proxy ---------------------------------------------------------------------------------

function startProxy(adsPort) {
  const dir = tempDir('proxy-upstream-protos-');
  const bootstrap = `node: {id: upstream-protos-proxy, cluster: interop}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {cluster_name: xds_cluster}
  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds_cluster
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": ${HTTP_OPTIONS}
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds_cluster
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${adsPort}}}}
`;
  fs.writeFileSync(path.join(dir, 'bootstrap.yaml'), bootstrap);
  const logPath = path.join(dir, 'proxy.log');
  const log = fs.openSync(logPath, 'w');
  const adminPath = path.join(dir, 'admin_address');
  const child = childProcess.spawn(
      PROXY, ['-c', path.join(dir, 'bootstrap.yaml'), '--concurrency', '1', '--drain-time-s', '1',
              '--log-level', 'info', '--admin-address-path', adminPath],
      {stdio: ['ignore', log, log]});
  fs.closeSync(log);
  let exitCode = null;
  child.on('exit', (code, signal) => {
    exitCode = code === null ? signal : code;
  });
  const proxy = {
    log: () => fs.readFileSync(logPath, 'utf8'),
    adminPort: 0,
    async admin(urlPath) {
      return httpRequest(proxy.adminPort, 'GET', urlPath);
    },
    async listenerPort(name) {
      const listeners = JSON.parse((await proxy.admin('/listeners?format=json')).body);
      const entry = listeners.listener_statuses.find((l) => l.name === name);
      return entry && entry.local_address.socket_address.port_value;
    },
    stop: () => child.kill('SIGKILL'),
  };
  return waitFor(() => {
    assert.equal(exitCode, null, `the proxy exited early:\n${proxy.log()}`);
    const text = fs.existsSync(adminPath) ? fs.readFileSync(adminPath, 'utf8') : '';
    const match = /:(\d+)\s*$/.exec(text);
    if (match) {
      proxy.adminPort = Number(match[1]);
    }
    return match && proxy;
  }, 'the proxy\'s admin address file');
}

// ---- The resources, as upstream objects --------------------------------------------------------

const cluster = {
  name: 'node_upstream',
  type: 'EDS',
  connect_timeout: {seconds: 1},
  lb_policy: 'ROUND_ROBIN',
  eds_cluster_config: {eds_config: {ads: {}, resource_api_version: 'V3'}},
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': HTTP_OPTIONS,
      explicit_http_config: {http_protocol_options: {}},
    },
  },
};

function assignment(port) {
  return {
    cluster_name: 'node_upstream',
    endpoints: [{
      locality: {region: 'interop'},
      lb_endpoints: [{endpoint: {address: {socket_address: {address: '127.0.0.1',
                                                            port_value: port}}}}],
    }],
  };
}

function httpListener(name, port, routeConfigName) {
  return {
    name,
    address: {socket_address: {address: '127.0.0.1', port_value: port}},
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': HCM,
          stat_prefix: name,
          rds: {config_source: {ads: {}, resource_api_version: 'V3'},
                route_config_name: routeConfigName},
          http_filters: [{name: 'envoy.filters.http.router', typed_config: {'@type': ROUTER}}],
          access_log: [{name: 'envoy.access_loggers.stdout', typed_config: {'@type': STDOUT_LOG}}],
        },
      }],
    }],
  };
}

function routes(rewrite, extra = {}) {
  return {
    name: 'routes',
    virtual_hosts: [{
      name: 'all',
      domains: ['*'],
      ...extra,
      routes: [
        {
          match: {prefix: '/api/'},
          route: {cluster: 'node_upstream', prefix_rewrite: rewrite},
          request_headers_to_add: [{header: {key: 'x-route', value: `rewrite-to-${rewrite}`}}],
        },
        {match: {prefix: '/'}, direct_response: {status: 404}},
      ],
    }],
  };
}

// ---- The script --------------------------------------------------------------------------------

async function main() {
  const web = await startHttpUpstream('node-upstream');
  const ads = await startAdsServer();
  const proxy = await startProxy(ads.port);
  try {
    const stream = await ads.stream();
    // Sends a response encoded with the upstream protos and returns the proxy's answer.
    const respond = async (typeUrl, version, nonce, resources) => {
      stream.send({version_info: version, nonce, type_url: typeUrl,
                   resources: resources.map((r) => protos.any(typeUrl, r))});
      const answer = await stream.next(typeUrl);
      assert.equal(answer.response_nonce, nonce, `${typeUrl}: the answer carries the nonce`);
      return answer;
    };
    const expectAck = (answer, version) => {
      assert.equal(answer.error_detail, null,
                   `${answer.type_url} ${version} ACKed: ${JSON.stringify(answer.error_detail)}`);
      assert.equal(answer.version_info, version);
    };

    // The proxy's first request: CDS, wildcard, with the node.
    const cdsRequest = await stream.next(CDS);
    assert.equal(stream.all[0].type_url, CDS);
    assert.equal(stream.all[0].node.id, 'upstream-protos-proxy');
    assert.equal(stream.all[0].node.cluster, 'interop');
    assert.equal(stream.all[0].node.user_agent_name, 'xds-proxy');
    assert.deepEqual(cdsRequest.resource_names, []);
    expectAck(await respond(CDS, 'c1', 'n-cds-1', [cluster]), 'c1');

    const edsRequest = await stream.next(EDS);
    assert.deepEqual(edsRequest.resource_names, ['node_upstream']);
    const eds = await respond(EDS, 'e1', 'n-eds-1', [assignment(web.port)]);
    expectAck(eds, 'e1');
    assert.deepEqual(eds.resource_names, ['node_upstream']);

    const ldsRequest = await stream.next(LDS);
    assert.deepEqual(ldsRequest.resource_names, []);
    expectAck(await respond(LDS, 'l1', 'n-lds-1', [httpListener('ingress', 0, 'routes')]), 'l1');

    const rdsRequest = await stream.next(RDS);
    assert.deepEqual(rdsRequest.resource_names, ['routes']);
    // Not in our protos: an unknown field, refused by number (the proxy would not apply it).
    const unknown = await respond(RDS, 'r0', 'n-rds-0', [routes('/v1/', {
      rate_limits: [{actions: [{generic_key: {descriptor_value: 'interop'}}]}],
    })]);
    assert.equal(unknown.error_detail.message,
                 'resource index 0: routes: virtual_hosts[0]: unknown field 6: not supported');
    expectAck(await respond(RDS, 'r1', 'n-rds-1', [routes('/v1/')]), 'r1');
    console.log('ok - the proxy ACKs CDS, EDS, LDS and RDS encoded with the upstream protos');

    // Traffic: /api/hello -> /v1/hello at the Node upstream, with the route's header.
    await waitFor(async () => (await proxy.admin('/ready')).status === 200,
                  'the proxy to be ready');
    const port = await proxy.listenerPort('ingress');
    assert.ok(port > 0);
    let response = await httpRequest(port, 'GET', '/api/hello');
    assert.equal(response.status, 200, response.body);
    assert.equal(response.body, 'hello from node-upstream\npath: /v1/hello\n');
    assert.equal(response.headers['x-upstream'], 'node-upstream');
    const seen = web.requests[web.requests.length - 1];
    assert.equal(seen.path, '/v1/hello');
    assert.equal(seen.headers['x-route'], 'rewrite-to-/v1/');
    assert.equal((await httpRequest(port, 'GET', '/other')).status, 404);
    console.log('ok - HTTP traffic follows the upstream-encoded resources');

    // A listener the proxy rejects (its port is held by a socket of this test): NACKed with
    // the previous version and a message naming it; `ingress` keeps serving.
    const holder = net.createServer();
    await new Promise((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const heldPort = holder.address().port;
    const lds2 = await respond(LDS, 'l2', 'n-lds-2', [httpListener('ingress', 0, 'routes'),
                                                      httpListener('clash', heldPort, 'routes')]);
    holder.close();
    assert.equal(lds2.version_info, 'l1', 'a NACK carries the last accepted version');
    assert.equal(lds2.error_detail.code, 3);
    const bindError = `address: cannot bind '127.0.0.1:${heldPort}': Address already in use`;
    assert.equal(lds2.error_detail.message, `resource index 1: clash: ${bindError}`);
    const dump = JSON.parse((await proxy.admin('/config_dump')).body);
    const listenersDump = dump.configs.find((c) => c['@type'].endsWith('ListenersConfigDump'));
    const clash = listenersDump.dynamic_listeners.find((l) => l.name === 'clash');
    assert.ok(clash && clash.error_state, JSON.stringify(listenersDump.dynamic_listeners));
    assert.equal(clash.error_state.details, bindError);
    assert.equal(clash.error_state.failed_configuration.name, 'clash');
    response = await httpRequest(port, 'GET', '/api/still');
    assert.equal(response.body, 'hello from node-upstream\npath: /v1/still\n');
    console.log('ok - a rejected listener is NACKed and in error_state; traffic keeps flowing');

    // A route update.
    expectAck(await respond(RDS, 'r2', 'n-rds-2', [routes('/v2/')]), 'r2');
    response = await httpRequest(port, 'GET', '/api/hello');
    assert.equal(response.body, 'hello from node-upstream\npath: /v2/hello\n');
    console.log('ok - an upstream-encoded route update is ACKed and followed');
  } catch (error) {
    console.error(`proxy log:\n${proxy.log()}`);
    throw error;
  } finally {
    proxy.stop();
    ads.stop();
    web.stop();
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
