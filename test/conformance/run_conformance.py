#!/usr/bin/python3
"""The conformance corpus, judged by the real Envoy: every case in cases/*.yaml runs once under
Envoy and once under our proxy (same bootstrap, same flags, same recording upstream, same
requests), and the two are compared. README.md beside this file describes the case format.

  run_conformance.py --proxy build/proxy/server/proxy [--envoy PATH] [-k SUBSTRING]... [-v]

Envoy defaults to the one deploy/install-peers.sh installed ($PEERS_DIR/envoy-path). The last
line is "N passed, M failed"; the exit code is 0 only when nothing failed (an expected failure
that passes counts as failed: remove its expect_fail). Exit 77 when Envoy is not installed.
"""

import argparse
import concurrent.futures
import io
import os
import queue
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conformance import cases as cases_mod  # noqa: E402
from conformance import pki  # noqa: E402
from conformance import processes  # noqa: E402
from conformance import runner  # noqa: E402
from conformance.upstream import RecordingUpstream  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def default_envoy():
    peers = os.environ.get("PEERS_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "xds-proxy-peers")
    try:
        with open(os.path.join(peers, "envoy-path")) as f:
            return f.read().strip()
    except OSError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxy", required=True, help="our proxy binary")
    parser.add_argument("--envoy", default=None, help="the Envoy binary (default: install-peers)")
    parser.add_argument("--cases", default=os.path.join(HERE, "cases"))
    parser.add_argument("-k", action="append", default=[], help="only cases whose id contains this")
    parser.add_argument("-v", action="store_true", help="print both runs of every case")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("-j", "--jobs", type=int, default=3, help="cases run at once (default 3)")
    args = parser.parse_args()

    envoy = args.envoy or default_envoy()
    if not envoy or not os.access(envoy, os.X_OK):
        print("conformance: Envoy is not installed (run: bash deploy/install-peers.sh)")
        return 77
    if not os.access(args.proxy, os.X_OK):
        print("conformance: no proxy binary at %s" % args.proxy)
        return 1

    all_cases = cases_mod.load(args.cases)
    selected = [c for c in all_cases if not args.k or any(k in c["id"] for k in args.k)]
    workdir = tempfile.mkdtemp(prefix="conformance-")
    cases_mod.set_pki_dir(pki.create(os.path.join(workdir, "pki")))
    # Cases run in parallel, each worker with its own recording upstream: most of a case's time
    # is spent waiting (for a close, a timeout), not computing.
    upstreams = queue.Queue()
    for _ in range(max(1, args.jobs)):
        upstreams.put(RecordingUpstream(["a", "b"]))
    # A port nothing listens on, for the "refused" cluster.
    refused_port = processes.free_port()
    print_lock = threading.Lock()

    def work(case):
        upstream = upstreams.get()
        out = io.StringIO()
        try:
            result = run_one(case, envoy, args.proxy, upstream, workdir, refused_port, args.v, out)
        finally:
            upstreams.put(upstream)
        with print_lock:
            sys.stdout.write(out.getvalue())
            sys.stdout.flush()
        return result

    passed, failed, xfailed, skipped = [], [], [], []
    start = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(work, selected))
        for case, (outcome, detail) in zip(selected, results):
            {"PASS": passed, "FAIL": failed, "XFAIL": xfailed, "XPASS": failed,
             "SKIP": skipped}[outcome].append((case["id"], detail))
    finally:
        while not upstreams.empty():
            upstreams.get().stop()
        if args.keep:
            print("work directory kept: %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print("conformance: %d cases in %.0fs" % (len(selected), time.monotonic() - start))
    if xfailed:
        print("expected mismatches (test/conformance/KNOWN_DIFFERENCES.md): %d" % len(xfailed))
        for case_id, reason in xfailed:
            print("  XFAIL %s: %s" % (case_id, reason))
    if skipped:
        print("skipped: %d" % len(skipped))
        for case_id, reason in skipped:
            print("  SKIP %s: %s" % (case_id, reason))
    if failed:
        print("failed:")
        for case_id, _ in failed:
            print("  FAIL %s" % case_id)
    print("%d passed, %d failed" % (len(passed), len(failed)))
    return 1 if failed else 0


def run_one(case, envoy, proxy, upstream, workdir, refused_port, verbose, out):
    case_id = case["id"]
    if case.get("skip"):
        print("SKIP  %s: %s" % (case_id, case["skip"]), file=out)
        return "SKIP", case["skip"]
    case_dir = os.path.join(workdir, case_id.replace("/", "__"))
    os.makedirs(case_dir)
    try:
        envoy_run = runner.run_case(case, "envoy", envoy, upstream, case_dir, refused_port)
        proxy_run = runner.run_case(case, "proxy", proxy, upstream, case_dir, refused_port)
    except runner.Skip as e:
        print("SKIP  %s: %s" % (case_id, e), file=out)
        return "SKIP", str(e)
    except Exception as e:  # a broken case or a crash: report it as a failure of that case
        print("FAIL  %s: %s: %s" % (case_id, type(e).__name__, e), file=out)
        return "FAIL", str(e)
    diffs = runner.compare(case, envoy_run, proxy_run)
    # A mismatch that is expected: another change in flight will settle it (expect_fail), or
    # we differ on purpose (known_difference). Both are listed in KNOWN_DIFFERENCES.md.
    expect_fail = case.get("expect_fail") or case.get("known_difference")
    if not diffs and not expect_fail:
        print("PASS  %s" % case_id, file=out)
        if verbose:
            print("envoy:\n%s" % runner.summary(envoy_run), file=out)
        return "PASS", None
    if not diffs:
        print("XPASS %s: passes now; remove its expect_fail/known_difference (%s) and its "
              "entry in KNOWN_DIFFERENCES.md" % (case_id, expect_fail), file=out)
        return "XPASS", expect_fail
    label = "XFAIL" if expect_fail else "FAIL "
    print("%s %s%s" % (label, case_id, " (%s)" % expect_fail if expect_fail else ""), file=out)
    for line in diffs:
        print("        " + line, file=out)
    if verbose or not expect_fail:
        print("      envoy:\n%s" % runner.summary(envoy_run), file=out)
        print("      proxy:\n%s" % runner.summary(proxy_run), file=out)
        if proxy_run["stderr"].strip():
            print("      proxy stderr:\n%s" % runner.tail(proxy_run["stderr"], 8), file=out)
    return ("XFAIL", expect_fail) if expect_fail else ("FAIL", diffs)


if __name__ == "__main__":
    sys.exit(main())
