"""Runs one case against one proxy (start it, send the requests, collect what the client and the
upstream saw, stop it), and compares two such runs."""

import json
import os
import socket
import time

from . import cases as cases_mod
from . import normalise
from . import processes
from . import wire

# Response headers compared in every case (framing and redirects); a case adds its own with
# `response_headers`, or compares every header with `response_headers: all`.
DEFAULT_RESPONSE_HEADERS = ["content-length", "transfer-encoding", "content-type", "location",
                            "connection", "date", "server"]

DEFAULT_READ_TIMEOUT = 3.0
CLOSE_WAIT = 2.5


class Skip(Exception):
    pass


def run_case(case, label, binary, upstream, workdir, refused_port):
    """What `binary` did with `case`: {"exchanges": [...], "closed": ..., "upstream": [...]}."""
    upstream.reset(case.get("upstream"))
    # The listener port is picked free and released before the process binds it, so another
    # case running in parallel may take it first: a failed start is retried on a new port.
    for attempt in range(3):
        listener_port = processes.free_port()
        config = cases_mod.bootstrap(case, listener_port, upstream.ports, refused_port)
        path = os.path.join(workdir, "%s.json" % label)
        with open(path, "w") as f:
            json.dump(config, f, indent=1)
        proc = processes.ProxyProcess(label, binary, path, workdir)
        try:
            proc.start(listener_port)
            break
        except processes.StartError as e:
            refusal = [line for line in e.stderr.splitlines() if "not supported" in line]
            if label == "proxy" and refusal:
                raise Skip("proxy refuses the config: %s" % refusal[0].strip())
            if attempt == 2:
                raise RuntimeError("%s\n%s" % (e, tail(e.stderr)))
    try:
        exchanges, closed = send_requests(case, listener_port)
    finally:
        proc.stop()
    # The proxy is gone, so its upstream connections close: everything it sent is recorded.
    upstream.wait_idle(5.0)
    return {"exchanges": exchanges, "closed": closed, "upstream": upstream.records(),
            "stderr": proc.stderr()}


def tail(text, lines=15):
    return "\n".join(text.splitlines()[-lines:])


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, wire.Reader(sock)


def send_requests(case, port):
    if case.get("http2"):
        return send_requests_h2(case, port)
    timeout = case.get("read_timeout", DEFAULT_READ_TIMEOUT)
    sock = reader = None
    exchanges = []
    try:
        for req in case["requests"]:
            if sock is None or reader.eof or req.get("new_connection"):
                if sock is not None:
                    sock.close()
                sock, reader = connect(port)
            data = wire.build_request(req).replace(b"${LISTENER_PORT}", str(port).encode())
            method = wire.request_method(data)
            deadline = time.monotonic() + timeout
            interim_first = []
            try:
                if req.get("expect_100"):
                    head, sep, body = data.partition(b"\r\n\r\n")
                    sock.sendall(head + sep)
                    interim_first = read_interim(reader, deadline)
                    sock.sendall(body)
                else:
                    sock.sendall(data)
            except OSError as e:
                exchanges.append({"send_error": type(e).__name__, "responses": []})
                continue
            responses = []
            count = req.get("responses", 1)
            for i in range(count):
                response = wire.read_response(reader, method, deadline)
                if i == 0 and interim_first:
                    response["interim"] = interim_first + response["interim"]
                responses.append(response)
                if not isinstance(response["status"], int):
                    break
            exchanges.append({"responses": responses})
        closed = None
        if case.get("check_closed") and sock is not None:
            closed = wait_closed(reader, time.monotonic() + CLOSE_WAIT)
        return exchanges, closed
    finally:
        if sock is not None:
            sock.close()


def send_requests_h2(case, port):
    """The case's requests over HTTP/2 (prior knowledge): one stream each, in turn, on one
    connection (a new one after `new_connection` or once the last one ended)."""
    from . import h2wire  # python3-h2 is needed only by the HTTP/2 cases
    timeout = case.get("read_timeout", DEFAULT_READ_TIMEOUT)
    client = None
    exchanges = []
    try:
        for req in case["requests"]:
            if client is None or client.eof or client.terminated or req.get("new_connection"):
                if client is not None:
                    client.close()
                client = h2wire.Client(port)
            response = client.request(req, time.monotonic() + timeout)
            if "send_error" in response:
                exchanges.append({"send_error": response["send_error"], "responses": []})
            else:
                exchanges.append({"responses": [response]})
        closed = None
        if case.get("check_closed") and client is not None:
            closed = client.wait_closed(time.monotonic() + CLOSE_WAIT)
        return exchanges, closed
    finally:
        if client is not None:
            client.close()


def read_interim(reader, deadline):
    """After sending headers with Expect: 100-continue: the 100 (Continue) if one comes within a
    second; anything else is left for the response parser."""
    short = min(deadline, time.monotonic() + 1.0)
    try:
        head = reader.read_head(short)
    except wire.WireError:
        return []
    if head is None:
        return []
    if head.split(b" ", 2)[1:2] == [b"100"]:
        return [100]
    reader.buffer = head + b"\r\n\r\n" + reader.buffer
    return []


def wait_closed(reader, deadline):
    """True when the server closes the connection (after sending nothing more) by `deadline`."""
    try:
        while True:
            reader._fill(deadline)
            if reader.buffer:
                return "sent more: %r" % reader.take_buffered()[:80]
    except wire.Closed:
        return True
    except wire.TimedOut:
        return False


# --- comparing ---------------------------------------------------------------------------

def header_values(headers, name, normalise_fn):
    return [normalise_fn(k, v) for k, v in headers if k.lower() == name]


def describe_bytes(b):
    text = b.decode("latin-1")
    return text if len(text) <= 200 else text[:200] + "...(%d bytes)" % len(b)


def compare(case, envoy, proxy):
    """The differences between the two runs, as lines; empty when they agree."""
    diffs = []

    def diff(where, e, p):
        if e != p:
            diffs.append("%s: envoy=%s proxy=%s" % (where, show(e), show(p)))

    wanted = case.get("response_headers", [])
    names_all = wanted == "all"
    names = list(DEFAULT_RESPONSE_HEADERS) + ([] if names_all else [n.lower() for n in wanted])

    if len(envoy["exchanges"]) != len(proxy["exchanges"]):
        diff("exchanges", len(envoy["exchanges"]), len(proxy["exchanges"]))
    for i, (e_ex, p_ex) in enumerate(zip(envoy["exchanges"], proxy["exchanges"])):
        diff("request[%d].send_error" % i, e_ex.get("send_error"), p_ex.get("send_error"))
        e_rs, p_rs = e_ex["responses"], p_ex["responses"]
        diff("request[%d].responses" % i, [r["status"] for r in e_rs], [r["status"] for r in p_rs])
        for j, (e, p) in enumerate(zip(e_rs, p_rs)):
            where = "request[%d].response[%d]" % (i, j)
            diff(where + ".interim", e.get("interim"), p.get("interim"))
            if not isinstance(e["status"], int) or not isinstance(p["status"], int):
                continue
            diff(where + ".body", describe_bytes(e["body"]), describe_bytes(p["body"]))
            diff(where + ".body_error", e.get("body_error"), p.get("body_error"))
            diff(where + ".trailers", normalise_all(e.get("trailers")),
                 normalise_all(p.get("trailers")))
            header_names = names
            if names_all:
                header_names = sorted({k.lower() for k, _ in e["headers"] + p["headers"]})
            for name in header_names:
                diff("%s.header[%s]" % (where, name),
                     header_values(e["headers"], name, normalise.response_header),
                     header_values(p["headers"], name, normalise.response_header))
    diff("connection closed after the last response", envoy["closed"], proxy["closed"])

    if case.get("compare_upstream", True):
        ignore = {n.lower() for n in case.get("upstream_ignore_headers", [])}
        e_up, p_up = envoy["upstream"], proxy["upstream"]
        diff("upstream requests", len(e_up), len(p_up))
        for i, (e, p) in enumerate(zip(e_up, p_up)):
            where = "upstream[%d]" % i
            for field in ("upstream", "method", "path", "version", "complete"):
                diff("%s.%s" % (where, field), e[field], p[field])
            diff(where + ".body", describe_bytes(e["body"]), describe_bytes(p["body"]))
            e_h, p_h = upstream_headers(e, ignore), upstream_headers(p, ignore)
            for name in sorted(set(e_h) | set(p_h)):
                diff("%s.header[%s]" % (where, name), e_h.get(name), p_h.get(name))
    return diffs


def normalise_all(headers):
    if headers is None:
        return None
    return [[k, normalise.response_header(k, v)] for k, v in headers]


def upstream_headers(record, ignore):
    out = {}
    for key, value in record["headers"]:
        name = key.lower()
        if name in ignore:
            continue
        out.setdefault(name, []).append(normalise.upstream_header(name, value))
    return out


def show(value):
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def summary(run):
    """A short human-readable account of one run, for -v and for failures."""
    lines = []
    for i, ex in enumerate(run["exchanges"]):
        for r in ex["responses"]:
            if isinstance(r["status"], int):
                hdrs = "; ".join("%s: %s" % (k, v) for k, v in r["headers"])
                lines.append("  request[%d] -> %s%s [%s] %s%s" % (
                    i, r["status"], " (after %s)" % r["interim"] if r["interim"] else "", hdrs,
                    describe_bytes(r["body"])[:120],
                    " trailers %s" % r["trailers"] if r.get("trailers") else ""))
            else:
                lines.append("  request[%d] -> %s" % (i, r["status"]))
    for r in run["upstream"]:
        lines.append("  upstream %s got %s %s %s%s [%s] body=%r" % (
            r["upstream"], r["method"], r["path"], r["version"],
            "" if r["complete"] else " (incomplete)",
            "; ".join("%s: %s" % (k, v) for k, v in r["headers"]), r["body"][:80]))
    return "\n".join(lines)
