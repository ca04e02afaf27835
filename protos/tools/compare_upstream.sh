#!/usr/bin/env bash
# Cross-checks protos/ against Envoy's upstream API protos: every message, enum and service we
# declare must exist upstream in the same file with the same field numbers, names, json names,
# types, labels, oneofs, enum values and RPC methods (see compare_upstream.py).
#
# Usage: protos/tools/compare_upstream.sh [--show-omitted] [--show-deprecated]
#
# UPSTREAM_DEPS points at the deps/ folder of the npm package @grpc/grpc-js-xds, which ships
# envoy-api, googleapis, xds and protoc-gen-validate. Fetch it with:
#   mkdir -p /tmp/xdsprotos && cd /tmp/xdsprotos && npm pack @grpc/grpc-js-xds && tar xzf *.tgz
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ours_root="$(dirname "${here}")"
deps="${UPSTREAM_DEPS:-/tmp/xdsprotos/package/deps}"
protoc="${PROTOC:-protoc}"
wkt_include="${PROTOBUF_INCLUDE:-/usr/include}"  # holds google/protobuf/descriptor.proto

if [[ ! -d "${deps}/envoy-api" ]]; then
  echo "no upstream protos at ${deps} (set UPSTREAM_DEPS; see the header of $0)" >&2
  exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# Our files, as import paths relative to protos/.
mapfile -t files < <(cd "${ours_root}" && find . -name '*.proto' -not -path './tools/*' \
                       | sed 's|^\./||' | sort)

# The protoc-gen-validate copy in the npm package can be older than envoy-api and lack rule
# fields envoy-api uses (e.g. StringRules.ignore_empty). Validation rules do not matter here, so
# add each missing field to a private copy of validate.proto until upstream compiles.
mkdir -p "${work}/pgv/validate"
cp "${deps}/protoc-gen-validate/validate/validate.proto" "${work}/pgv/validate/"
compile_upstream() {
  "${protoc}" -I "${deps}/envoy-api" -I "${deps}/googleapis" -I "${deps}/xds" \
    -I "${work}/pgv" -I "${wkt_include}" --include_imports \
    --descriptor_set_out="${work}/upstream.pb" "${files[@]}" 2> "${work}/upstream.err"
}
next_number=90000
until compile_upstream; do
  missing="$(grep -o 'Message type "validate\.[A-Za-z]*" has no field named "[a-z_]*"' \
               "${work}/upstream.err" | head -1 || true)"
  if [[ -z "${missing}" ]]; then
    cat "${work}/upstream.err" >&2
    exit 2
  fi
  msg="$(sed 's/.*"validate\.\([A-Za-z]*\)".*/\1/' <<< "${missing}")"
  field="$(sed 's/.*field named "\([a-z_]*\)".*/\1/' <<< "${missing}")"
  sed -i "s/^message ${msg} {/message ${msg} {\n    optional bool ${field} = ${next_number};/" \
    "${work}/pgv/validate/validate.proto"
  next_number=$((next_number + 1))
done

"${protoc}" -I "${ours_root}" -I "${wkt_include}" --include_imports \
  --descriptor_set_out="${work}/ours.pb" "${files[@]}"

for side in ours upstream; do
  "${protoc}" -I "${wkt_include}" --decode=google.protobuf.FileDescriptorSet \
    google/protobuf/descriptor.proto < "${work}/${side}.pb" > "${work}/${side}.txt"
done

python3 "${here}/compare_upstream.py" "$@" "${work}/ours.txt" "${work}/upstream.txt" \
  --files "${files[@]}"
