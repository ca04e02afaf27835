#!/usr/bin/env bash
# Packages only the benchmark needs (not part of the build or the tests): wrk as the load
# generator and nginx-light as the reference proxy. Idempotent, like install-deps.sh.
set -euo pipefail

PACKAGES=(wrk nginx-light)

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
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
lists=(/var/lib/apt/lists/*_Packages)
if [[ ! -e ${lists[0]} ]] || [[ -n $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mtime +1 -print -quit) ]]; then
  "${SUDO[@]}" apt-get update -q
fi
# nginx-light's postinst starts the packaged service on port 80 where an init system runs;
# the benchmark never uses it (it runs its own nginx with a generated config).
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
