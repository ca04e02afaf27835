"""Runs one case against one proxy (start it, send the requests, collect what the client and the
upstream saw, stop it), and compares two such runs."""

import json
import os
import socket
import ssl
import time
import urllib.request

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
TLS13_ALERT_WAIT = 0.2


class Skip(Exception):
    pass


def run_case(case, label, binary, upstream, workdir, refused_port):
    """What `binary` did with `case`: {"exchanges": [...], "closed": ..., "upstream": [...]}."""
    upstream.reset(case.get("upstream"))
    # The listener port is picked free and released before the process binds it, so another
    # case running in parallel may take it first: a failed start is retried on a new port.
    access_log_path = os.path.join(workdir, "%s.access.log" % label)
    for attempt in range(3):
        if os.path.exists(access_log_path):
            os.unlink(access_log_path)
        listener_port = processes.free_port()
        config = cases_mod.bootstrap(case, listener_port, upstream.ports, refused_port,
                                     access_log_path)
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
        exchanges, closed = send_requests(case, listener_port, upstream, proc.admin)
    finally:
        # SIGTERM: both write out their access log buffers as they exit.
        proc.stop()
    # The proxy is gone, so its upstream connections close: everything it sent is recorded.
    upstream.wait_idle(5.0)
    return {"exchanges": exchanges, "closed": closed, "upstream": upstream.records(),
            "stderr": proc.stderr(), "access_log": read_lines(access_log_path)}


def read_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def stat_value(admin, name):
    """The value of counter or gauge `name` in /stats, or None when it is not there."""
    with urllib.request.urlopen("http://%s/stats?filter=%s" % (admin, name), timeout=1) as r:
        for line in r.read().decode("utf-8", "replace").splitlines():
            key, sep, value = line.partition(": ")
            if sep and key == name:
                return value.strip()
    return None


def wait_stat(admin, condition, deadline):
    """`condition` is "stat.name: value": poll /stats until the stat has that value."""
    name, _, want = condition.partition(":")
    name, want = name.strip(), want.strip()
    while True:
        got = stat_value(admin, name)
        if got == want:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("wait_stat: %s is %s, not %s" % (name, got, want))
        time.sleep(0.02)


def tail(text, lines=15):
    return "\n".join(text.splitlines()[-lines:])


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def tls_options(case, req):
    """The client's TLS settings for a new connection: the request's `tls`, else the case's
    `client_tls`, else None (plaintext)."""
    options = req.get("tls", case.get("client_tls"))
    return options if options else None


def tls_wrap(sock, options):
    """The TLS handshake as the case's client does it: (ssl socket or None, outcome), the outcome
    being what the comparison sees: {"handshake": "ok", "alpn", "version", "server_cn"} or
    {"handshake": "failed: <OpenSSL reason>"}."""
    pki_dir = cases_mod.pki_dir()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    if options.get("verify", True):
        context.load_verify_locations(os.path.join(pki_dir, "ca.pem"))
    else:
        context.verify_mode = ssl.CERT_NONE
    versions = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
    if "min_version" in options:
        context.minimum_version = versions[options["min_version"]]
    if "max_version" in options:
        context.maximum_version = versions[options["max_version"]]
    if options.get("cert"):
        base = os.path.join(pki_dir, options["cert"])
        context.load_cert_chain(base + ".pem", base + ".key")
    if options.get("alpn"):
        context.set_alpn_protocols(options["alpn"])
    sni = options.get("sni", "localhost")
    try:
        tls = context.wrap_socket(sock, server_hostname=sni)
    except ssl.SSLError as e:
        sock.close()
        return None, {"handshake": "failed: %s" % wire.tls_reason(e)}
    except OSError as e:
        sock.close()
        return None, {"handshake": "failed: %s" % type(e).__name__}
    if tls.version() == "TLSv1.3" and tls.selected_alpn_protocol() != "h2":
        # A TLS 1.3 server refuses a client certificate after the client's handshake finished;
        # its alert is read here, before a request races with it (an HTTP/1.1 server says
        # nothing first; an HTTP/2 one sends its SETTINGS, so not there).
        tls.settimeout(TLS13_ALERT_WAIT)
        try:
            data = tls.recv(1)
            tls.close()
            return None, {"handshake": "refused after: %s" % ("data %r" % data if data else "EOF")}
        except socket.timeout:
            tls.settimeout(5)
        except ssl.SSLError as e:
            tls.close()
            return None, {"handshake": "refused after: %s" % wire.tls_reason(e)}
        except OSError as e:
            tls.close()
            return None, {"handshake": "refused after: %s" % type(e).__name__}
    cert = tls.getpeercert() if options.get("verify", True) else None
    subject = dict(x[0] for x in cert["subject"]) if cert else {}
    return tls, {"handshake": "ok", "alpn": tls.selected_alpn_protocol(),
                 "version": tls.version(), "server_cn": subject.get("commonName")}


class Http1Connection:
    """Requests in turn on one HTTP/1.1 connection (pipelining and Expect: 100-continue as the
    case says)."""

    def __init__(self, sock):
        self.sock = sock
        self.reader = wire.Reader(sock)

    def ended(self):
        return self.reader.eof

    def close(self):
        self.sock.close()

    def exchange(self, req, port, timeout):
        data = wire.build_request(req).replace(b"${LISTENER_PORT}", str(port).encode())
        method = wire.request_method(data)
        deadline = time.monotonic() + timeout
        interim_first = []
        try:
            if req.get("expect_100"):
                head, sep, body = data.partition(b"\r\n\r\n")
                self.sock.sendall(head + sep)
                interim_first = read_interim(self.reader, deadline)
                self.sock.sendall(body)
            else:
                self.sock.sendall(data)
        except OSError as e:
            return {"send_error": type(e).__name__, "responses": []}
        responses = []
        for i in range(req.get("responses", 1)):
            response = wire.read_response(self.reader, method, deadline)
            if i == 0 and interim_first:
                response["interim"] = interim_first + response["interim"]
            responses.append(response)
            if not isinstance(response["status"], int):
                break
        return {"responses": responses}

    def wait_closed(self, deadline):
        return wait_closed(self.reader, deadline)


class Http2Connection:
    """Requests as streams, in turn, on one HTTP/2 connection (python3-h2)."""

    def __init__(self, sock):
        from . import h2wire  # python3-h2 is needed only by the HTTP/2 cases
        self.client = h2wire.Client(sock)

    def ended(self):
        return self.client.eof or self.client.terminated

    def close(self):
        self.client.close()

    def exchange(self, req, port, timeout):
        response = self.client.request(req, time.monotonic() + timeout)
        if "send_error" in response:
            return {"send_error": response["send_error"], "responses": []}
        return {"responses": [response]}

    def wait_closed(self, deadline):
        return self.client.wait_closed(deadline)


def open_connection(case, req, port):
    """A new connection for `req`: (connection or None, TLS outcome or None). HTTP/2 when the
    case says so (prior knowledge) or TLS negotiated ALPN h2."""
    sock = connect(port)
    outcome = None
    options = tls_options(case, req)
    if options is not None:
        sock, outcome = tls_wrap(sock, options)
        if sock is None:
            return None, outcome
    if case.get("http2") or (outcome and outcome.get("alpn") == "h2"):
        return Http2Connection(sock), outcome
    return Http1Connection(sock), outcome


def send_requests(case, port, upstream, admin):
    timeout = case.get("read_timeout", DEFAULT_READ_TIMEOUT)
    conn = None
    exchanges = []
    try:
        for req in case["requests"]:
            outcome = None
            if req.get("wait_stat"):
                wait_stat(admin, req["wait_stat"], time.monotonic() + timeout)
            if conn is None or conn.ended() or req.get("new_connection"):
                if conn is not None:
                    conn.close()
                conn, outcome = open_connection(case, req, port)
                if conn is None:
                    exchanges.append({"tls": outcome, "responses": []})
                    continue
            if req.get("abort"):
                abort(conn, req, port, upstream, time.monotonic() + timeout)
                conn = None
                exchanges.append({"responses": [], "aborted": True})
                continue
            exchange = conn.exchange(req, port, timeout)
            if outcome is not None:
                exchange["tls"] = outcome
            exchanges.append(exchange)
        closed = None
        if case.get("check_closed") and conn is not None:
            closed = conn.wait_closed(time.monotonic() + CLOSE_WAIT)
        return exchanges, closed
    finally:
        if conn is not None:
            conn.close()


def abort(conn, req, port, upstream, deadline):
    """The client goes away once the upstream has the request, before any answer; then wait
    until the upstream's connections ended (the proxy reset its side). HTTP/1.1 only."""
    if not isinstance(conn, Http1Connection):
        raise cases_mod.CaseError("abort: HTTP/1.1 requests only")
    data = wire.build_request(req).replace(b"${LISTENER_PORT}", str(port).encode())
    seen = len(upstream.records())
    conn.sock.sendall(data)
    while len(upstream.records()) == seen and time.monotonic() < deadline:
        time.sleep(0.01)
    conn.close()
    upstream.wait_idle(max(0.0, deadline - time.monotonic()))


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
        diff("request[%d].tls" % i, e_ex.get("tls"), p_ex.get("tls"))
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
    if case.get("access_log"):
        diff("access log", envoy["access_log"], proxy["access_log"])

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
        if ex.get("tls"):
            lines.append("  request[%d] tls %s" % (i, ex["tls"]))
        for r in ex["responses"]:
            if isinstance(r["status"], int):
                hdrs = "; ".join("%s: %s" % (k, v) for k, v in r["headers"])
                lines.append("  request[%d] -> %s%s [%s] %s%s" % (
                    i, r["status"], " (after %s)" % r["interim"] if r["interim"] else "", hdrs,
                    describe_bytes(r["body"])[:120],
                    " trailers %s" % r["trailers"] if r.get("trailers") else ""))
            else:
                lines.append("  request[%d] -> %s" % (i, r["status"]))
    for line in run.get("access_log", []):
        lines.append("  access log: %s" % line)
    for r in run["upstream"]:
        lines.append("  upstream %s got %s %s %s%s [%s] body=%r" % (
            r["upstream"], r["method"], r["path"], r["version"],
            "" if r["complete"] else " (incomplete)",
            "; ".join("%s: %s" % (k, v) for k, v in r["headers"]), r["body"][:80]))
    return "\n".join(lines)
