"""Loading case files (cases/*.yaml, one theme per file) and turning a case's bootstrap fragment
into the full bootstrap both proxies run. README.md describes the format."""

import copy
import glob
import os

import yaml

HCM_TYPE = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
            "HttpConnectionManager")
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
FILE_ACCESS_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"

# Keys a case may have; anything else is a typo in the case file.
CASE_KEYS = {
    "name", "doc", "routes", "virtual_hosts", "route_config", "hcm", "router", "listener",
    "clusters", "upstream", "requests", "response_headers", "upstream_ignore_headers",
    "check_closed", "expect_fail", "known_difference", "skip", "read_timeout",
    "compare_upstream", "http2", "downstream_tls", "client_tls", "access_log",
}
REQUEST_KEYS = {
    "raw", "method", "path", "version", "host", "headers", "body", "responses",
    "new_connection", "expect_100", "then_raw", "trailers", "tls", "abort", "wait_stat",
}
TLS_TYPE = ("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
            "DownstreamTlsContext")

# The test certificates (pki.py) of this run, made once by the runner before the cases run.
_PKI_DIR = None


def set_pki_dir(directory):
    global _PKI_DIR
    _PKI_DIR = directory


def pki_dir():
    if _PKI_DIR is None:
        raise CaseError("no test certificates: the runner makes them before the TLS cases")
    return _PKI_DIR


class CaseError(Exception):
    pass


def load(cases_dir):
    cases = []
    names = set()
    for path in sorted(glob.glob(os.path.join(cases_dir, "*.yaml"))):
        with open(path) as f:
            doc = yaml.safe_load(f)
        theme = os.path.splitext(os.path.basename(path))[0]
        defaults = doc.get("defaults", {}) or {}
        for raw in doc.get("cases", []):
            case = copy.deepcopy(defaults)
            case.update(raw)
            unknown = set(case) - CASE_KEYS
            if unknown:
                raise CaseError("%s: case %s: unknown keys %s" % (path, case.get("name"), sorted(unknown)))
            if "name" not in case or "requests" not in case:
                raise CaseError("%s: every case needs name and requests" % path)
            case["requests"] = [normalise_request(r) for r in case["requests"]]
            case["theme"] = theme
            case["id"] = "%s/%s" % (theme, case["name"])
            if case["id"] in names:
                raise CaseError("%s: duplicate case %s" % (path, case["id"]))
            names.add(case["id"])
            cases.append(case)
    return cases


def normalise_request(req):
    """`"GET /path"` is shorthand for {method: GET, path: /path}."""
    if isinstance(req, str):
        method, _, path = req.partition(" ")
        return {"method": method, "path": path or "/"}
    unknown = set(req) - REQUEST_KEYS
    if unknown:
        raise CaseError("request %r: unknown keys %s" % (req, sorted(unknown)))
    return req


def deep_merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def socket_address(port):
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def static_cluster(name, ports):
    endpoints = [{"lb_endpoints": [{"endpoint": {"address": socket_address(p)}} for p in ports]}]
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {"cluster_name": name, "endpoints": endpoints if ports else []},
    }


def bootstrap(case, listener_port, upstream_ports, refused_port, access_log_path=None):
    """The full bootstrap for `case`: one listener on `listener_port` running the HCM with the
    case's route table, and the clusters every case can use:
      a, b     the recording upstream's two ports
      empty    a cluster with no endpoints (no healthy upstream)
      refused  one endpoint whose port refuses connections
    plus the case's own `clusters` (a case cluster with the same name replaces the default).
    With the case's `access_log` (a format string), the connection manager logs each request to
    `access_log_path` in that format, one line per request."""
    if "route_config" in case:
        route_config = copy.deepcopy(case["route_config"])
    elif "virtual_hosts" in case:
        route_config = {"name": "conformance", "virtual_hosts": copy.deepcopy(case["virtual_hosts"])}
    elif "routes" in case:
        route_config = {
            "name": "conformance",
            "virtual_hosts": [{"name": "default", "domains": ["*"],
                               "routes": copy.deepcopy(case["routes"])}],
        }
    else:
        raise CaseError("%s: needs routes, virtual_hosts or route_config" % case["id"])
    router = {"@type": ROUTER_TYPE}
    router.update(copy.deepcopy(case.get("router", {})))
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": "conformance",
        "route_config": route_config,
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": router}],
    }
    deep_merge(hcm, case.get("hcm", {}))
    if case.get("access_log") and access_log_path:
        hcm["access_log"] = [{
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": FILE_ACCESS_LOG_TYPE,
                "path": access_log_path,
                "log_format": {"text_format_source": {"inline_string": case["access_log"] + "\n"}},
            },
        }]
    listener = {
        "name": "conformance",
        "address": socket_address(listener_port),
        "filter_chains": filter_chains(case, hcm),
    }
    if isinstance(case.get("downstream_tls"), list):
        listener["listener_filters"] = [{
            "name": "envoy.filters.listener.tls_inspector",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener."
                                      "tls_inspector.v3.TlsInspector"}}]
    deep_merge(listener, case.get("listener", {}))
    clusters = {
        "a": static_cluster("a", [upstream_ports["a"]]),
        "b": static_cluster("b", [upstream_ports["b"]]),
        "empty": static_cluster("empty", []),
        "refused": static_cluster("refused", [refused_port]),
    }
    for cluster in case.get("clusters", []):
        cluster = substitute(copy.deepcopy(cluster), upstream_ports, refused_port)
        clusters[cluster["name"]] = cluster
    return {
        "admin": {"address": socket_address(0)},
        "static_resources": {"listeners": [listener], "clusters": list(clusters.values())},
    }


def filter_chains(case, hcm):
    """One filter chain running the HCM; with `downstream_tls` (a DownstreamTlsContext) it
    terminates TLS. A list of {match: filter_chain_match, tls: context or null} makes one chain
    each (and adds the tls_inspector). "${PKI}" in a context's strings is the certificates'
    directory."""
    def chain(tls, match=None):
        out = {"filters": [{"name": "envoy.filters.network.http_connection_manager",
                            "typed_config": copy.deepcopy(hcm)}]}
        if match:
            out["filter_chain_match"] = copy.deepcopy(match)
        if tls is not None:
            context = {"@type": TLS_TYPE}
            context.update(with_pki(copy.deepcopy(tls)))
            out["transport_socket"] = {"name": "envoy.transport_sockets.tls",
                                       "typed_config": context}
        return out

    tls = case.get("downstream_tls")
    if isinstance(tls, list):
        return [chain(c.get("tls"), c.get("match")) for c in tls]
    return [chain(tls)]


def with_pki(value):
    if isinstance(value, dict):
        return {k: with_pki(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_pki(v) for v in value]
    if isinstance(value, str) and "${PKI}" in value:
        return value.replace("${PKI}", pki_dir())
    return value


def substitute(value, upstream_ports, refused_port):
    """In a case's own clusters, "${UPSTREAM_A}", "${UPSTREAM_B}", "${REFUSED}" are ports."""
    if isinstance(value, dict):
        return {k: substitute(v, upstream_ports, refused_port) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, upstream_ports, refused_port) for v in value]
    if isinstance(value, str):
        table = {"${UPSTREAM_A}": upstream_ports["a"], "${UPSTREAM_B}": upstream_ports["b"],
                 "${REFUSED}": refused_port}
        if value in table:
            return table[value]
    return value
