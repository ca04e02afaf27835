#pragma once

// Which fields of the config protos the proxy implements, and the refusal of every other one.
//
// protos/ holds more of Envoy's API than the proxy implements (so that Envoy's configs parse
// and the wire stays compatible). A field that parses but has no effect is a lie to the user,
// so every decoded bootstrap and xDS resource is walked by reflection against one table of the
// fields we implement, per message type; any other field that is set is refused with its path:
//
//   filter_chains[0].filters[0].typed_config.request_headers_timeout: not supported
//
// A field added to protos/ later is therefore refused until someone implements it and adds
// it to the table (field_support.cc). Set means what protobuf's reflection lists: a singular
// scalar that differs from its default, a present message, a non-empty list or map.
//
// Unknown fields (on the wire but not in our subset of the API, e.g. Listener field 32,
// filter_chain_matcher, sent by a management server built on upstream's protos) are refused
// too, by number: "filter_chains[0]: unknown field 32: not supported". Ignoring them would
// be the same bug as ignoring a known field. (YAML/JSON never gets that far: the loader already
// rejects names it does not know.)
//
// An Any is walked as the message it holds when that type is in our protos (typed_config of
// the HTTP connection manager, tcp_proxy, the router, access loggers, HttpProtocolOptions);
// Any of a type we do not have is left to the semantic checks (validation.h), which refuse
// the ones we cannot run (unknown network/HTTP filters, transport sockets, loggers).
//
// checkSupportedFields() first reads the message's serialized bytes (field numbers against the
// table, no reflection): a clean message, the common case, costs a fraction of the walk; only
// when the bytes show anything else does the walk run and report.
//
// This checks presence only. The semantic checks (validation.h) stay in charge of values
// (an enum value we do not implement, a bad regex, a file-based config source, ...).
// Pure functions: safe from any thread.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

namespace Proxy::Config {

// Where the message sits, for rows whose support depends on it (`accepts`). None does today:
// HTTP/2 upstream, once only for the xDS client's gRPC clusters, is supported for every cluster.
struct FieldCheckContext {};

// The first field set in `message` (recursively) that the proxy does not implement, as
// "<path>.<field>: not supported". `path` is prepended ("" for an xDS resource).
absl::Status checkSupportedFields(const google::protobuf::Message& message,
                                  const std::string& path = "",
                                  const FieldCheckContext& context = {});
// The same, for a message parsed from `serialized` (an xDS resource as received): its bytes are
// read as they are, not serialized again.
absl::Status checkSupportedFieldsAsReceived(const google::protobuf::Message& message,
                                            std::string_view serialized,
                                            const std::string& path = "",
                                            const FieldCheckContext& context = {});

// Every refused field of `message`, in walk order: for tests and tools that want them all.
// `field` is null for an unknown field.
struct UnsupportedField {
  std::string path;
  const google::protobuf::Descriptor* message = nullptr;
  const google::protobuf::FieldDescriptor* field = nullptr;
  std::string reason;  // "not supported" or "unknown field N: not supported"
};
std::vector<UnsupportedField> findUnsupportedFields(const google::protobuf::Message& message,
                                                    const std::string& path = "",
                                                    const FieldCheckContext& context = {});

// One row of the table: `message`.`field` is implemented (when reached through the field
// `via`, if set; when `condition` holds, if set).
struct ImplementedField {
  const char* message;    // full name, e.g. "envoy.config.listener.v3.Listener"
  const char* field;      // e.g. "stat_prefix"
  const char* via;        // full name of the field holding the message, or nullptr for any
  const char* condition;  // what `accepts` checks, for messages ("true"); nullptr: always
  bool (*accepts)(const google::protobuf::Message& parent,
                  const google::protobuf::FieldDescriptor& field, const FieldCheckContext& context);
};
const std::vector<ImplementedField>& implementedFields();

}  // namespace Proxy::Config
