#!/usr/bin/env python3
"""Envoy as the judge of path normalisation: run one bootstrap through a binary (Envoy or our
proxy) and record what each request target becomes.

The bootstrap has one listener per option combination of the HttpConnectionManager
(normalize_path x merge_slashes x path_with_escaped_slashes_action, plus one with nothing set),
all routing every path to one upstream that answers with the exact request target it received.
Each input of the table is sent raw (HTTP/1.1, one connection per request) to every listener;
a cell is the path that reached the upstream, "400", or "307 <Location>".

  # Record Envoy's answers into the table (the inputs are the table's first column):
  compare.py --binary "$(cat ~/.cache/xds-proxy-peers/envoy-path)" --write TABLE
  # Check a binary against the recorded table (exit 1 and print the differences):
  compare.py --binary build/proxy/server/proxy --check TABLE

TABLE is test/unit/http/testdata/path_normalization_envoy.tsv; the unit and integration tests
of path normalisation replay it without Envoy. deploy/install-peers.sh installs Envoy 1.40.0.
Its inputs are printable ASCII: Envoy's HTTP/1 codec refuses control bytes, space and bytes
>= 0x80 in a request target before normalisation runs. Everything listens on 127.0.0.1 port 0;
the binary is stopped by its PID.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ACTIONS = ["IMPLEMENTATION_SPECIFIC_DEFAULT", "KEEP_UNCHANGED", "REJECT_REQUEST",
           "UNESCAPE_AND_REDIRECT", "UNESCAPE_AND_FORWARD"]


def combos():
    """(listener name, normalize_path, merge_slashes, action); None = field not set."""
    out = [("default", None, None, None)]
    for normalize in (False, True):
        for merge in (False, True):
            for action in ACTIONS:
                out.append((f"n{int(normalize)}m{int(merge)}_{action}", normalize, merge, action))
    return out


def bootstrap(upstream_port):
    listeners = []
    for name, normalize, merge, action in combos():
        fields = ""
        if normalize is not None:
            fields += f"          normalize_path: {str(normalize).lower()}\n"
        if merge is not None:
            fields += f"          merge_slashes: {str(merge).lower()}\n"
        if action is not None:
            fields += f"          path_with_escaped_slashes_action: {action}\n"
        listeners.append(f"""  - name: {name}
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
{fields}          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{{match: {{prefix: "/"}}, route: {{cluster: echo}}}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
""")
    return f"""admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
static_resources:
  listeners:
{''.join(listeners)}  clusters:
  - name: echo
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: echo
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {upstream_port}}}}}}}}}]}}]
"""


class EchoUpstream:
    """Answers every request with "UP:" and the raw request target it received."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                body = b"UP:" + head.split(b"\r\n")[0].split(b" ")[1]
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        except OSError:
            pass
        finally:
            conn.close()


def send(port, target):
    """One request on a new connection; the table cell for its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
    if not data:
        return "closed"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ")[1].decode()
    if status == "200" and body.startswith(b"UP:"):
        return body[3:].decode("latin1")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"location":
            return f"{status} {value.strip().decode('latin1')}"
    return status


def run(binary, inputs):
    upstream = EchoUpstream()
    tmp = tempfile.mkdtemp(prefix="path-compare-")
    config = os.path.join(tmp, "bootstrap.yaml")
    with open(config, "w") as f:
        f.write(bootstrap(upstream.port))
    admin_path = os.path.join(tmp, "admin-address")
    log = open(os.path.join(tmp, "log"), "w")
    proc = subprocess.Popen([binary, "-c", config, "--concurrency", "1", "--admin-address-path",
                             admin_path, "-l", "error", "--disable-hot-restart"],
                            stdout=log, stderr=log)
    try:
        deadline = time.time() + 60
        ports = {}
        while len(ports) != len(combos()) or not all(ports.values()):
            if proc.poll() is not None or time.time() > deadline:
                sys.exit(f"{binary} did not start; see {log.name}")
            time.sleep(0.05)
            try:
                admin = open(admin_path).read().strip()
                listeners = json.load(urllib.request.urlopen(f"http://{admin}/listeners?format=json"))
                ports = {l["name"]: l["local_address"]["socket_address"]["port_value"]
                         for l in listeners["listener_statuses"]}
            except (OSError, ValueError, KeyError):
                pass
        table = {}
        with ThreadPoolExecutor(8) as pool:
            for name, *_ in combos():
                cells = pool.map(lambda t: send(ports[name], t.encode("latin1")), inputs)
                table[name] = dict(zip(inputs, cells))
        return table
    finally:
        proc.terminate()
        proc.wait()


def read_table(path):
    with open(path, encoding="latin1") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]
    header, rows = rows[0], rows[1:]
    return header, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="TABLE")
    group.add_argument("--check", metavar="TABLE")
    args = parser.parse_args()
    header, rows = read_table(args.write or args.check)
    inputs = [row[0] for row in rows]
    names = [name for name, *_ in combos()]
    table = run(args.binary, inputs)
    if args.write:
        version = subprocess.run([args.binary, "--version"], capture_output=True, text=True)
        with open(args.write, "w", encoding="latin1") as f:
            f.write("# Recorded by test/interop/envoy_path_normalization/compare.py from: "
                    f"{version.stdout.strip().split(' version: ')[-1]}\n")
            f.write("# A cell: the path the upstream received, 400, or '307 <Location>'.\n")
            f.write("\t".join(["input"] + names) + "\n")
            for target in inputs:
                f.write("\t".join([target] + [table[n][target] for n in names]) + "\n")
        print(f"wrote {len(inputs)} inputs x {len(names)} listeners to {args.write}")
        return 0
    differences = 0
    for row in rows:
        for name, expected in zip(header[1:], row[1:]):
            got = table[name][row[0]]
            if got != expected:
                differences += 1
                print(f"{name}: {row[0]!r}: expected {expected!r}, got {got!r}")
    print(f"{len(rows) * len(names) - differences} passed, {differences} failed")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
