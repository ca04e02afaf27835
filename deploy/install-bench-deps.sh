#!/usr/bin/env bash
# Packages only the benchmarks need (not part of the build or the tests): wrk, h2load and nghttp
# (nghttp2-client: test/bench/run_h2load.sh) and openssl (s_time, s_client: test/bench/run_tls.sh)
# as load generators, nginx-light and haproxy as reference proxies; Envoy, the third, comes from
# deploy/install-peers.sh (run at the end). All Debian packages. Idempotent, like install-deps.sh.
set -euo pipefail

PACKAGES=(wrk nghttp2-client openssl nginx-light haproxy)

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-bench-deps.sh: run as root (or install sudo)" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-bench-deps.sh: all packages already installed"
else
  export DEBIAN_FRONTEND=noninteractive
  lists=(/var/lib/apt/lists/*_Packages)
  if [[ ! -e ${lists[0]} ]] || [[ -n $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mtime +1 -print -quit) ]]; then
    "${SUDO[@]}" apt-get update -q
  fi
  # nginx-light's and haproxy's postinst start the packaged services where an init system runs;
  # the benchmark never uses them (it runs its own with generated configs).
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
bash "$(dirname "${BASH_SOURCE[0]}")/install-peers.sh"
