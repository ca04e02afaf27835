#include "control_plane_stub/sotw_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "control_plane_stub/wire.h"

namespace Proxy::ControlPlane {

using envoy::service::discovery::v3::DiscoveryRequest;

SotwStreamState::SotwStreamState(TimeSource& time_source, std::optional<ResourceKind> only)
    : time_source_(time_source), only_(only) {}

RequestOutcome SotwStreamState::onRequest(const DiscoveryRequest& request,
                                          const Snapshot* snapshot) {
  RequestOutcome outcome;
  outcome.type_url = request.type_url();
  outcome.nonce = request.response_nonce();
  if (!has_node_) {
    // Only the first request has to carry the node (xDS spec); it names the stream's node.
    has_node_ = true;
    node_id_ = request.node().id();
    outcome.learned_node = true;
  }

  std::optional<ResourceKind> kind;
  if (only_.has_value()) {
    // A per-type service knows its type: an empty type_url is that type.
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
  if (!request.response_nonce().empty() && !state.ack.nonce.empty() &&
      request.response_nonce() != state.ack.nonce) {
    outcome.kind = RequestOutcome::Kind::StaleNonce;
    return outcome;
  }

  const bool first = !state.subscribed;
  state.subscribed = true;
  if (state.ack.answers(request.response_nonce())) {
    state.ack.awaiting_ack = false;
    if (request.has_error_detail()) {
      outcome.kind = RequestOutcome::Kind::Nack;
      outcome.version = state.ack.sent_version;
      outcome.message = request.error_detail().message();
      state.ack.last_nack = NackRecord{node_id_,      outcome.type_url, outcome.version,
                                       outcome.nonce, outcome.message,  time_source_.systemTime()};
      state.nacked = std::make_pair(state.ack.sent_version, state.sent_hash);
      if (*kind == ResourceKind::Cluster) {
        held_clusters_ = acked_clusters_;  // the client kept what it had
      }
    } else {
      outcome.kind = RequestOutcome::Kind::Ack;
      outcome.version = request.version_info();
      state.ack.acked_version = request.version_info();
      state.ack.acked_at = time_source_.systemTime();
      if (*kind == ResourceKind::Cluster) {
        acked_clusters_ = held_clusters_;
      }
    }
  } else if (first && snapshot != nullptr && !request.version_info().empty() &&
             request.version_info() == snapshot->typeVersion(*kind)) {
    // A reconnecting client that already holds the current version.
    state.known = true;
    state.ack.sent_version = request.version_info();
    state.ack.acked_version = request.version_info();
    state.sent_hash = snapshot->typeHash(*kind);
  }

  std::set<std::string> names(request.resource_names().begin(), request.resource_names().end());
  const bool star = names.erase("*") > 0;
  const bool legacy =
      isWildcardType(*kind) && !star && names.empty() && (first || state.legacy_wildcard);
  const bool wildcard = star || legacy;
  // Names no longer requested are forgotten: asked for again, they are answered again.
  for (auto it = state.sent_names.begin(); it != state.sent_names.end();) {
    it = names.count(*it) == 0 ? state.sent_names.erase(it) : std::next(it);
  }
  if (!state.wildcard) {
    // A wildcard the stream did not have, or names it did not answer for (on a new stream:
    // every name, whatever version_info says).
    bool added = !first && wildcard;
    for (const std::string& name : names) {
      added = added || state.sent_names.count(name) == 0;
    }
    state.names_added = state.names_added || added;
  }
  state.names = std::move(names);
  state.wildcard = wildcard;
  state.legacy_wildcard = legacy;
  return outcome;
}

bool SotwStreamState::needsResponse(ResourceKind kind, const TypeState& state,
                                    const Snapshot& snapshot) const {
  if (!state.subscribed || (!state.wildcard && state.names.empty())) {
    return false;
  }
  if (kind == ResourceKind::Cluster && kept_clusters_ && !routesPending(snapshot)) {
    return true;  // the listeners and routes moved on: remove the clusters kept for them
  }
  const std::string& version = snapshot.typeVersion(kind);
  const uint64_t hash = snapshot.typeHash(kind);
  if (state.nacked.has_value() && state.nacked->first == version && state.nacked->second == hash) {
    return false;
  }
  if (!state.known || state.ack.sent_version != version || state.sent_hash != hash) {
    return true;
  }
  return state.names_added || state.resend;
}

OutgoingResponse SotwStreamState::buildResponse(ResourceKind kind, TypeState& state,
                                                const Snapshot& snapshot) {
  OutgoingResponse response;
  response.kind = kind;
  response.version = snapshot.typeVersion(kind);
  response.nonce = std::to_string(next_nonce_++);

  std::vector<const Resource*> selected;
  bool all = state.wildcard;
  if (!all) {
    for (const std::string& name : state.names) {
      if (const Resource* resource = snapshot.find(kind, name)) {
        selected.push_back(resource);
      }
    }
    // Every resource of the type was asked for (the usual case for EDS and RDS): share the
    // snapshot's body instead of encoding a copy.
    all = selected.size() == snapshot.resources(kind).size();
  }
  if (kind == ResourceKind::Cluster && !only_.has_value()) {
    // Make before break: while listeners or routes have yet to move on, keep the clusters the
    // client holds that this snapshot dropped.
    std::map<std::string, HeldCluster> held;
    const SnapshotConstSharedPtr owner = snapshot.shared_from_this();
    if (all) {
      for (const Resource& resource : snapshot.resources(kind)) {
        held[resource.name] = HeldCluster{owner, &resource};
      }
    } else {
      for (const Resource* resource : selected) {
        held[resource->name] = HeldCluster{owner, resource};
      }
    }
    // An EDS cluster added or changed whose assignment the client already watches: the client
    // will not ask for it again, but warms the cluster until it gets it.
    TypeState& endpoints = types_[index(ResourceKind::Endpoint)];
    for (const auto& [name, cluster] : held) {
      auto before = held_clusters_.find(name);
      if (before != held_clusters_.end() &&
          before->second.resource->version == cluster.resource->version) {
        continue;
      }
      const std::string service = edsServiceName(*cluster.resource);
      if (!service.empty() && endpoints.subscribed &&
          (endpoints.wildcard || endpoints.names.count(service) > 0)) {
        endpoints.resend = true;
      }
    }
    kept_clusters_ = false;
    if (routesPending(snapshot)) {
      for (const auto& [name, cluster] : held_clusters_) {
        if ((state.wildcard || state.names.count(name) > 0) && held.count(name) == 0) {
          held.emplace(name, cluster);
          kept_clusters_ = true;
        }
      }
    }
    held_clusters_ = std::move(held);
    if (kept_clusters_) {
      all = false;
      selected.clear();
      for (const auto& [name, cluster] : held_clusters_) {
        selected.push_back(cluster.resource);
      }
    }
  }
  if (all) {
    response.pieces.push_back(snapshot.sotwBodyAll(kind));
    for (const Resource& resource : snapshot.resources(kind)) {
      response.resource_names.push_back(resource.name);
    }
  } else {
    response.pieces.push_back(
        std::make_shared<const std::string>(encodeSotwBody(response.version, kind, selected)));
    for (const Resource* resource : selected) {
      response.resource_names.push_back(resource->name);
    }
  }
  auto nonce = std::make_shared<std::string>();
  Wire::appendLengthDelimited(*nonce, Wire::DiscoveryResponse::kNonce, response.nonce);
  response.pieces.push_back(std::move(nonce));

  state.known = true;
  state.sent_hash = snapshot.typeHash(kind);
  state.names_added = false;
  state.resend = false;
  state.sent_names = state.names;
  state.ack.onSent(response.version, response.nonce);
  return response;
}

std::optional<OutgoingResponse> SotwStreamState::nextResponse(const Snapshot* snapshot) {
  if (snapshot == nullptr) {
    return std::nullopt;
  }
  for (ResourceKind kind : kAllResourceKinds) {
    TypeState& state = types_[index(kind)];
    if (needsResponse(kind, state, *snapshot)) {
      if (!only_.has_value() && state.known &&
          (kind == ResourceKind::Listener || kind == ResourceKind::Route) && clustersInFlight()) {
        // Make before break: this update waits for the ACK of the clusters and endpoints sent
        // before it (the ACK is a request: the stream asks again then).
        return std::nullopt;
      }
      return buildResponse(kind, state, *snapshot);
    }
    // A NACKed version is not resent when names are added either; the flag would otherwise
    // force the rejected version out with the next unrelated change.
    state.names_added = false;
    state.resend = false;
  }
  return std::nullopt;
}

bool SotwStreamState::clustersInFlight() const {
  return types_[index(ResourceKind::Cluster)].ack.awaiting_ack ||
         types_[index(ResourceKind::Endpoint)].ack.awaiting_ack;
}

bool SotwStreamState::routesPending(const Snapshot& snapshot) const {
  for (ResourceKind kind : {ResourceKind::Listener, ResourceKind::Route}) {
    const TypeState& state = types_[index(kind)];
    if (state.subscribed && (state.ack.awaiting_ack || needsResponse(kind, state, snapshot))) {
      return true;
    }
  }
  return false;
}

std::vector<TypeStatus> SotwStreamState::status() const {
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
    state.ack.fillStatus(status);
    out.push_back(std::move(status));
  }
  return out;
}

}  // namespace Proxy::ControlPlane
