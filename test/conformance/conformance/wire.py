"""HTTP/1.1 on the wire, for the client side of the runner and the recording upstream: a buffered
socket reader, request building, and a response parser that reports what came back (including
"the connection closed" and "nothing came back in time") instead of raising.
"""

import re
import socket
import ssl
import time

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently",
    302: "Found", 303: "See Other", 304: "Not Modified", 307: "Temporary Redirect",
    308: "Permanent Redirect", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
    413: "Payload Too Large", 418: "I'm a teapot", 426: "Upgrade Required",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}

MAX_HEAD = 256 * 1024


class WireError(Exception):
    pass


class Closed(WireError):
    """The peer closed the connection (or reset it)."""


class TimedOut(WireError):
    pass


def to_bytes(value):
    if isinstance(value, bytes):
        return value
    # Case files are text; every byte 0-255 is written as the latin-1 character of that value.
    return str(value).encode("latin-1")


def parse_header_lines(lines):
    """[(name, value)] from raw header lines (CRLF or bare LF), as sent: name case kept."""
    headers = []
    for line in lines:
        line = line.rstrip(b"\r")
        if not line:
            continue
        name, _, value = line.partition(b":")
        headers.append([name.decode("latin-1"), value.strip(b" \t").decode("latin-1")])
    return headers


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""
        self.eof = False
        self.tls_alert = None

    def _fill(self, deadline=None):
        if self.eof:
            raise Closed("connection closed")
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimedOut("timed out")
            self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimedOut("timed out")
        except (ConnectionResetError, BrokenPipeError):
            self.eof = True
            raise Closed("connection reset")
        except ssl.SSLError as e:
            # Over TLS: the alert the server ended the connection with (a TLS 1.3 server refuses
            # a client certificate only after the client's handshake finished).
            self.eof = True
            self.tls_alert = tls_reason(e)
            raise Closed("tls: %s" % self.tls_alert)
        if not data:
            self.eof = True
            raise Closed("connection closed")
        self.buffer += data

    def take_buffered(self):
        data, self.buffer = self.buffer, b""
        return data

    def read_head(self, deadline=None):
        """Bytes up to the blank line ending a message head (without it); None on a clean EOF
        before any byte."""
        while True:
            crlf = self.buffer.find(b"\r\n\r\n")
            lf = self.buffer.find(b"\n\n")
            ends = [(i, n) for i, n in ((crlf, 4), (lf, 2)) if i >= 0]
            if ends:
                index, length = min(ends)
                head, self.buffer = self.buffer[:index], self.buffer[index + length:]
                return head
            if len(self.buffer) > MAX_HEAD:
                raise WireError("head too large")
            try:
                self._fill(deadline)
            except Closed:
                if not self.buffer:
                    return None
                raise

    def read_line(self, deadline=None):
        while b"\n" not in self.buffer:
            self._fill(deadline)
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def read_exact(self, n, deadline=None):
        while len(self.buffer) < n:
            self._fill(deadline)
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_to_close(self, deadline=None):
        while True:
            try:
                self._fill(deadline)
            except Closed:
                return self.take_buffered()

    def read_chunked(self, deadline=None):
        body = b""
        while True:
            size_line = self.read_line(deadline).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise WireError("bad chunk size %r" % size_line)
            if size == 0:
                while self.read_line(deadline):  # trailers
                    pass
                return body
            body += self.read_exact(size, deadline)
            self.read_line(deadline)


REPEAT = re.compile(r"\{\{repeat (\d+) (.*?)\}\}", re.S)


def expand(raw):
    """{{repeat N TEXT}} in a raw request: TEXT N times, {i} in it replaced by 0..N-1."""
    return REPEAT.sub(lambda m: "".join(m.group(2).replace("{i}", str(i))
                                        for i in range(int(m.group(1)))), raw)


def build_request(req):
    """The bytes of one request of a case (see README.md: `raw`, or method/path/headers/body)."""
    if "raw" in req:
        return to_bytes(expand(req["raw"]))
    method = req.get("method", "GET")
    path = req.get("path", "/")
    version = req.get("version", "HTTP/1.1")
    lines = ["%s %s %s" % (method, path, version)]
    host = req.get("host", "conformance.test")
    if host is not None:
        lines.append("Host: %s" % host)
    headers = req.get("headers", [])
    if isinstance(headers, dict):
        headers = list(headers.items())
    for key, value in headers:
        lines.append("%s: %s" % (key, value))
    body = to_bytes(req.get("body", ""))
    names = {k.lower() for k, _ in headers}
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def read_response(reader, method, deadline):
    """One response as a dict: status, reason, headers, body, interim (1xx statuses seen before
    it). When nothing (more) arrives: {"status": "closed"} or {"status": "timeout"}, with any
    partial bytes."""
    interim = []
    while True:
        try:
            head = reader.read_head(deadline)
        except Closed:
            status = "tls alert: %s" % reader.tls_alert if reader.tls_alert else "closed"
            return {"status": status, "partial": reader.take_buffered(), "interim": interim}
        except TimedOut:
            return {"status": "timeout", "partial": reader.take_buffered(), "interim": interim}
        except WireError as e:
            return {"status": "garbage: %s" % e, "interim": interim}
        if head is None:
            return {"status": "closed", "interim": interim}
        lines = head.split(b"\n")
        status_line = lines[0].rstrip(b"\r").decode("latin-1")
        parts = status_line.split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            return {"status": "garbage: %r" % status_line, "interim": interim}
        headers = parse_header_lines(lines[1:])
        if 100 <= status < 200 and status != 101:
            interim.append(status)
            continue
        response = {
            "status": status,
            "version": parts[0],
            "headers": headers,
            "interim": interim,
            "body": b"",
        }
        lower = {}
        for key, value in headers:
            lower.setdefault(key.lower(), []).append(value)
        try:
            if method == "HEAD" or status in (204, 304):
                pass
            elif any("chunked" in v.lower() for v in lower.get("transfer-encoding", [])):
                response["body"] = reader.read_chunked(deadline)
            elif "content-length" in lower:
                response["body"] = reader.read_exact(int(lower["content-length"][0]), deadline)
            else:
                response["body"] = reader.read_to_close(deadline)
        except WireError as e:
            response["body_error"] = str(e)
            response["body"] = reader.take_buffered()
        return response


def request_method(data):
    """The method of the request bytes `data` starts with (the client must know HEAD)."""
    return data.split(b" ", 1)[0].decode("latin-1", "replace")


def tls_reason(error):
    """What an ssl.SSLError says, without its volatile parts: OpenSSL's reason code
    (TLSV13_ALERT_CERTIFICATE_REQUIRED, ...) or the error's class (EOF)."""
    if isinstance(error, ssl.SSLEOFError):
        return "EOF"
    return getattr(error, "reason", None) or type(error).__name__
