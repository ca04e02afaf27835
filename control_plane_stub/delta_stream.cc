#include "control_plane_stub/delta_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "control_plane_stub/wire.h"

namespace Proxy::ControlPlane {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;

DeltaStreamState::DeltaStreamState(TimeSource& time_source, std::optional<ResourceKind> only)
    : time_source_(time_source), only_(only) {}

RequestOutcome DeltaStreamState::onRequest(const DeltaDiscoveryRequest& request) {
  RequestOutcome outcome;
  outcome.type_url = request.type_url();
  outcome.nonce = request.response_nonce();
  if (!has_node_) {
    has_node_ = true;
    node_id_ = request.node().id();
    outcome.learned_node = true;
  }

  std::optional<ResourceKind> kind;
  if (only_.has_value()) {
    if (!request.type_url().empty() && request.type_url() != typeUrl(*only_)) {
      outcome.kind = RequestOutcome::Kind::WrongType;
      outcome.message = absl::StrCat("type_url '", request.type_url(), "' on a stream for '",
                                     std::string(typeUrl(*only_)), "'");
      return outcome;
    }
    kind = only_;
    outcome.type_url = std::string(typeUrl(*only_));
  } else {
    kind = kindFromTypeUrl(request.type_url());
    if (!kind.has_value()) {
      outcome.kind = RequestOutcome::Kind::UnknownType;
      outcome.message = absl::StrCat("unknown type_url '", request.type_url(), "'");
      return outcome;
    }
  }

  TypeState& state = types_[index(*kind)];
  const bool first = !state.subscribed;
  state.subscribed = true;
  if (first) {
    for (const auto& [name, version] : request.initial_resource_versions()) {
      state.client_versions[name] = version;
    }
  }

  if (state.ack.answers(request.response_nonce())) {
    state.ack.awaiting_ack = false;
    if (request.has_error_detail()) {
      outcome.kind = RequestOutcome::Kind::Nack;
      outcome.version = state.ack.sent_version;
      outcome.message = request.error_detail().message();
      state.ack.last_nack = NackRecord{node_id_,      outcome.type_url, outcome.version,
                                       outcome.nonce, outcome.message,  time_source_.systemTime()};
    } else {
      outcome.kind = RequestOutcome::Kind::Ack;
      outcome.version = state.ack.sent_version;
      state.ack.acked_version = state.ack.sent_version;
      state.ack.acked_at = time_source_.systemTime();
    }
  }

  for (const std::string& name : request.resource_names_subscribe()) {
    if (name == "*") {
      state.wildcard = true;
      continue;
    }
    state.names.insert(name);
    if (!first) {
      // Subscribed (again): sent (or reported absent) again, even if the client had it. Envoy
      // subscribes again a name it unsubscribed before its next request, and may have dropped
      // its copy meanwhile.
      state.client_versions.erase(name);
      state.reported_absent.erase(name);
    }
  }
  for (const std::string& name : request.resource_names_unsubscribe()) {
    if (name == "*") {
      state.wildcard = false;
      continue;
    }
    state.names.erase(name);
    state.reported_absent.erase(name);
    if (state.wildcard) {
      // Still of interest through the wildcard, but the client cannot know that: Envoy keeps it
      // as "ambiguous" and waits for the server to say. Sent again (or reported removed), as
      // go-control-plane does.
      auto held = state.client_versions.find(name);
      if (held != state.client_versions.end()) {
        held->second.clear();
      }
    } else {
      // The client drops it: subscribed again, it is sent again.
      state.client_versions.erase(name);
    }
  }
  if (first && request.resource_names_subscribe().empty() && isWildcardType(*kind)) {
    state.wildcard = true;
  }
  if (first) {
    state.answer_first = true;
  }
  return outcome;
}

std::optional<OutgoingResponse> DeltaStreamState::nextResponse(const Snapshot* snapshot) {
  if (snapshot == nullptr) {
    return std::nullopt;
  }
  for (ResourceKind kind : kAllResourceKinds) {
    TypeState& state = types_[index(kind)];
    if (!state.subscribed) {
      continue;
    }
    std::vector<const Resource*> updated;
    std::vector<std::string> removed;
    for (const Resource& resource : snapshot->resources(kind)) {
      if (!state.interested(resource.name)) {
        continue;
      }
      auto it = state.client_versions.find(resource.name);
      if (it == state.client_versions.end() || it->second != resource.version) {
        updated.push_back(&resource);
      }
    }
    for (auto it = state.client_versions.begin(); it != state.client_versions.end();) {
      if (!state.interested(it->first)) {
        // Unsubscribed: the client drops it by itself.
        it = state.client_versions.erase(it);
      } else if (snapshot->find(kind, it->first) == nullptr) {
        removed.push_back(it->first);
        state.reported_absent.insert(it->first);
        it = state.client_versions.erase(it);
      } else {
        ++it;
      }
    }
    for (const std::string& name : state.names) {
      if (snapshot->find(kind, name) == nullptr && state.reported_absent.insert(name).second) {
        removed.push_back(name);
      }
    }
    if (updated.empty() && removed.empty() && !state.answer_first) {
      continue;
    }
    if (kind == ResourceKind::Cluster && !only_.has_value()) {
      // ADS: an EDS cluster added or changed whose assignment the client already holds. Envoy
      // warms the new cluster until it receives the assignment and subscribes to nothing new
      // (its subscription has the name), so it is sent again after this response.
      TypeState& endpoints = types_[index(ResourceKind::Endpoint)];
      for (const Resource* cluster : updated) {
        const std::string service = edsServiceName(*cluster);
        if (!service.empty() && endpoints.subscribed && endpoints.interested(service)) {
          endpoints.client_versions.erase(service);
        }
      }
    }

    // The first request of a type is always answered, even with nothing in it: a client that
    // holds everything already, or subscribed to an empty wildcard, learns that it is current.
    state.answer_first = false;
    OutgoingResponse response;
    response.kind = kind;
    response.version = snapshot->typeVersion(kind);
    response.nonce = std::to_string(next_nonce_++);
    auto body = std::make_shared<std::string>();
    Wire::appendLengthDelimited(*body, Wire::DeltaDiscoveryResponse::kSystemVersionInfo,
                                response.version);
    std::string wrapped;
    for (const Resource* resource : updated) {
      wrapped.clear();
      Wire::appendLengthDelimited(wrapped, Wire::Resource::kName, resource->name);
      Wire::appendLengthDelimited(wrapped, Wire::Resource::kVersion, resource->version);
      Wire::appendLengthDelimited(wrapped, Wire::Resource::kResource, resource->any);
      Wire::appendLengthDelimited(*body, Wire::DeltaDiscoveryResponse::kResources, wrapped);
      state.client_versions[resource->name] = resource->version;
      state.reported_absent.erase(resource->name);
      response.resource_names.push_back(resource->name);
    }
    Wire::appendLengthDelimited(*body, Wire::DeltaDiscoveryResponse::kTypeUrl, typeUrl(kind));
    for (const std::string& name : removed) {
      Wire::appendLengthDelimited(*body, Wire::DeltaDiscoveryResponse::kRemovedResources, name);
    }
    Wire::appendLengthDelimited(*body, Wire::DeltaDiscoveryResponse::kNonce, response.nonce);
    response.pieces.push_back(std::move(body));
    response.removed = std::move(removed);
    state.ack.onSent(response.version, response.nonce);
    return response;
  }
  return std::nullopt;
}

std::vector<TypeStatus> DeltaStreamState::status() const {
  std::vector<TypeStatus> out;
  for (ResourceKind kind : kAllResourceKinds) {
    const TypeState& state = types_[index(kind)];
    if (!state.subscribed) {
      continue;
    }
    TypeStatus status;
    status.type_url = std::string(typeUrl(kind));
    status.wildcard = state.wildcard;
    status.names.assign(state.names.begin(), state.names.end());
    status.client_resources = state.client_versions.size();
    state.ack.fillStatus(status);
    out.push_back(std::move(status));
  }
  return out;
}

}  // namespace Proxy::ControlPlane
