#include "control_plane_stub/json_writer.h"

#include <cstdio>

#include "proxy/common/json.h"

namespace Proxy::ControlPlane {

void JsonWriter::newline() {
  out_.push_back('\n');
  out_.append(2 * has_element_.size(), ' ');
}

void JsonWriter::beforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_element_.empty()) {
    if (has_element_.back()) {
      out_.push_back(',');
    }
    has_element_.back() = true;
    newline();
  }
}

JsonWriter& JsonWriter::key(std::string_view name) {
  if (has_element_.back()) {
    out_.push_back(',');
  }
  has_element_.back() = true;
  newline();
  Json::appendString(out_, name);
  out_.append(": ");
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::open(char c) {
  beforeValue();
  out_.push_back(c);
  has_element_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::close(char c) {
  const bool had_elements = has_element_.back();
  has_element_.pop_back();
  if (had_elements) {
    newline();
  }
  out_.push_back(c);
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
  beforeValue();
  Json::appendString(out_, s);
  return *this;
}

JsonWriter& JsonWriter::value(uint64_t n) {
  beforeValue();
  out_.append(std::to_string(n));
  return *this;
}

JsonWriter& JsonWriter::value(bool b) {
  beforeValue();
  out_.append(b ? "true" : "false");
  return *this;
}

}  // namespace Proxy::ControlPlane
