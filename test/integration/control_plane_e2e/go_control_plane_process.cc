#include "test/integration/control_plane_e2e/go_control_plane_process.h"

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "proxy/common/string_view.h"
#include "test/integration/control_plane_e2e/e2e_support.h"
#include "test/integration/proxy_process.h"

namespace Proxy::ControlPlaneE2e {
namespace {

std::string stringOf(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? "" : it->second.string_value();
}

}  // namespace

GoControlPlaneProcess::GoControlPlaneProcess() {
  std::string pattern = "/tmp/go-control-plane-e2e-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
  }
  dir_ = pattern;
  stdout_path_ = dir_ + "/stdout.log";
  stderr_path_ = dir_ + "/stderr.log";
}

GoControlPlaneProcess::~GoControlPlaneProcess() {
  kill();
  if (std::getenv("PROXY_IT_KEEP_TMP") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

testing::AssertionResult GoControlPlaneProcess::start(std::chrono::milliseconds timeout) {
  absl::StatusOr<std::string> binary = goControlPlaneBinary();
  if (!binary.ok()) {
    return testing::AssertionFailure() << binary.status().message();
  }
  child_ = std::make_unique<ControlPlane::TestUtil::ChildProcess>(
      *binary,
      std::vector<std::string>{"--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0"},
      stdout_path_, stderr_path_);
  const std::regex xds(R"(xds listening on \S+:(\d+))");
  const std::regex admin(R"(admin listening on \S+:(\d+))");
  testing::AssertionResult ready = Integration::waitUntil(
      [&] {
        if (child_->waitForExit(0ms).has_value()) {
          return true;  // exited: reported below
        }
        const std::string text = Integration::readFile(stdout_path_);
        std::smatch xds_match;
        std::smatch admin_match;
        return std::regex_search(text, xds_match, xds) &&
               std::regex_search(text, admin_match, admin) &&
               absl::SimpleAtoi(xds_match[1].str(), &xds_port_) &&
               absl::SimpleAtoi(admin_match[1].str(), &admin_port_);
      },
      timeout, "the go-control-plane example's addresses");
  if (!child_->running()) {
    return testing::AssertionFailure() << "the go-control-plane example exited early; its log:\n"
                                       << log();
  }
  if (!ready) {
    return ready;
  }
  // A binary built from an older examples/go-control-plane serves one snapshot to every node.
  Integration::HttpRequest request;
  request.path = "/v1/status";
  request.host = "127.0.0.1";
  absl::StatusOr<Integration::HttpResponse> status =
      Integration::httpRequest(admin_port_, request, 10s);
  if (!status.ok() || !absl::StrContains(status->body, "\"nodes\"")) {
    return testing::AssertionFailure()
           << "'" << *binary
           << "' predates examples/go-control-plane's per-node snapshots: run "
              "deploy/install-peers.sh";
  }
  return testing::AssertionSuccess();
}

void GoControlPlaneProcess::kill() {
  if (child_ != nullptr && child_->running()) {
    child_->signal(SIGKILL);
    child_->waitForExit(10s);
  }
}

std::string GoControlPlaneProcess::log() const {
  return Integration::readFile(stderr_path_);
}

testing::AssertionResult GoControlPlaneProcess::putSnapshot(std::string_view yaml,
                                                            std::string_view node) {
  Integration::HttpRequest request;
  request.method = "PUT";
  request.path = absl::StrCat("/v1/snapshot?node=", asAbsl(node));
  request.host = "127.0.0.1";
  request.body = std::string(yaml);
  request.headers.emplace_back("content-type", "application/yaml");
  absl::StatusOr<Integration::HttpResponse> response =
      Integration::httpRequest(admin_port_, request, 10s);
  if (!response.ok()) {
    return testing::AssertionFailure() << response.status();
  }
  if (response->status != 200) {
    return testing::AssertionFailure()
           << "PUT " << request.path << ": " << response->status << " " << response->body;
  }
  return testing::AssertionSuccess();
}

absl::StatusOr<std::vector<GoControlPlaneProcess::Nack>> GoControlPlaneProcess::nacks() {
  Integration::HttpRequest request;
  request.path = "/v1/status";
  request.host = "127.0.0.1";
  absl::StatusOr<Integration::HttpResponse> response =
      Integration::httpRequest(admin_port_, request, 10s);
  if (!response.ok()) {
    return response.status();
  }
  google::protobuf::Struct root;
  if (response->status != 200 ||
      !google::protobuf::util::JsonStringToMessage(response->body, &root).ok()) {
    return absl::InternalError(
        absl::StrCat("GET /v1/status: ", response->status, " ", response->body));
  }
  std::vector<Nack> out;
  auto list = root.fields().find("nacks");
  if (list == root.fields().end()) {
    return out;
  }
  for (const auto& value : list->second.list_value().values()) {
    const google::protobuf::Struct& entry = value.struct_value();
    Nack nack;
    nack.node = stringOf(entry, "node");
    nack.type_url = stringOf(entry, "type_url");
    nack.error_detail = stringOf(entry, "error_detail");
    auto delta = entry.fields().find("delta");
    nack.delta = delta != entry.fields().end() && delta->second.bool_value();
    out.push_back(std::move(nack));
  }
  return out;
}

absl::StatusOr<GoControlPlaneProcess::Nack> GoControlPlaneProcess::waitForNack(
    std::string_view node, std::string_view type_url, std::chrono::milliseconds timeout) {
  std::optional<Nack> found;
  testing::AssertionResult seen = Integration::waitUntil(
      [&] {
        absl::StatusOr<std::vector<Nack>> all = nacks();
        if (!all.ok()) {
          return false;
        }
        for (const Nack& nack : *all) {
          if (nack.node == node && nack.type_url == type_url) {
            found = nack;
            return true;
          }
        }
        return false;
      },
      timeout, absl::StrCat("a NACK of ", asAbsl(type_url), " from node '", asAbsl(node), "'"));
  if (!seen) {
    return absl::DeadlineExceededError(seen.message());
  }
  return *found;
}

}  // namespace Proxy::ControlPlaneE2e
