#!/usr/bin/env python3
"""A keep-alive HTTP/1.1 load for test/bench/run_request_counts.sh (counts, never timings).

Opens CONNECTIONS connections and keeps them open for the whole run, so connection setup and
teardown stay outside what is counted. Per round it sends one GET on every connection, then
reads every response (content-length bodies): CONNECTIONS requests in flight at once, as wrk
-cN would have. Phases, driven by the script over stdin/stdout:

  warm-up: WARMUP rounds, then prints "warm" and waits for a line on stdin;
  measure: ROUNDS rounds, then prints "done <requests>" and waits for a line on stdin;
  then closes the connections and exits (non-zero when any response was not a 200).

  keepalive_client.py PORT PATH CONNECTIONS WARMUP ROUNDS
"""

import socket
import sys


def read_response(sock, pending):
    """Reads one response; returns (status, leftover bytes)."""
    buf = pending
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before a response")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed inside a body")
        rest += chunk
    return status, rest[length:]


def run_rounds(socks, pendings, request, rounds):
    bad = 0
    for _ in range(rounds):
        for sock in socks:
            sock.sendall(request)
        for i, sock in enumerate(socks):
            status, pendings[i] = read_response(sock, pendings[i])
            bad += status != 200
    return bad


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    connections, warmup, rounds = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    request = ("GET %s HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nuser-agent: keepalive_client\r\n"
               "accept: */*\r\n\r\n" % (path, port)).encode()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    for sock in socks:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pendings = [b""] * connections
    bad = run_rounds(socks, pendings, request, warmup)
    print("warm", flush=True)
    sys.stdin.readline()
    bad += run_rounds(socks, pendings, request, rounds)
    print("done %d" % (rounds * connections), flush=True)
    sys.stdin.readline()
    for sock in socks:
        sock.close()
    if bad:
        print("keepalive_client: %d responses were not 200" % bad, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
