#!/usr/bin/env python3
"""Writes the seed corpora under test/fuzz/corpus/ (committed; rerun after changing a seed).

HTTP seeds are raw bytes behind the 4-byte split seed the codec harnesses read first (0 = the
whole input in one read). xDS seeds are the .textproto files in seeds/, encoded with protoc
(`protoc --encode`), behind one byte that picks SotW (even) or Delta (odd). Bootstrap seeds are
the example bootstraps; snapshot seeds are control_plane_stub/examples and seeds/snapshot_*. Needs protoc; run from anywhere:  python3 test/fuzz/make_seeds.py
"""
import pathlib
import shutil
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = HERE / "corpus"

WHOLE = b"\x00\x00\x00\x00"   # one read
SPLIT = b"\x01\x02\x03\x04"   # small reads

REQUESTS = {
    "get": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "post_cl": b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "chunked": b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n0\r\nTrailer: t\r\n\r\n",
    "pipelined": b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
                 b"POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
    "expect": b"PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "cl_te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad_chunk": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
    "http10": b"GET /old HTTP/1.0\r\n\r\n",
    "http10_keepalive": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nHost: a\r\n\r\n",
    "absolute": b"GET http://example.com:8080/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "connection_close": b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n",
    "upgrade": b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "bare_lf": b"GET / HTTP/1.1\nHost: a\n\n",
    "dup_host": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "dot_segments": b"GET /public/../admin/%61%2F//x HTTP/1.1\r\nHost: a\r\n\r\n",
    "many_headers": b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"x-h%d: v\r\n" % i for i in range(30)) + b"\r\n",
    "big_header": b"GET / HTTP/1.1\r\nHost: a\r\nx-big: " + b"v" * 9000 + b"\r\n\r\n",
}

RESPONSES = {
    "ok_cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n",
    "no_content": b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "not_modified": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    "close_delimited": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close",
    "continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "http10": b"HTTP/1.0 200 OK\r\n\r\nold",
    "bad_status": b"HTTP/1.1 2x0 OK\r\n\r\n",
    "cl_te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
}


def fresh(name):
    directory = CORPUS / name
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def write_http(name, cases):
    directory = fresh(name)
    for case, data in cases.items():
        (directory / case).write_bytes(WHOLE + data)
        (directory / (case + "_split")).write_bytes(SPLIT + data)


def write_xds():
    directory = fresh("xds_response_fuzz")
    for textproto in sorted((HERE / "seeds").glob("xds_*.textproto")):
        delta = "delta" in textproto.stem
        message = ("envoy.service.discovery.v3.DeltaDiscoveryResponse" if delta
                   else "envoy.service.discovery.v3.DiscoveryResponse")
        encoded = subprocess.run(
            ["protoc", "-I", str(ROOT / "protos"), "-I", "/usr/include",
             "--encode=" + message, "envoy/service/discovery/v3/discovery.proto",
             "envoy/config/listener/v3/listener.proto", "envoy/config/route/v3/route.proto",
             "envoy/config/cluster/v3/cluster.proto", "envoy/config/endpoint/v3/endpoint.proto",
             "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
             "envoy/extensions/filters/http/router/v3/router.proto"],
            input=textproto.read_bytes(), stdout=subprocess.PIPE, check=True).stdout
        (directory / textproto.stem).write_bytes((b"\x01" if delta else b"\x00") + encoded)


def write_bootstrap():
    directory = fresh("bootstrap_fuzz")
    for path in sorted((ROOT / "deploy" / "examples").glob("*.yaml")):
        shutil.copy(path, directory / path.name)
    for path in sorted((HERE / "seeds").glob("bootstrap_*.yaml")):
        shutil.copy(path, directory / path.name)


def write_snapshot():
    # The control plane's examples and the shapes its tests PUT (seeds/snapshot_*: no .yaml
    # extension, so that field_support_test, which loads every test YAML with the proxy's own
    # loader, does not load the alias bomb and cycle among them).
    directory = fresh("snapshot_loader_fuzz")
    for path in sorted((ROOT / "control_plane_stub" / "examples").glob("*.yaml")):
        shutil.copy(path, directory / path.name)
    for path in sorted((HERE / "seeds").glob("snapshot_*")):
        shutil.copy(path, directory / path.name)


if __name__ == "__main__":
    write_http("http1_server_codec_fuzz", REQUESTS)
    write_http("http1_client_codec_fuzz", RESPONSES)
    write_xds()
    write_bootstrap()
    write_snapshot()
