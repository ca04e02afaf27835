#pragma once

// The control plane's HTTP API, served by the proxy's admin server (proxy/admin: our HTTP/1
// codec and network layer) on the main thread:
//
//   PUT /v1/snapshot[?node=ID][&allow_empty=true]
//                                  replace a snapshot (YAML or JSON body; POST works too)
//                                  200 JSON summary | 400 parse/validation, or no resources
//                                  without allow_empty=true | 409 inconsistent | 413 body over
//                                  --max-snapshot-bytes (the admin server's limit)
//   GET /v1/snapshot[?node=ID]     the snapshot serving that node, as JSON (404 when none)
//   DELETE /v1/snapshot?node=ID    remove a node's own snapshot (it falls back to the default)
//   GET /v1/status                 streams per node, per type: acked version, pending nonce,
//                                  last NACK (message and time); every snapshot; counters
//   GET /healthz                   "ok"
//   GET /stats                     counters, "name: value" per line
//
// Error bodies are the error message and a newline, as text/plain.

#include "control_plane_stub/snapshot_cache.h"
#include "control_plane_stub/snapshot_loader.h"
#include "proxy/admin/admin.h"
#include "proxy/stats/stats.h"

namespace Proxy::ControlPlane {

// Registers the handlers on `admin`. `cache` and `stats` must outlive it. Main thread.
void registerAdminApi(Admin::Admin& admin, SnapshotCache& cache, Stats::Store& stats,
                      ValidationMode validation);

// The body of GET /v1/status (exposed for tests and the load client).
std::string renderStatus(const SnapshotCache& cache, const Stats::Store& stats);

}  // namespace Proxy::ControlPlane
