// go-control-plane-example: an xDS management server built on go-control-plane's snapshot
// cache and server (the library most Go control planes use), serving the proxy, or Envoy, the
// resources of a snapshot file. Copy it as the start of your own.
//
// The snapshot file has control-plane-stub's format (version + resources.listeners / routes /
// clusters / endpoints, each resource in Envoy's YAML or JSON form, typed_config with "@type").
// One snapshot serves every node. It is loaded at startup and replaced with
//
//	curl -X PUT --data-binary @snapshot.yaml http://127.0.0.1:ADMIN/v1/snapshot
//
// which answers 200 once the new version is in the cache, 400 naming what does not parse, or
// 409 when the snapshot is not consistent (a route or endpoint set nobody refers to is fine; a
// listener naming a missing route configuration is not). NACKs from clients are logged with
// their error_detail and listed by GET /v1/status.
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

// allNodes serves one snapshot to every client, whatever its node id.
type allNodes struct{}

func (allNodes) ID(*core.Node) string { return "all" }

const nodeKey = "all"

// nack is one rejected response, as a client reported it.
type nack struct {
	TypeURL     string `json:"type_url"`
	Version     string `json:"version"`
	Nonce       string `json:"nonce"`
	ErrorDetail string `json:"error_detail"`
	Delta       bool   `json:"delta"`
}

// callbacks logs and records NACKs; the server calls them from its stream goroutines.
type callbacks struct {
	server.CallbackFuncs
	mu    sync.Mutex
	nacks []nack
}

func (c *callbacks) record(n nack) {
	log.Printf("NACK type=%s version=%s nonce=%s delta=%t error_detail=%q",
		n.TypeURL, n.Version, n.Nonce, n.Delta, n.ErrorDetail)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nacks = append(c.nacks, n)
}

func (c *callbacks) OnStreamRequest(_ int64, req *discovery.DiscoveryRequest) error {
	if req.GetErrorDetail() != nil {
		c.record(nack{TypeURL: req.GetTypeUrl(), Version: req.GetVersionInfo(),
			Nonce: req.GetResponseNonce(), ErrorDetail: req.GetErrorDetail().GetMessage()})
	}
	return nil
}

func (c *callbacks) OnStreamDeltaRequest(_ int64, req *discovery.DeltaDiscoveryRequest) error {
	if req.GetErrorDetail() != nil {
		c.record(nack{TypeURL: req.GetTypeUrl(), Nonce: req.GetResponseNonce(),
			ErrorDetail: req.GetErrorDetail().GetMessage(), Delta: true})
	}
	return nil
}

func (c *callbacks) snapshotNacks() []nack {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]nack{}, c.nacks...)
}

// controlPlane owns the cache and applies snapshots to it.
type controlPlane struct {
	cache     cache.SnapshotCache
	callbacks *callbacks
	mu        sync.Mutex
	version   string
}

// apply parses `text` and, when it is a consistent snapshot, makes it the served one.
// The returned int is the HTTP status for the admin API.
func (cp *controlPlane) apply(text []byte) (int, error) {
	snapshot, err := parseSnapshot(text)
	if err != nil {
		return http.StatusBadRequest, err
	}
	if err := snapshot.Consistent(); err != nil {
		return http.StatusConflict, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if err := cp.cache.SetSnapshot(context.Background(), nodeKey, snapshot); err != nil {
		return http.StatusInternalServerError, err
	}
	cp.version = snapshotVersion(snapshot)
	log.Printf("serving snapshot version %q", cp.version)
	return http.StatusOK, nil
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
		status, err := cp.apply(body)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		fmt.Fprintf(w, "version %s\n", cp.currentVersion())
	})
	mux.HandleFunc("/v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"version": cp.currentVersion(),
			"nacks":   cp.callbacks.snapshotNacks(),
		})
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func (cp *controlPlane) currentVersion() string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.version
}

const maxSnapshotBytes = 64 << 20

func main() {
	xdsAddress := flag.String("xds-address", "127.0.0.1:18000", "gRPC (xDS) listen address; port 0 picks one")
	adminAddress := flag.String("admin-address", "127.0.0.1:18001", "HTTP admin listen address; port 0 picks one")
	snapshotPath := flag.String("snapshot", "", "snapshot file served at startup (YAML or JSON)")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	cb := &callbacks{}
	cp := &controlPlane{cache: cache.NewSnapshotCache(true, allNodes{}, nil), callbacks: cb}
	if *snapshotPath != "" {
		text, err := os.ReadFile(*snapshotPath)
		if err != nil {
			log.Fatalf("snapshot: %v", err)
		}
		if _, err := cp.apply(text); err != nil {
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
