"""HTTP/2 on the client side of the runner (cleartext, prior knowledge), over the python3-h2
library (Debian's python3-h2): one connection, one stream per request, in turn. What came back is
reported the way wire.py reports HTTP/1.1 (status, headers, body, interim) plus the trailers, or
what ended the stream instead: "reset: <error code>", "goaway: <error code>", "closed",
"timeout".
"""

import socket
import ssl
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from . import wire


def _text(value):
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _bytes(value):
    return value if isinstance(value, bytes) else str(value).encode("latin-1")


class Client:
    def __init__(self, sock):
        self.sock = sock  # connected, plaintext or TLS
        # The cases send what they mean to send: no validation or normalisation on the way out
        # (an invalid header is the point of some cases); inbound stays lenient too, so what the
        # proxy sent is reported rather than refused by the client.
        config = h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=False,
            normalize_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.terminated = None  # the GOAWAY's error code, once one came
        self.eof = False
        self._flush()

    def close(self):
        self.sock.close()

    def _flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def _receive(self, deadline):
        """Feeds the next bytes to the connection; returns its events ([] on EOF/timeout)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError()
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError()
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        if not data:
            self.eof = True
            return []
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.eof = True
            return [("client_error", str(e))]
        self._flush()
        return events

    def request(self, req, deadline):
        """Sends one request on a new stream and reads its response."""
        stream_id = self.conn.get_next_available_stream_id()
        headers = [(b":method", _bytes(req.get("method", "GET"))), (b":scheme", b"http")]
        if req.get("path", "/") is not None:
            headers.append((b":path", _bytes(req.get("path", "/"))))
        host = req.get("host", "conformance.test")
        if host is not None:
            headers.insert(1, (b":authority", _bytes(host)))
        extra = req.get("headers", [])
        if isinstance(extra, dict):
            extra = list(extra.items())
        headers += [(_bytes(k), _bytes(wire.expand(str(v)))) for k, v in extra]
        body = _bytes(req.get("body", ""))
        trailers = req.get("trailers")
        try:
            self.conn.send_headers(stream_id, headers, end_stream=not body and not trailers)
            if body:
                self.conn.send_data(stream_id, body, end_stream=not trailers)
            if trailers:
                self.conn.send_headers(
                    stream_id, [(_bytes(k), _bytes(v)) for k, v in trailers.items()],
                    end_stream=True)
            self._flush()
        except OSError as e:
            return {"send_error": type(e).__name__}
        return self._read_response(stream_id, deadline)

    def _read_response(self, stream_id, deadline):
        response = {"status": None, "headers": [], "interim": [], "body": b""}
        while True:
            try:
                events = self._receive(deadline)
            except TimeoutError:
                return self._ended(response, "timeout")
            if self.eof and not events:
                return self._ended(response, "goaway: %s" % self.terminated
                                   if self.terminated else "closed")
            for event in events:
                if isinstance(event, tuple):
                    return self._ended(response, "client error: %s" % event[1])
                if isinstance(event, h2.events.ConnectionTerminated):
                    self.terminated = _error_name(event.error_code)
                    # Streams at or below last_stream_id are still answered after a GOAWAY.
                    if event.last_stream_id is not None and event.last_stream_id < stream_id:
                        return self._ended(response, "goaway: %s" % self.terminated)
                if getattr(event, "stream_id", None) != stream_id:
                    continue
                if isinstance(event, h2.events.InformationalResponseReceived):
                    response["interim"].append(int(dict(event.headers)[b":status"]))
                elif isinstance(event, h2.events.ResponseReceived):
                    response["headers"] = [[_text(k), _text(v)] for k, v in event.headers
                                           if not k.startswith(b":")]
                    response["status"] = int(dict(event.headers).get(b":status", b"0"))
                elif isinstance(event, h2.events.DataReceived):
                    response["body"] += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                    self._flush()
                elif isinstance(event, h2.events.TrailersReceived):
                    response["trailers"] = [[_text(k), _text(v)] for k, v in event.headers]
                elif isinstance(event, h2.events.StreamEnded):
                    return response
                elif isinstance(event, h2.events.StreamReset):
                    return self._ended(response, "reset: %s" % _error_name(event.error_code))

    @staticmethod
    def _ended(response, how):
        """A stream that ended without a complete response: `how`, with what came before."""
        if response["status"] is None:
            return {"status": how, "interim": response["interim"]}
        response["body_error"] = how
        return response

    def wait_closed(self, deadline):
        """True when the server ends the connection (GOAWAY or close) by `deadline`."""
        while True:
            if self.eof or self.terminated:
                return True
            try:
                events = self._receive(deadline)
            except TimeoutError:
                return False
            for event in events:
                if isinstance(event, h2.events.ConnectionTerminated):
                    self.terminated = _error_name(event.error_code)


def _error_name(code):
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return str(code)


