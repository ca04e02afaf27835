#!/usr/bin/env bash
# make-demo-certs.sh DIR: a throwaway PKI for the mutual-TLS demo (deploy/run-demo.sh with
# DEMO_TLS=1), made with the openssl CLI: DIR/ca.pem (the CA both sides trust),
# DIR/server.{pem,key} (control-plane-stub; SAN IP:127.0.0.1 and DNS:localhost, the host the
# proxy's gRPC channel checks) and DIR/client.{pem,key} (the proxy's client certificate).
# EC P-256 keys, valid for 30 days. Never use these for anything but the demo.
set -euo pipefail
dir=${1:?usage: make-demo-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=xds-proxy demo CA" -out ca.pem
for name in server client; do
  key "$name.key"
  openssl req -new -key "$name.key" -subj "/CN=demo-$name" -out "$name.csr"
  if [[ $name == server ]]; then
    ext="subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
  else
    ext="subjectAltName=DNS:demo-proxy
extendedKeyUsage=clientAuth"
  fi
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 30 \
    -extfile <(printf '%s\n' "$ext") -out "$name.pem" 2>/dev/null
  rm -f "$name.csr"
done
rm -f ca.srl
echo "make-demo-certs.sh: CA, server and client certificates in $dir"
