"""THE one place where values that legitimately differ between Envoy and our proxy (or between any
two runs of the same server) are normalised before comparing. Anything not listed here is
compared byte for byte. Adding an entry is a decision: say why next to it.
"""

import re

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Response headers (what the client got).
RESPONSE_HEADERS = {
    # The wall clock at the moment of sending.
    "date": lambda v: "<date>",
    # Milliseconds the upstream took: timing.
    "x-envoy-upstream-service-time": lambda v: "<ms>" if v.isdigit() else v,
    # A fresh random UUID per request (a value the client sent itself is compared as is).
    "x-request-id": lambda v: "<uuid>" if UUID.match(v) else v,
}

# Request headers as the upstream received them.
UPSTREAM_HEADERS = {
    # A fresh random UUID per request (a value the client sent itself is compared as is).
    "x-request-id": lambda v: "<uuid>" if UUID.match(v) else v,
}


def response_header(name, value):
    fn = RESPONSE_HEADERS.get(name.lower())
    return fn(value) if fn else value


def upstream_header(name, value):
    fn = UPSTREAM_HEADERS.get(name.lower())
    return fn(value) if fn else value
