#!/usr/bin/env bash
# The format check of deploy/run-tests.sh: every C++ file git tracks must be exactly as
# clang-format (Debian 12's, version 14, with the repository's .clang-format) writes it. Prints
# the diff of each file that is not and exits non-zero; FIX=1 rewrites them instead.
#
#   bash deploy/check-format.sh          # check (CI)
#   FIX=1 bash deploy/check-format.sh    # format every tracked file in place
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$CLANG_FORMAT" >/dev/null || {
  echo "check-format.sh: $CLANG_FORMAT is missing; run: bash deploy/install-deps.sh" >&2
  exit 1
}
# Another major version formats some constructs differently: the check would flip-flop.
version=$("$CLANG_FORMAT" --version | grep -oE 'version [0-9]+' | grep -oE '[0-9]+')
if [[ $version != 14 ]]; then
  echo "check-format.sh: clang-format $version found; the tree is formatted with 14 (Debian 12)" >&2
  exit 1
fi

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cc' '*.h')
else  # an unpacked tarball: every source outside the build trees
  mapfile -t files < <(find . -path './build*' -prune -o -type f \( -name '*.cc' -o -name '*.h' \) -print | sort)
fi
if [[ ${FIX:-0} == 1 ]]; then
  "$CLANG_FORMAT" -i "${files[@]}"
  echo "check-format.sh: formatted ${#files[@]} files"
  exit 0
fi

bad=0
for file in "${files[@]}"; do
  if ! "$CLANG_FORMAT" "$file" | diff -u --label "$file" --label "$file (clang-format)" "$file" -; then
    bad=$((bad + 1))
  fi
done
if [[ $bad -ne 0 ]]; then
  echo "check-format.sh: $bad of ${#files[@]} files differ from clang-format; fix with: FIX=1 bash deploy/check-format.sh" >&2
  exit 1
fi
echo "check-format.sh: ${#files[@]} files formatted"
