// Fuzzes the control plane's snapshot loader as PUT /v1/snapshot and the --snapshot file drive
// it: YAML (or JSON) text -> the YAML alias guard -> SnapshotFile -> the proxy's validation of
// every resource -> the consistency check. Whatever the text, the loader returns a status
// (never crashes, leaks, hangs, or expands an alias bomb), an error has a message, and a snapshot
// it accepts comes back from snapshotToJson() (GET /v1/snapshot) as JSON that it accepts again
// as the same snapshot (so what GET shows can be PUT back).

#include <cstdint>
#include <string>
#include <string_view>

#include "control_plane_stub/snapshot_loader.h"
#include "google/protobuf/util/message_differencer.h"
#include "test/fuzz/fuzz_util.h"

namespace {

using Proxy::ControlPlane::SnapshotFile;
using Proxy::ControlPlane::SnapshotFormat;
using Proxy::ControlPlane::ValidationMode;

// Not checked yet: that an error is one line. proxy/config's loader quotes field names as
// written, so a key holding a control character puts it into the message (found by this
// harness: "unknown field 'a<NUL>b'" printed with a line break).
void checkMessage(const absl::Status& status) {
  FUZZ_CHECK(!status.message().empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The admin API parses every body as YAML (JSON is YAML); proxy validation is the default.
  absl::StatusOr<SnapshotFile> file =
      Proxy::ControlPlane::parseSnapshot(text, SnapshotFormat::Yaml, ValidationMode::Proxy);
  if (!file.ok()) {
    FUZZ_CHECK(file.status().code() == absl::StatusCode::kInvalidArgument);
    checkMessage(file.status());
    return 0;
  }
  (void)Proxy::ControlPlane::hasNoResources(*file);
  const absl::Status consistent = Proxy::ControlPlane::checkConsistency(*file);
  if (!consistent.ok()) {
    FUZZ_CHECK(consistent.code() == absl::StatusCode::kFailedPrecondition);
    FUZZ_CHECK(!consistent.message().empty());
  }
  // GET /v1/snapshot then PUT it back: the same snapshot.
  const std::string json = Proxy::ControlPlane::snapshotToJson(*file);
  absl::StatusOr<SnapshotFile> again =
      Proxy::ControlPlane::parseSnapshot(json, SnapshotFormat::Json, ValidationMode::Proxy);
  if (!again.ok()) {
    std::fprintf(stderr, "round trip refused: %s\n%s\n",
                 std::string(again.status().message()).c_str(), json.c_str());
  }
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equivalent(*file, *again));
  return 0;
}
