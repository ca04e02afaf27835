package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	// The typed_config types a snapshot may name ("@type"): protojson resolves Any through
	// the types linked into the binary. Add the extensions your resources use.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// snapshotFile is control-plane-stub's snapshot format; each resource stays raw JSON until
// protojson decodes it into its Envoy type.
type snapshotFile struct {
	Version   string `json:"version"`
	Resources struct {
		Listeners []json.RawMessage `json:"listeners"`
		Routes    []json.RawMessage `json:"routes"`
		Clusters  []json.RawMessage `json:"clusters"`
		Endpoints []json.RawMessage `json:"endpoints"`
	} `json:"resources"`
}

// parseSnapshot turns YAML or JSON text into a snapshot. Errors name the resource list and
// index, e.g. `resources.clusters[1]: proto: (line 1:2): unknown field "nme"`.
func parseSnapshot(text []byte) (*cache.Snapshot, error) {
	jsonText, err := yaml.YAMLToJSON(text)
	if err != nil {
		return nil, fmt.Errorf("not YAML or JSON: %w", err)
	}
	var file snapshotFile
	decoder := json.NewDecoder(bytes.NewReader(jsonText))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&file); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if file.Version == "" {
		return nil, fmt.Errorf("version: required")
	}
	resources := map[resource.Type][]types.Resource{}
	lists := []struct {
		field   string
		typeURL resource.Type
		raw     []json.RawMessage
		make    func() proto.Message
	}{
		{"listeners", resource.ListenerType, file.Resources.Listeners, func() proto.Message { return &listener.Listener{} }},
		{"routes", resource.RouteType, file.Resources.Routes, func() proto.Message { return &route.RouteConfiguration{} }},
		{"clusters", resource.ClusterType, file.Resources.Clusters, func() proto.Message { return &cluster.Cluster{} }},
		{"endpoints", resource.EndpointType, file.Resources.Endpoints, func() proto.Message { return &endpoint.ClusterLoadAssignment{} }},
	}
	for _, list := range lists {
		for i, raw := range list.raw {
			message := list.make()
			if err := protojson.Unmarshal(raw, message); err != nil {
				return nil, fmt.Errorf("resources.%s[%d]: %w", list.field, i, err)
			}
			// The envoy protos carry protoc-gen-validate rules: run them, as a real control
			// plane should before serving a resource.
			if validator, ok := message.(interface{ ValidateAll() error }); ok {
				if err := validator.ValidateAll(); err != nil {
					return nil, fmt.Errorf("resources.%s[%d]: %w", list.field, i, err)
				}
			}
			resources[list.typeURL] = append(resources[list.typeURL], message.(types.Resource))
		}
	}
	return cache.NewSnapshot(file.Version, resources)
}

// snapshotVersion is the version the snapshot was built with (every type shares it).
func snapshotVersion(snapshot *cache.Snapshot) string {
	return snapshot.GetVersion(resource.ListenerType)
}
