#include "control_plane_stub/stream_state.h"

namespace Proxy::ControlPlane {

size_t OutgoingResponse::byteSize() const {
  size_t size = 0;
  for (const auto& piece : pieces) {
    size += piece->size();
  }
  return size;
}

std::string OutgoingResponse::serialize() const {
  std::string out;
  out.reserve(byteSize());
  for (const auto& piece : pieces) {
    out.append(*piece);
  }
  return out;
}

}  // namespace Proxy::ControlPlane
