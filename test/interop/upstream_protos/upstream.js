'use strict';
// The UPSTREAM Envoy protos, as shipped by @grpc/grpc-js-xds under deps/ (envoy-api, xds,
// googleapis, protoc-gen-validate), loaded at run time with @grpc/proto-loader: the gRPC
// services (ADS, Delta ADS, per-type services) and a protobufjs root to encode and decode
// resource bodies. Nothing here comes from our protos/.

const assert = require('assert/strict');
const path = require('path');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const {loadProtosWithOptionsSync} = require('@grpc/proto-loader/build/src/util');

const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const RDS = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const HTTP_OPTIONS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const STDOUT_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';

function load(deps) {
  const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map(
      (dir) => path.join(deps, dir));
  const services = grpc.loadPackageDefinition(protoLoader.loadSync([
    'envoy/service/discovery/v3/ads.proto',
    'envoy/service/cluster/v3/cds.proto',
    'envoy/service/endpoint/v3/eds.proto',
  ], {keepCase: true, longs: String, enums: String, defaults: true, arrays: true, oneofs: true,
      includeDirs}));
  const root = loadProtosWithOptionsSync([
    'envoy/config/listener/v3/listener.proto',
    'envoy/config/route/v3/route.proto',
    'envoy/config/cluster/v3/cluster.proto',
    'envoy/config/endpoint/v3/endpoint.proto',
    'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
    'envoy/extensions/filters/http/router/v3/router.proto',
    'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
    'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
    'envoy/extensions/access_loggers/stream/v3/stream.proto',
  ], {keepCase: true, includeDirs});

  const typeOf = (typeUrl) => root.lookupType(typeUrl.split('/').pop());

  // protobufjs's fromObject ignores keys it does not know: check every key names a field, so a
  // typo cannot silently drop what a test means to send.
  function checkKeys(type, object, where) {
    type.resolveAll();
    for (const [key, value] of Object.entries(object)) {
      if (key === '@type' && type.fullName === '.google.protobuf.Any') {
        const rest = Object.assign({}, object);
        delete rest['@type'];
        checkKeys(typeOf(value), rest, `${where}(${value})`);
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


  // Checks that upstream knows every field of `bytes` as `type`, down through sub-messages,
  // map values and Anys (by their type_url): each tag names a field of the upstream type, and
  // message fields are length-delimited. protobufjs's decode drops unknown fields silently, so
  // this walks the wire format itself. Field order is not checked (any order is valid protobuf).
  function checkKnown(type, bytes, where) {
    type.resolveAll();
    const reader = protobuf.Reader.create(bytes);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      const id = tag >>> 3;
      const wireType = tag & 7;
      const field = type.fieldsById[id];
      assert.ok(field, `${where}: field #${id} is not in upstream ${type.fullName}`);
      const nested = field.resolvedType;
      if (!nested || nested.fields === undefined) {
        reader.skipType(wireType);  // a scalar or an enum
        continue;
      }
      assert.equal(wireType, 2, `${where}.${field.name}: a message is length-delimited`);
      let value = reader.bytes();
      if (field.map) {
        // A map entry: key = 1, value = 2.
        const entry = protobuf.Reader.create(value);
        value = null;
        while (entry.pos < entry.len) {
          const entryTag = entry.uint32();
          if (entryTag >>> 3 === 2) {
            value = entry.bytes();
          } else {
            entry.skipType(entryTag & 7);
          }
        }
        if (value === null) {
          continue;
        }
      }
      checkMessage(nested, value, `${where}.${field.name}`);
    }
  }

  function checkMessage(type, bytes, where) {
    if (type.fullName === '.google.protobuf.Any') {
      const any = type.decode(bytes);
      checkKnown(typeOf(any.type_url), any.value, `${where}(${any.type_url})`);
    } else {
      checkKnown(type, bytes, where);
    }
  }

  return {
    services,
    root,
    typeOf,
    // An upstream-encoded Any: any(LDS, {...listener fields, nested Anys as {'@type', ...}}).
    any(typeUrl, object) {
      const type = typeOf(typeUrl);
      checkKeys(type, object, typeUrl);
      return {type_url: typeUrl, value: Buffer.from(type.encode(type.fromObject(object)).finish())};
    },
    // Decodes an Any ({type_url, value}) with the upstream type its type_url names, checking
    // that upstream knows every field of it (checkKnown). Returns the message as a plain
    // object: proto field names, enums as names, 64-bit integers as strings, nested Anys
    // expanded to {'@type', ...fields} and bytes as base64.
    decodeAny(any, expectedTypeUrl) {
      assert.equal(any.type_url, expectedTypeUrl);
      const type = typeOf(any.type_url);
      const bytes = Buffer.from(any.value);
      checkKnown(type, bytes, any.type_url);
      return type.toObject(type.decode(bytes), {longs: String, enums: String, json: true});
    },
  };
}

module.exports = {load, LDS, RDS, CDS, EDS, HCM, ROUTER, TCP_PROXY, HTTP_OPTIONS, STDOUT_LOG};
