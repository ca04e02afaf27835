"""The recording upstream: one HTTP/1.1 server on several 127.0.0.1 ports (one per name, e.g.
"a" and "b"), shared by both proxies under test. It records what each request looked like when
it arrived (which port, request line, every header as sent, the decoded body, whether it was
complete) and answers as the case says.

Parsing is deliberately plain and lenient: it must see what the proxy sent, not judge it.
"""

import socket
import threading
import time

from . import wire

# What the upstream answers when the case says nothing.
DEFAULT_RESPONSE = {"status": 200, "headers": [["content-type", "text/plain"]], "body": None}


class RecordingUpstream:
    def __init__(self, names):
        self._lock = threading.Lock()
        self._records = []
        self._behaviour = {}
        self._next_index = 0
        self._active = 0
        self._idle = threading.Condition(self._lock)
        self._stopping = False
        self.ports = {}
        self._sockets = []
        self._threads = []
        for name in names:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            self.ports[name] = sock.getsockname()[1]
            self._sockets.append(sock)
            thread = threading.Thread(target=self._accept_loop, args=(name, sock), daemon=True)
            thread.start()
            self._threads.append(thread)

    # --- per case ------------------------------------------------------------------------

    def reset(self, behaviour):
        """Forget what was recorded; answer the next requests as `behaviour` says: one dict for
        every request, or a list (request i of the run gets entry i, the last one repeats)."""
        with self._lock:
            self._records = []
            self._behaviour = behaviour if behaviour is not None else {}
            self._next_index = 0

    def records(self):
        with self._lock:
            return list(self._records)

    def wait_idle(self, timeout):
        """Wait until no connection is open (the proxy under test was stopped, so its pooled
        connections are closing). Returns False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._active > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self):
        self._stopping = True
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass

    # --- serving -------------------------------------------------------------------------

    def _accept_loop(self, name, sock):
        while not self._stopping:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with self._lock:
                self._active += 1
            threading.Thread(target=self._serve, args=(name, conn), daemon=True).start()

    def _serve(self, name, conn):
        conn.settimeout(10)
        reader = wire.Reader(conn)
        try:
            while True:
                record = self._read_request(name, reader, conn)
                if record is None:
                    return
                with self._lock:
                    index = self._next_index
                    self._next_index += 1
                    self._records.append(record)
                    behaviour = self._behaviour
                if isinstance(behaviour, list):
                    behaviour = behaviour[min(index, len(behaviour) - 1)] if behaviour else {}
                if not record["complete"]:
                    return
                if not self._respond(conn, record, behaviour):
                    return
        except (OSError, wire.WireError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self._lock:
                self._active -= 1
                self._idle.notify_all()

    def _read_request(self, name, reader, conn):
        try:
            head = reader.read_head()
        except wire.WireError:
            return None
        if head is None:
            return None
        lines = head.split(b"\n")
        request_line = lines[0].rstrip(b"\r").decode("latin-1")
        parts = request_line.split(" ")
        method, target, version = (parts + ["", "", ""])[:3]
        headers = wire.parse_header_lines(lines[1:])
        record = {
            "upstream": name,
            "method": method,
            "path": target,
            "version": version,
            "headers": headers,
            "body": b"",
            "complete": True,
        }
        lower = {}
        for key, value in headers:
            lower.setdefault(key.lower(), []).append(value)
        if any(v.lower() == "100-continue" for v in lower.get("expect", [])):
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            if any("chunked" in v.lower() for v in lower.get("transfer-encoding", [])):
                record["body"] = reader.read_chunked()
            elif "content-length" in lower:
                record["body"] = reader.read_exact(int(lower["content-length"][0].strip()))
        except (wire.WireError, ValueError):
            record["complete"] = False
            record["body"] = reader.take_buffered()
        return record

    def _respond(self, conn, record, behaviour):
        """Send the answer `behaviour` describes; False when the connection must end."""
        if behaviour.get("delay_ms"):
            time.sleep(behaviour["delay_ms"] / 1000.0)
        if behaviour.get("reset"):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return False
        if "raw" in behaviour:
            conn.sendall(wire.to_bytes(behaviour["raw"]))
            return not behaviour.get("close", False)
        status = behaviour.get("status", DEFAULT_RESPONSE["status"])
        reason = behaviour.get("reason", wire.REASONS.get(status, "Unknown"))
        headers = behaviour.get("headers", DEFAULT_RESPONSE["headers"])
        body = behaviour.get("body")
        if body is None:
            body = "hello from %s\n" % record["upstream"]
        body = wire.to_bytes(body)
        out = ["HTTP/1.1 %d %s" % (status, reason)]
        names = {k.lower() for k, _ in headers}
        for key, value in headers:
            out.append("%s: %s" % (key, value))
        no_body = record["method"] == "HEAD" or status in (204, 304) or 100 <= status < 200
        if behaviour.get("chunked"):
            out.append("transfer-encoding: chunked")
        elif "content-length" not in names and status not in (204, 304):
            out.append("content-length: %d" % len(body))
        if behaviour.get("close"):
            out.append("connection: close")
        data = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
        if not no_body:
            if behaviour.get("chunked"):
                half = len(body) // 2
                for piece in (body[:half], body[half:]):
                    if piece:
                        data += b"%x\r\n%s\r\n" % (len(piece), piece)
                data += b"0\r\n\r\n"
            else:
                data += body
        conn.sendall(data)
        return not behaviour.get("close", False)
