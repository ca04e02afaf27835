"""Starting and stopping the two proxies under test. Both get the same bootstrap file and the same
Envoy flags; each is stopped by the PID this module started (SIGTERM, then SIGKILL)."""

import os
import signal
import socket
import subprocess
import time
import urllib.request


def free_port():
    """A port nobody listens on right now (bound and released: the proxy binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StartError(Exception):
    def __init__(self, message, stderr):
        super().__init__(message)
        self.stderr = stderr


class ProxyProcess:
    def __init__(self, label, binary, bootstrap_path, workdir):
        self.label = label
        self.binary = binary
        self.bootstrap_path = bootstrap_path
        self.workdir = workdir
        self.admin_path = os.path.join(workdir, "%s.admin" % label)
        self.stderr_path = os.path.join(workdir, "%s.stderr" % label)
        self.proc = None
        self.admin = None

    def args(self):
        return [
            self.binary,
            "-c", self.bootstrap_path,
            "--concurrency", "1",
            "--admin-address-path", self.admin_path,
            "--log-level", os.environ.get("CONFORMANCE_LOG_LEVEL", "warning"),
            # Both accept it: Envoy needs it so that runs in parallel do not share hot-restart
            # state; ours accepts it for compatibility.
            "--disable-hot-restart",
        ]

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self, listener_port, timeout=15.0):
        """Start and wait until /ready answers 200 and the listener accepts connections."""
        if os.path.exists(self.admin_path):
            os.unlink(self.admin_path)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise StartError("%s exited with %d at startup" % (self.label, self.proc.returncode),
                                 self.stderr())
            if time.monotonic() > deadline:
                self.stop()
                raise StartError("%s not ready after %.0fs" % (self.label, timeout), self.stderr())
            if self._ready(listener_port):
                return
            time.sleep(0.02)

    def _ready(self, listener_port):
        if self.admin is None:
            try:
                with open(self.admin_path) as f:
                    address = f.read().strip()
            except OSError:
                return False
            if not address:
                return False
            self.admin = address
        try:
            with urllib.request.urlopen("http://%s/ready" % self.admin, timeout=1) as r:
                if r.status != 200:
                    return False
        except OSError:
            return False
        try:
            with socket.create_connection(("127.0.0.1", listener_port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self, timeout=5.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
