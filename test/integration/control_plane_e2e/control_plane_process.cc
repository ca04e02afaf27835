#include "test/integration/control_plane_e2e/control_plane_process.h"

#include <signal.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "proxy/common/string_view.h"
#include "test/integration/proxy_process.h"

namespace Proxy::ControlPlaneE2e {
namespace {

const google::protobuf::Value* find(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? nullptr : &it->second;
}

}  // namespace

ControlPlaneProcess::ControlPlaneProcess() {
  std::string pattern = "/tmp/control-plane-e2e-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
  }
  dir_ = pattern;
  snapshot_path_ = dir_ + "/snapshot.yaml";
  port_file_ = dir_ + "/ports";
  stderr_path_ = dir_ + "/stderr.log";
}

ControlPlaneProcess::~ControlPlaneProcess() {
  kill();
  // Like ProxyProcess: PROXY_IT_KEEP_TMP keeps the snapshot and the log for a post-mortem.
  if (std::getenv("PROXY_IT_KEEP_TMP") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

std::string ControlPlaneProcess::binaryPath() {
  if (const char* env = std::getenv("CONTROL_PLANE_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
  return CONTROL_PLANE_BINARY_PATH;
}

testing::AssertionResult ControlPlaneProcess::start(const std::string& snapshot_yaml,
                                                    uint32_t xds_port,
                                                    std::chrono::milliseconds timeout) {
  if (running()) {
    return testing::AssertionFailure() << "control-plane-stub is already running";
  }
  std::ofstream(snapshot_path_, std::ios::trunc) << snapshot_yaml;
  std::remove(port_file_.c_str());
  // --watch-interval-ms 0: tests change the snapshot through the admin API only.
  std::vector<std::string> args{"--xds-address",       absl::StrCat("127.0.0.1:", xds_port),
                                "--admin-address",     "127.0.0.1:0",
                                "--snapshot",          snapshot_path_,
                                "--port-file",         port_file_,
                                "--watch-interval-ms", "0"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  child_ = std::make_unique<ControlPlane::TestUtil::ChildProcess>(
      binaryPath(), args, dir_ + "/stdout.log", stderr_path_);
  const std::regex ports(R"(xds=\S+:(\d+) admin=\S+:(\d+))");
  testing::AssertionResult ready = Integration::waitUntil(
      [&] {
        if (!child_->running() || child_->waitForExit(0ms).has_value()) {
          return true;  // exited: stop waiting and report below
        }
        const std::string text = Integration::readFile(port_file_);
        std::smatch match;
        if (!std::regex_search(text, match, ports)) {
          return false;
        }
        return absl::SimpleAtoi(match[1].str(), &xds_port_) &&
               absl::SimpleAtoi(match[2].str(), &admin_port_);
      },
      timeout, "control-plane-stub's port file");
  if (!ready) {
    return ready;
  }
  if (!child_->running()) {
    return testing::AssertionFailure() << "control-plane-stub exited early; its log:\n" << log();
  }
  return testing::AssertionSuccess();
}

void ControlPlaneProcess::kill() {
  if (running()) {
    child_->signal(SIGKILL);
    child_->waitForExit(10s);
  }
}

testing::AssertionResult ControlPlaneProcess::stop(std::chrono::milliseconds timeout) {
  if (!running()) {
    return testing::AssertionFailure() << "control-plane-stub is not running";
  }
  child_->signal(SIGTERM);
  std::optional<int> code = child_->waitForExit(timeout);
  if (!code.has_value()) {
    return testing::AssertionFailure() << "control-plane-stub did not exit after SIGTERM";
  }
  if (*code != 0) {
    return testing::AssertionFailure()
           << "control-plane-stub exited with " << *code << "; its log:\n"
           << log();
  }
  return testing::AssertionSuccess();
}

std::string ControlPlaneProcess::log() const {
  return Integration::readFile(stderr_path_);
}

absl::StatusOr<Integration::HttpResponse> ControlPlaneProcess::admin(std::string_view method,
                                                                     std::string_view path,
                                                                     std::string_view body) {
  Integration::HttpRequest request;
  request.method = std::string(method);
  request.path = std::string(path);
  request.host = "127.0.0.1";
  request.body = std::string(body);
  if (!body.empty()) {
    request.headers.emplace_back("content-type", "application/yaml");
  }
  return Integration::httpRequest(admin_port_, request, 10s);
}

absl::StatusOr<Integration::HttpResponse> ControlPlaneProcess::putSnapshot(std::string_view yaml,
                                                                           std::string_view query) {
  return admin("PUT", query.empty() ? "/v1/snapshot" : absl::StrCat("/v1/snapshot?", asAbsl(query)),
               yaml);
}

absl::StatusOr<Integration::HttpResponse> ControlPlaneProcess::getSnapshot() {
  return admin("GET", "/v1/snapshot", "");
}

absl::StatusOr<google::protobuf::Struct> ControlPlaneProcess::status() {
  absl::StatusOr<Integration::HttpResponse> response = admin("GET", "/v1/status", "");
  if (!response.ok()) {
    return response.status();
  }
  if (response->status != 200) {
    return absl::InternalError(absl::StrCat("GET /v1/status: ", response->status));
  }
  google::protobuf::Struct root;
  if (!google::protobuf::util::JsonStringToMessage(response->body, &root).ok()) {
    return absl::InternalError(absl::StrCat("/v1/status is not JSON: ", response->body));
  }
  return root;
}

absl::StatusOr<std::vector<google::protobuf::Struct>> ControlPlaneProcess::typeStatuses(
    std::string_view node, std::string_view type) {
  absl::StatusOr<google::protobuf::Struct> root = status();
  if (!root.ok()) {
    return root.status();
  }
  std::vector<google::protobuf::Struct> results;
  const google::protobuf::Value* nodes = find(*root, "nodes");
  if (nodes == nullptr) {
    return results;
  }
  for (const auto& entry : nodes->list_value().values()) {
    const google::protobuf::Value* name = find(entry.struct_value(), "node");
    const google::protobuf::Value* streams = find(entry.struct_value(), "streams");
    if (name == nullptr || name->string_value() != node || streams == nullptr) {
      continue;
    }
    for (const auto& stream : streams->list_value().values()) {
      const google::protobuf::Value* types = find(stream.struct_value(), "types");
      if (types == nullptr) {
        continue;
      }
      for (const auto& t : types->list_value().values()) {
        const google::protobuf::Value* short_name = find(t.struct_value(), "type");
        if (short_name != nullptr && short_name->string_value() == type) {
          google::protobuf::Struct result = t.struct_value();
          for (const char* counter : {"requests", "responses"}) {
            if (const google::protobuf::Value* v = find(stream.struct_value(), counter)) {
              (*result.mutable_fields())[counter] = *v;
            }
          }
          results.push_back(std::move(result));
        }
      }
    }
  }
  return results;
}

absl::StatusOr<google::protobuf::Struct> ControlPlaneProcess::typeStatus(std::string_view node,
                                                                         std::string_view type) {
  absl::StatusOr<std::vector<google::protobuf::Struct>> all = typeStatuses(node, type);
  if (!all.ok()) {
    return all.status();
  }
  if (all->empty()) {
    return absl::NotFoundError(
        absl::StrCat("no open stream of node '", asAbsl(node), "' subscribes to ", asAbsl(type)));
  }
  return all->front();
}

absl::StatusOr<std::vector<std::string>> ControlPlaneProcess::subscribedNames(
    std::string_view node, std::string_view type) {
  absl::StatusOr<std::vector<google::protobuf::Struct>> all = typeStatuses(node, type);
  if (!all.ok()) {
    return all.status();
  }
  std::set<std::string> names;
  for (const google::protobuf::Struct& entry : *all) {
    if (const google::protobuf::Value* list = find(entry, "names")) {
      for (const auto& value : list->list_value().values()) {
        names.insert(value.string_value());
      }
    }
  }
  return std::vector<std::string>(names.begin(), names.end());
}

testing::AssertionResult ControlPlaneProcess::waitForAck(std::string_view node,
                                                         std::string_view type,
                                                         std::string_view version,
                                                         std::chrono::milliseconds timeout) {
  std::string last = "(no status)";
  testing::AssertionResult acked = Integration::waitUntil(
      [&] {
        absl::StatusOr<std::vector<google::protobuf::Struct>> entries = typeStatuses(node, type);
        if (!entries.ok() || entries->empty()) {
          last = entries.ok() ? "no stream" : std::string(entries.status().message());
          return false;
        }
        last.clear();
        bool all = true;
        for (const google::protobuf::Struct& entry : *entries) {
          const google::protobuf::Value* acked_version = find(entry, "acked_version");
          const std::string acked = acked_version == nullptr ? "" : acked_version->string_value();
          absl::StrAppend(&last, last.empty() ? "" : ", ", acked);
          all = all && acked == version;
        }
        return all;
      },
      timeout,
      absl::StrCat("node '", asAbsl(node), "' to ACK ", asAbsl(type), " version '", asAbsl(version),
                   "'"));
  if (!acked) {
    acked << " (last seen: " << last << ")";
  }
  return acked;
}

}  // namespace Proxy::ControlPlaneE2e
