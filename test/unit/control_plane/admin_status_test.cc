// The JSON of the admin API: the writer's format, and GET /v1/status for a known state.

#include "control_plane_stub/admin_api.h"
#include "control_plane_stub/json_writer.h"
#include "control_plane_stub/snapshot_cache_impl.h"
#include "control_plane_stub/xds_server.h"
#include "gtest/gtest.h"
#include "test/unit/control_plane/control_plane_test_util.h"

namespace Proxy::ControlPlane {
namespace {

TEST(JsonWriterTest, NestedContainersEscapesAndEmptyOnes) {
  JsonWriter json;
  json.beginObject()
      .field("text", "quote \" backslash \\ newline \n tab \t bell \a")
      .field("count", uint64_t{42})
      .field("flag", false);
  json.key("list").beginArray().value("a").value(uint64_t{1}).beginObject().endObject().endArray();
  json.key("empty").beginArray().endArray();
  json.endObject();
  EXPECT_EQ(json.str(), R"({
  "text": "quote \" backslash \\ newline \n tab \t bell \u0007",
  "count": 42,
  "flag": false,
  "list": [
    "a",
    1,
    {}
  ],
  "empty": []
}
)");
}

// A stream whose status is fixed by the test.
class FixedStream : public StreamWatcher {
 public:
  explicit FixedStream(StreamStatus status) : status_(std::move(status)) {}
  uint64_t id() const override { return status_.id; }
  void onSnapshotChanged() override {}
  StreamStatus status() const override { return status_; }

 private:
  StreamStatus status_;
};

TEST(AdminStatusTest, StatusListsSnapshotsNodesStreamsNacksAndCounters) {
  SnapshotCacheImpl cache;
  Stats::Store stats;
  stats.counter("control_plane.nacks_total").add(1);
  ASSERT_TRUE(cache.setSnapshot(TestUtil::parseOrDie(TestUtil::snapshotYaml("7"))).ok());

  // One SotW stream of node proxy-1: CDS acked at 7, LDS sent at 7 and NACKed.
  const SystemTime t(std::chrono::seconds(1700000000));
  NackRecord nack{"proxy-1", std::string(kListenerTypeUrl), "7", "2", "port \"10000\" in use", t};
  StreamStatus stream;
  stream.id = 3;
  stream.node = "proxy-1";
  stream.method = std::string(kAdsSotwMethod);
  stream.peer = "ipv4:127.0.0.1:5000";
  stream.opened = t;
  stream.requests = 4;
  stream.responses = 2;
  TypeStatus cds;
  cds.type_url = std::string(kClusterTypeUrl);
  cds.wildcard = true;
  cds.sent_version = "7";
  cds.acked_version = "7";
  cds.acked_at = t;
  TypeStatus lds;
  lds.type_url = std::string(kListenerTypeUrl);
  lds.names = {"ingress"};
  lds.sent_version = "7";
  lds.last_nack = nack;
  stream.types = {cds, lds};
  auto watcher = std::make_shared<FixedStream>(stream);
  cache.addStream(watcher);
  cache.recordNack(nack);

  EXPECT_EQ(renderStatus(cache, stats), R"({
  "snapshots": [
    {
      "node": "",
      "version": "7",
      "type_versions": {
        "cds": "7",
        "eds": "7",
        "lds": "7",
        "rds": "7",
        "sds": "7"
      },
      "resource_counts": {
        "cds": 2,
        "eds": 2,
        "lds": 1,
        "rds": 1,
        "sds": 0
      }
    }
  ],
  "nodes": [
    {
      "node": "proxy-1",
      "snapshot_node": "",
      "snapshot_version": "7",
      "streams": [
        {
          "id": 3,
          "method": "StreamAggregatedResources",
          "peer": "ipv4:127.0.0.1:5000",
          "delta": false,
          "opened": "2023-11-14T22:13:20+00:00",
          "requests": 4,
          "responses": 2,
          "types": [
            {
              "type": "cds",
              "type_url": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
              "wildcard": true,
              "names": [],
              "sent_version": "7",
              "pending_nonce": "",
              "acked_version": "7",
              "acked_at": "2023-11-14T22:13:20+00:00"
            },
            {
              "type": "lds",
              "type_url": "type.googleapis.com/envoy.config.listener.v3.Listener",
              "wildcard": false,
              "names": [
                "ingress"
              ],
              "sent_version": "7",
              "pending_nonce": "",
              "acked_version": "",
              "last_nack": {
                "type": "lds",
                "type_url": "type.googleapis.com/envoy.config.listener.v3.Listener",
                "version": "7",
                "nonce": "2",
                "message": "port \"10000\" in use",
                "time": "2023-11-14T22:13:20+00:00"
              }
            }
          ]
        }
      ],
      "last_nacks": [
        {
          "type": "lds",
          "type_url": "type.googleapis.com/envoy.config.listener.v3.Listener",
          "version": "7",
          "nonce": "2",
          "message": "port \"10000\" in use",
          "time": "2023-11-14T22:13:20+00:00"
        }
      ]
    }
  ],
  "stats": {
    "control_plane.nacks_total": 1
  }
}
)");
}

}  // namespace
}  // namespace Proxy::ControlPlane
