// go-control-plane-example: an xDS management server built on go-control-plane's snapshot
// cache and server (the library most Go control planes use), serving the proxy, or Envoy, the
// resources of a snapshot file. Copy it as the start of your own.
//
// The snapshot file has control-plane-stub's format (version + resources.listeners / routes /
// clusters / endpoints, each resource in Envoy's YAML or JSON form, typed_config with "@type").
// The default snapshot serves every node without one of its own. It is loaded at startup and
// replaced with
//
//	curl -X PUT --data-binary @snapshot.yaml http://127.0.0.1:ADMIN/v1/snapshot
//
// and a node gets its own with `PUT /v1/snapshot?node=ID` (as control-plane-stub). Each answers
// 200 once the new version is in the cache, 400 naming what does not parse, or 409 when the
// snapshot is not consistent (a route or endpoint set nobody refers to is fine; a listener naming
// a missing route configuration is not). NACKs from clients are logged with their node and
// error_detail and listed by GET /v1/status.
//
// Serves SotW and Delta, ADS and the per-type services, on one gRPC port.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
)

// nack is one rejected response, as a client reported it.
type nack struct {
	Node        string `json:"node"`
	TypeURL     string `json:"type_url"`
	Version     string `json:"version"`
	Nonce       string `json:"nonce"`
	ErrorDetail string `json:"error_detail"`
	Delta       bool   `json:"delta"`
}

// callbacks give each node its snapshot before its first request is served, and log and
// record NACKs; the server calls them from its stream goroutines, before it handles the request.
type callbacks struct {
	server.CallbackFuncs
	cp    *controlPlane
	mu    sync.Mutex
	nacks []nack
	// The node of each stream: only a stream's first request has to carry it. (SotW and Delta
	// streams are numbered separately.)
	nodes map[streamKey]string
}

type streamKey struct {
	id    int64
	delta bool
}

func (c *callbacks) record(n nack) {
	log.Printf("NACK node=%s type=%s version=%s nonce=%s delta=%t error_detail=%q",
		n.Node, n.TypeURL, n.Version, n.Nonce, n.Delta, n.ErrorDetail)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nacks = append(c.nacks, n)
}

// nodeOf returns the node of a stream, learning it from the stream's first request.
func (c *callbacks) nodeOf(key streamKey, node *core.Node) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name, ok := c.nodes[key]; ok {
		return name
	}
	c.nodes[key] = node.GetId()
	return node.GetId()
}

func (c *callbacks) forget(key streamKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.nodes, key)
}

func (c *callbacks) OnStreamClosed(id int64, _ *core.Node) { c.forget(streamKey{id, false}) }

func (c *callbacks) OnDeltaStreamClosed(id int64, _ *core.Node) { c.forget(streamKey{id, true}) }

func (c *callbacks) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	node := c.nodeOf(streamKey{id, false}, req.GetNode())
	c.cp.ensureNode(node)
	if req.GetErrorDetail() != nil {
		c.record(nack{Node: node, TypeURL: req.GetTypeUrl(), Version: req.GetVersionInfo(),
			Nonce: req.GetResponseNonce(), ErrorDetail: req.GetErrorDetail().GetMessage()})
	}
	return nil
}

func (c *callbacks) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	node := c.nodeOf(streamKey{id, true}, req.GetNode())
	c.cp.ensureNode(node)
	if req.GetErrorDetail() != nil {
		c.record(nack{Node: node, TypeURL: req.GetTypeUrl(), Nonce: req.GetResponseNonce(),
			ErrorDetail: req.GetErrorDetail().GetMessage(), Delta: true})
	}
	return nil
}

func (c *callbacks) snapshotNacks() []nack {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]nack{}, c.nacks...)
}

// controlPlane owns the cache (keyed by node id) and applies snapshots to it.
type controlPlane struct {
	cache     cache.SnapshotCache
	callbacks *callbacks
	mu        sync.Mutex
	// The default snapshot, and the nodes that have one of their own.
	defaultSnapshot *cache.Snapshot
	own             map[string]*cache.Snapshot
	// The nodes seen so far (each has a snapshot in the cache).
	known map[string]bool
}

// apply parses `text` and, when it is a consistent snapshot, makes it the one served to `node`
// ("": the default, for every node without its own). The returned int is the HTTP status for
// the admin API.
func (cp *controlPlane) apply(text []byte, node string) (int, error) {
	snapshot, err := parseSnapshot(text)
	if err != nil {
		return http.StatusBadRequest, err
	}
	if err := snapshot.Consistent(); err != nil {
		return http.StatusConflict, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	targets := []string{node}
	if node == "" {
		cp.defaultSnapshot = snapshot
		targets = targets[:0]
		for known := range cp.known {
			if _, ok := cp.own[known]; !ok {
				targets = append(targets, known)
			}
		}
	} else {
		cp.own[node] = snapshot
		cp.known[node] = true
	}
	for _, target := range targets {
		if err := cp.cache.SetSnapshot(context.Background(), target, snapshot); err != nil {
			return http.StatusInternalServerError, err
		}
	}
	log.Printf("serving snapshot version %q to node %q", snapshotVersion(snapshot), node)
	return http.StatusOK, nil
}

// ensureNode gives a node seen for the first time the default snapshot, before the server
// looks the node up in the cache.
func (cp *controlPlane) ensureNode(node string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.known[node] {
		return
	}
	cp.known[node] = true
	if cp.defaultSnapshot != nil {
		if err := cp.cache.SetSnapshot(context.Background(), node, cp.defaultSnapshot); err != nil {
			log.Printf("node %q: %v", node, err)
		}
	}
}

func (cp *controlPlane) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/snapshot", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			http.Error(w, "PUT a snapshot", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSnapshotBytes))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				http.Error(w, fmt.Sprintf("snapshot larger than %d bytes", maxSnapshotBytes),
					http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		node := r.URL.Query().Get("node")
		status, err := cp.apply(body, node)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		fmt.Fprintf(w, "version %s\n", cp.currentVersion(node))
	})
	mux.HandleFunc("/v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "application/json")
		nodes := map[string]string{}
		cp.mu.Lock()
		for node := range cp.known {
			nodes[node] = cp.versionLocked(node)
		}
		cp.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{
			"version": cp.currentVersion(""),
			"nodes":   nodes,
			"nacks":   cp.callbacks.snapshotNacks(),
		})
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// currentVersion is the version served to `node` ("": the default snapshot's).
func (cp *controlPlane) currentVersion(node string) string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.versionLocked(node)
}

func (cp *controlPlane) versionLocked(node string) string {
	snapshot, ok := cp.own[node]
	if !ok {
		snapshot = cp.defaultSnapshot
	}
	if snapshot == nil {
		return ""
	}
	return snapshotVersion(snapshot)
}

const maxSnapshotBytes = 64 << 20

func main() {
	xdsAddress := flag.String("xds-address", "127.0.0.1:18000", "gRPC (xDS) listen address; port 0 picks one")
	adminAddress := flag.String("admin-address", "127.0.0.1:18001", "HTTP admin listen address; port 0 picks one")
	snapshotPath := flag.String("snapshot", "", "snapshot file served at startup (YAML or JSON)")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	// ads=false: with true, the cache answers a request only once it names every resource of
	// the type in the snapshot, and Envoy's per-type EDS streams (one per cluster, each naming
	// its own assignment) would never be answered. SotW responses carry the requested names
	// either way.
	cp := &controlPlane{cache: cache.NewSnapshotCache(false, cache.IDHash{}, nil),
		own: map[string]*cache.Snapshot{}, known: map[string]bool{}}
	cb := &callbacks{cp: cp, nodes: map[streamKey]string{}}
	cp.callbacks = cb
	if *snapshotPath != "" {
		text, err := os.ReadFile(*snapshotPath)
		if err != nil {
			log.Fatalf("snapshot: %v", err)
		}
		if _, err := cp.apply(text, ""); err != nil {
			log.Fatalf("snapshot %s: %v", *snapshotPath, err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	xds := server.NewServer(ctx, cp.cache, cb)
	grpcServer := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(grpcServer, xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(grpcServer, xds)
	routeservice.RegisterRouteDiscoveryServiceServer(grpcServer, xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(grpcServer, xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(grpcServer, xds)

	xdsListener, err := net.Listen("tcp", *xdsAddress)
	if err != nil {
		log.Fatalf("xds listen: %v", err)
	}
	adminListener, err := net.Listen("tcp", *adminAddress)
	if err != nil {
		log.Fatalf("admin listen: %v", err)
	}
	// Tests and scripts read these two lines to find the ports.
	fmt.Printf("xds listening on %s\n", xdsListener.Addr())
	fmt.Printf("admin listening on %s\n", adminListener.Addr())
	os.Stdout.Sync()

	go func() {
		if err := grpcServer.Serve(xdsListener); err != nil {
			log.Printf("xds server: %v", err)
		}
	}()
	adminServer := &http.Server{Handler: cp.adminHandler()}
	go func() {
		if err := adminServer.Serve(adminListener); err != nil && err != http.ErrServerClosed {
			log.Printf("admin server: %v", err)
		}
	}()
	<-ctx.Done()
	adminServer.Close()
	grpcServer.GracefulStop()
}
