// The helpers that xds_client.h declares beside the contract: FailureReason names and the NACK
// message format of ResourceErrors.

#include "xds_client/xds_client.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proxy/common/string_view.h"

namespace Proxy::Xds {

std::string_view failureReasonName(FailureReason reason) {
  switch (reason) {
    case FailureReason::FetchTimedOut:
      return "FetchTimedOut";
    case FailureReason::ConnectionFailure:
      return "ConnectionFailure";
  }
  return "unknown";
}

void ResourceErrors::add(const DecodedResource& resource, std::string_view reason) {
  entries_.push_back(
      absl::StrCat("resource index ", resource.index, ": ", resource.name, ": ", asAbsl(reason)));
}

void ResourceErrors::addGeneral(std::string_view reason) {
  entries_.emplace_back(reason);
}

absl::Status ResourceErrors::toStatus() const {
  if (entries_.empty()) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrJoin(entries_, "; "));
}

}  // namespace Proxy::Xds
