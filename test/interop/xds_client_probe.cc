// xds_client_probe: the xDS client as a command-line tool, for interop tests against
// management servers we did not write. It builds the client from a bootstrap (JSON), watches
// LDS and CDS (wildcard) and the RDS/EDS names given, accepts everything, and prints one JSON
// line per event on stdout: what it decoded, as JSON of our protos, with any fields our protos
// do not know (they survive decoding; their numbers are listed) and the resource re-encoded.
//
//   xds_client_probe --bootstrap FILE [--rds NAME]... [--eds NAME]... [--timeout-ms N]
//                    [--exit-on-stdin-eof]
//
// Output lines:
//   {"event":"update","type":"cds","version":"1","added":[{"name":..,"version":..,
//    "resource":{..},"unknown_fields":[..],"bytes":"<base64>"}],"removed":[..]}
//   {"event":"failed","type":"cds","reason":"ConnectionFailure"}
//   {"event":"stats","counters":{..},"gauges":{..}}        (at exit)
// Logs go to stderr.

#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/json_util.h"
#include "proxy/common/json.h"
#include "proxy/common/string_view.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/stats/stats.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "xds_client/config.h"
#include "xds_client/grpc_transport_impl.h"
#include "xds_client/xds_client_impl.h"

namespace Proxy::Xds {
namespace {

// Field numbers our protos do not know, with where they are ("filter_chains[0].filters[0]#7");
// Anys are opened when their type is linked in.
void collectUnknownFields(const google::protobuf::Message& message, const std::string& path,
                          std::vector<std::string>& out) {
  const auto* reflection = message.GetReflection();
  const auto& unknown = reflection->GetUnknownFields(message);
  for (int i = 0; i < unknown.field_count(); ++i) {
    out.push_back(absl::StrCat(path, "#", unknown.field(i).number()));
  }
  if (message.GetDescriptor() == google::protobuf::Any::descriptor()) {
    const auto& any = static_cast<const google::protobuf::Any&>(message);
    const std::string type_name = any.type_url().substr(any.type_url().rfind('/') + 1);
    const auto* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(type_name);
    if (descriptor == nullptr) {
      out.push_back(absl::StrCat(path, ": Any of unknown type ", any.type_url()));
      return;
    }
    std::unique_ptr<google::protobuf::Message> inner(
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor)->New());
    if (!inner->ParseFromString(any.value())) {
      out.push_back(absl::StrCat(path, ": Any does not parse as ", type_name));
      return;
    }
    collectUnknownFields(*inner, path, out);
    return;
  }
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const auto* field : fields) {
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      continue;
    }
    const std::string child = path.empty() ? field->name() : absl::StrCat(path, ".", field->name());
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
        collectUnknownFields(reflection->GetRepeatedMessage(message, field, i),
                             absl::StrCat(child, "[", i, "]"), out);
      }
    } else {
      collectUnknownFields(reflection->GetMessage(message, field), child, out);
    }
  }
}

std::string resourceJson(const DecodedResource& resource) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status =
      google::protobuf::util::MessageToJsonString(*resource.message, &json, options);
  if (!status.ok()) {
    json = absl::StrCat("{\"json_error\":", Json::quote(status.ToString()), "}");
  }
  std::vector<std::string> unknown;
  collectUnknownFields(*resource.message, "", unknown);
  std::vector<std::string> quoted;
  for (const auto& u : unknown) {
    quoted.push_back(Json::quote(u));
  }
  return absl::StrCat(
      "{\"name\":", Json::quote(resource.name), ",\"version\":", Json::quote(resource.version),
      ",\"resource\":", json, ",\"unknown_fields\":[", absl::StrJoin(quoted, ","),
      "],\"bytes\":", Json::quote(absl::Base64Escape(resource.message->SerializeAsString())), "}");
}

void emit(const std::string& line) {
  std::cout << line << "\n";
  std::cout.flush();
}

class PrintingWatcher : public Watcher {
 public:
  explicit PrintingWatcher(std::string type) : type_(std::move(type)) {}

  absl::Status onConfigUpdate(const std::vector<DecodedResource>& added,
                              const std::vector<std::string>& removed,
                              const std::string& version) override {
    std::vector<std::string> resources;
    for (const auto& resource : added) {
      resources.push_back(resourceJson(resource));
    }
    std::vector<std::string> names;
    for (const auto& name : removed) {
      names.push_back(Json::quote(name));
    }
    emit(absl::StrCat("{\"event\":\"update\",\"type\":", Json::quote(type_), ",\"version\":",
                      Json::quote(version), ",\"added\":[", absl::StrJoin(resources, ","),
                      "],\"removed\":[", absl::StrJoin(names, ","), "]}"));
    return absl::OkStatus();
  }

  void onConfigUpdateFailed(FailureReason reason) override {
    emit(absl::StrCat("{\"event\":\"failed\",\"type\":", Json::quote(type_),
                      ",\"reason\":", Json::quote(failureReasonName(reason)), "}"));
  }

 private:
  const std::string type_;
};

int usage() {
  std::cerr << "usage: xds_client_probe --bootstrap FILE [--rds NAME]... [--eds NAME]... "
               "[--timeout-ms N] [--exit-on-stdin-eof]\n";
  return 2;
}

int run(int argc, char** argv) {
  std::string bootstrap_path;
  std::vector<std::string> rds_names;
  std::vector<std::string> eds_names;
  int timeout_ms = 60000;
  bool exit_on_stdin_eof = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (arg == "--bootstrap") {
      bootstrap_path = value();
    } else if (arg == "--rds") {
      rds_names.push_back(value());
    } else if (arg == "--eds") {
      eds_names.push_back(value());
    } else if (arg == "--timeout-ms") {
      timeout_ms = std::stoi(value());
    } else if (arg == "--exit-on-stdin-eof") {
      exit_on_stdin_eof = true;
    } else {
      return usage();
    }
  }
  if (bootstrap_path.empty()) {
    return usage();
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("stderr"));

  std::ifstream file(bootstrap_path);
  std::stringstream text;
  text << file.rdbuf();
  envoy::config::bootstrap::v3::Bootstrap bootstrap;
  if (auto status = google::protobuf::util::JsonStringToMessage(text.str(), &bootstrap);
      !status.ok()) {
    emit(absl::StrCat("{\"event\":\"config_error\",\"message\":", Json::quote(status.ToString()),
                      "}"));
    return 1;
  }
  auto config = xdsConfigFromBootstrap(bootstrap);
  if (!config.ok()) {
    emit(absl::StrCat("{\"event\":\"config_error\",\"message\":",
                      Json::quote(asStd(config.status().message())), "}"));
    return 1;
  }

  RealTimeSource time_source;
  Event::DispatcherImpl dispatcher("main", time_source);
  Stats::Store store;
  int exit_code = 0;
  {
    XdsClientImpl client(dispatcher, *config, std::make_unique<GrpcXdsTransportFactory>(dispatcher),
                         Stats::Scope(store, ""));
    PrintingWatcher lds("lds"), cds("cds"), rds("rds"), eds("eds");
    std::vector<WatchHandle> handles;
    auto watch = [&](std::string_view type_url, const std::vector<std::string>& names,
                     Watcher& watcher) {
      if (config->types.count(std::string(type_url)) == 0) {
        return;
      }
      auto handle = client.watch(type_url, names, watcher);
      if (handle.ok()) {
        handles.push_back(*std::move(handle));
      } else {
        emit(absl::StrCat("{\"event\":\"watch_error\",\"message\":",
                          Json::quote(asStd(handle.status().message())), "}"));
      }
    };
    watch(kClusterTypeUrl, {}, cds);
    watch(kListenerTypeUrl, {}, lds);
    if (!eds_names.empty()) {
      watch(kClusterLoadAssignmentTypeUrl, eds_names, eds);
    }
    if (!rds_names.empty()) {
      watch(kRouteConfigurationTypeUrl, rds_names, rds);
    }

    auto sigterm = dispatcher.listenForSignal(SIGTERM, [&] { dispatcher.exit(); });
    auto sigint = dispatcher.listenForSignal(SIGINT, [&] { dispatcher.exit(); });
    auto timeout = dispatcher.createTimer([&] {
      emit("{\"event\":\"timeout\"}");
      exit_code = 3;
      dispatcher.exit();
    });
    timeout->enableTimer(std::chrono::milliseconds(timeout_ms));
    Event::FileEventPtr stdin_event;
    if (exit_on_stdin_eof) {
      stdin_event = dispatcher.createFileEvent(
          STDIN_FILENO,
          [&](uint32_t) {
            char buf[256];
            if (::read(STDIN_FILENO, buf, sizeof(buf)) <= 0) {
              dispatcher.exit();
            }
          },
          Event::FileTriggerType::Level, Event::FileReadyType::Read);
    }
    dispatcher.run(Event::Dispatcher::RunType::RunUntilExit);
    handles.clear();
  }

  std::vector<std::string> counters;
  store.forEachCounter([&](const Stats::Counter& c) {
    counters.push_back(absl::StrCat(Json::quote(c.name()), ":", c.value()));
  });
  std::vector<std::string> gauges;
  store.forEachGauge([&](const Stats::Gauge& g) {
    gauges.push_back(absl::StrCat(Json::quote(g.name()), ":", g.value()));
  });
  emit(absl::StrCat("{\"event\":\"stats\",\"counters\":{", absl::StrJoin(counters, ","),
                    "},\"gauges\":{", absl::StrJoin(gauges, ","), "}}"));
  return exit_code;
}

}  // namespace
}  // namespace Proxy::Xds

int main(int argc, char** argv) {
  return Proxy::Xds::run(argc, argv);
}
