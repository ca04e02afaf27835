"""Test certificates for the TLS cases, made once per run with the `openssl` CLI (EC P-256, so it
takes well under a second): a test CA, a second CA nobody trusts, and leaf certificates signed by
them. The same set as test/integration/tls_test_util.h:
  server            SAN DNS:localhost, DNS:server.example.com, IP:127.0.0.1
  server2           SAN DNS:other.example.com, DNS:*.wild.example.com
  client            SAN DNS:client.example.com, URI:spiffe://test/client
  client_wrong_san  SAN DNS:intruder.example.com
  client_expired    SAN DNS:client.example.com, valid in January 2020 only
  client_untrusted  SAN DNS:client.example.com, signed by the untrusted CA
Each NAME is NAME.pem and NAME.key in the directory; the CAs are ca.pem and untrusted_ca.pem.
"""

import os
import subprocess

LEAVES = [
    ("server", "DNS:localhost,DNS:server.example.com,IP:127.0.0.1", "ca", False),
    ("server2", "DNS:other.example.com,DNS:*.wild.example.com", "ca", False),
    ("client", "DNS:client.example.com,URI:spiffe://test/client", "ca", False),
    ("client_wrong_san", "DNS:intruder.example.com", "ca", False),
    ("client_expired", "DNS:client.example.com", "ca", True),
    ("client_untrusted", "DNS:client.example.com", "untrusted_ca", False),
]

CA_CONFIG = """[ ca ]
default_ca = CA_default
[ CA_default ]
database = {d}/index.txt
new_certs_dir = {d}
serial = {d}/serial
default_md = sha256
policy = policy_any
unique_subject = no
[ policy_any ]
commonName = supplied
"""


def _openssl(*args):
    result = subprocess.run(["openssl"] + list(args), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), result.stderr.strip()))


def create(directory):
    """Writes the certificates into `directory` (created); returns it."""
    d = directory
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write(CA_CONFIG.format(d=d))
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    for ca in ("ca", "untrusted_ca"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "%s/%s.key" % (d, ca), "-out", "%s/%s.pem" % (d, ca), "-days", "30",
                 "-subj", "/CN=" + ca)
    for name, san, ca, expired in LEAVES:
        base = os.path.join(d, name)
        with open(base + ".ext", "w") as f:
            f.write("subjectAltName=%s\n" % san)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=" + name)
        validity = (["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"] if expired
                    else ["-days", "30"])
        _openssl("ca", "-config", os.path.join(d, "ca.cnf"), "-batch", "-notext",
                 "-cert", "%s/%s.pem" % (d, ca), "-keyfile", "%s/%s.key" % (d, ca),
                 "-in", base + ".csr", "-out", base + ".pem", "-extfile", base + ".ext",
                 *validity)
    return d
