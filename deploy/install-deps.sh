#!/usr/bin/env bash
# Install every Debian 12 package the build, the demo and the tests need. Idempotent: packages
# already installed are skipped, and `apt-get update` runs only when something is missing and
# the package lists are absent or stale. Runs as root (fresh containers have no sudo); as
# another user it uses sudo when available.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config ccache git ca-certificates
  # clang + compiler-rt: the libFuzzer harnesses (test/fuzz/); clang-format: the format check
  clang libclang-rt-dev clang-format
  # libraries (see ../README.md and ARCHITECTURE.md: every dependency is a Debian package)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libevent-dev libyaml-cpp-dev libre2-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  # llhttp, the HTTP/1 parser Node.js uses, as C sources
  node-llhttp
  # HTTP/2 framing (issue 11): nghttp2, the library curl uses; its client tools (nghttp, h2load)
  # are test peers and the HTTP/2 benchmark client
  libnghttp2-dev nghttp2-client
  # TLS (issue 12): OpenSSL 3 and its command line (test certificates, s_client/s_server peers)
  libssl-dev openssl
  # DNS clusters (issue 13): c-ares, the asynchronous resolver Envoy uses; dnsmasq-base (the
  # binary alone, no service) is the DNS server the DNS cluster tests start
  libc-ares-dev dnsmasq-base
  # RING_HASH / MAGLEV (issue 13): xxHash, the hash Envoy's consistent-hashing balancers use
  libxxhash-dev
  # the demo prints curl commands; interop tests (later issues) run Node.js
  curl nodejs npm
  # benchmark client (test/bench/run_wrk.sh)
  wrk
  # the conformance runner (test/conformance/): Debian's Python 3 with PyYAML and h2 (its
  # HTTP/2 client); venv for deploy/install-peers.sh (Envoy from PyPI)
  python3 python3-yaml python3-h2 python3-venv
)

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps.sh: run as root (or install sudo)" >&2
  exit 1
fi

installed() {
  # "install ok installed" only when the package is fully installed (not just known).
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" && return 0
  # A Node.js from elsewhere (e.g. NodeSource's nodejs, which bundles npm and conflicts with
  # Debian's npm package) already provides the commands: keep it.
  case "$1" in
    nodejs) command -v node >/dev/null 2>&1 ;;
    npm) command -v npm >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps.sh: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Fresh images ship without package lists; refresh them when empty or older than a day.
lists=(/var/lib/apt/lists/*_Packages)
if [[ ! -e ${lists[0]} ]] || [[ -n $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mtime +1 -print -quit) ]]; then
  "${SUDO[@]}" apt-get update -q
fi
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
