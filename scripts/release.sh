#!/usr/bin/env bash
# The release: the shipped build (scripts/build.sh) for both architectures, checked to be
# reproducible, named for download, with their checksums.
#
#   scripts/release.sh
#     -> dist/shim-<version>-x86_64-linux-musl     (uname -m: x86_64)
#        dist/shim-<version>-aarch64-linux-musl    (uname -m: aarch64, arm64)
#        dist/SHA256SUMS                           (sha256sum -c SHA256SUMS)
#
# Each binary is built twice, from nothing, in two target directories, and must come out
# the same byte for byte: nothing of the machine, the directory or the time goes in. What
# does go in is the commit (`shim --version`), so a release is made from a committed tree.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "warning: uncommitted changes: the binaries will hold them, but say only the commit $(git rev-parse --short=12 HEAD)" >&2
fi

# The two builds run side by side, so the toolchain is installed once, first.
scripts/build.sh --toolchain-only
rm -rf target/release-a target/release-b
pids=()
for build in a b; do
  scripts/build.sh --target-dir "target/release-$build" "${targets[@]}" >"target/release-$build.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in 0 1; do
  wait "${pids[$i]}" || failed=1
done
for build in a b; do
  grep -v '^ *Compiling ' "target/release-$build.log" | sed "s/^/build $build: /"
done
[ "$failed" = 0 ] || { echo "a build failed" >&2; exit 1; }

rm -rf dist
mkdir dist
for t in "${targets[@]}"; do
  a=target/release-a/$t/release/shim
  b=target/release-b/$t/release/shim
  if ! cmp -s "$a" "$b"; then
    echo "not reproducible: $a and $b differ" >&2
    exit 1
  fi
  echo "reproducible: $t built twice, sha256 $(sha256sum <"$a" | cut -d' ' -f1) both times"
  cp "$a" "dist/shim-$version-${t%%-*}-linux-musl"
done
(cd dist && sha256sum "shim-$version-"* >SHA256SUMS)

echo
for f in dist/shim-*; do
  printf '%-40s %7d bytes\n' "$f" "$(stat -c %s "$f")"
done
echo
cat dist/SHA256SUMS
