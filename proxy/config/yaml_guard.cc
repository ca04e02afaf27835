#include "proxy/config/yaml_guard.h"

#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/exceptions.h"
#include "yaml-cpp/mark.h"
#include "yaml-cpp/parser.h"

namespace Proxy::Config {
namespace {

uint64_t saturatingAdd(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

// Counts, per anchor, the nodes of the node it names (aliases inside expanded), and what the
// aliases add. Counts saturate, so ten levels of ten aliases (10^10) or a hundred levels
// cannot overflow. After the first problem the rest of the document is only parsed.
class AliasCounter : public YAML::EventHandler {
 public:
  explicit AliasCounter(uint64_t max_alias_nodes) : max_alias_nodes_(max_alias_nodes) {}

  const absl::Status& status() const { return status_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override { leaf(anchor); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    leaf(anchor);
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open_.push_back(Open{anchor, 1});
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open_.push_back(Open{anchor, 1});
  }
  void OnMapEnd() override { close(); }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (!status_.ok()) {
      return;
    }
    auto it = sizes_.find(anchor);
    if (it == sizes_.end()) {
      // yaml-cpp reports an undefined anchor itself, so this one is defined but not closed
      // yet: the alias is inside the node it names.
      status_ = absl::InvalidArgumentError(
          absl::StrCat("yaml alias at line ", mark.line + 1, ", column ", mark.column + 1,
                       " names a node that contains it (a cycle)"));
      return;
    }
    added_ = saturatingAdd(added_, it->second);
    if (added_ > max_alias_nodes_) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat("yaml aliases would add more than ", max_alias_nodes_,
                       " nodes to the document (limit reached at line ", mark.line + 1, ", column ",
                       mark.column + 1, ")"));
      return;
    }
    add(it->second);
  }

 private:
  struct Open {
    YAML::anchor_t anchor;
    uint64_t size;  // nodes so far, itself included
  };

  void leaf(YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) {
      sizes_[anchor] = 1;
    }
    add(1);
  }
  void close() {
    if (open_.empty()) {
      return;
    }
    const Open done = open_.back();
    open_.pop_back();
    if (done.anchor != YAML::NullAnchor) {
      sizes_[done.anchor] = done.size;
    }
    add(done.size);
  }
  void add(uint64_t nodes) {
    if (!open_.empty()) {
      open_.back().size = saturatingAdd(open_.back().size, nodes);
    }
  }

  const uint64_t max_alias_nodes_;
  std::vector<Open> open_;
  std::unordered_map<YAML::anchor_t, uint64_t> sizes_;
  uint64_t added_ = 0;
  absl::Status status_;
};

}  // namespace

absl::Status checkYamlAliases(std::string_view text, uint64_t max_alias_nodes) {
  std::istringstream in{std::string(text)};
  AliasCounter counter(max_alias_nodes);
  try {
    // The first document only: it is all the loader reads (YAML::Load), and on some broken
    // input yaml-cpp reports documents without end (found by snapshot_loader_fuzz).
    YAML::Parser parser(in);
    parser.HandleNextDocument(counter);
  } catch (const YAML::Exception&) {
    // A syntax error: the loader finds it again and reports it with its line.
  }
  return counter.status();
}

}  // namespace Proxy::Config
