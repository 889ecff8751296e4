#!/usr/bin/env bash
# Shows that MixMoE can be consumed by version: tags this checkout's HEAD as 99.0.0 in a scratch
# bare repository, writes a throwaway package that depends on it with `from: "99.0.0"`, and builds
# it (SwiftPM refuses versioned dependencies with unsafe flags, so this fails for a package that
# has them). With OLD=REV it also tries REV (tagged 98.0.0) and prints SwiftPM's refusal.
#   scripts/check/check_versioned_dependency.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-$(mktemp -d)}
rm -rf "$W/mixmoe.git" "$W/consumer"
git clone -q --bare . "$W/mixmoe.git"
git -C "$W/mixmoe.git" tag 99.0.0 HEAD
[ -n "${OLD:-}" ] && git -C "$W/mixmoe.git" tag 98.0.0 "$OLD"
consumer() {  # VERSION
  rm -rf "$W/consumer"; mkdir -p "$W/consumer/Sources/Consumer"
  cat > "$W/consumer/Package.swift" <<SWIFT
// swift-tools-version: 6.0
import PackageDescription
let package = Package(
    name: "Consumer",
    dependencies: [.package(url: "file://$W/mixmoe.git", exact: "$1")],
    targets: [.executableTarget(name: "Consumer", dependencies: [.product(name: "MixMoE", package: "mixmoe")])])
SWIFT
  cat > "$W/consumer/Sources/Consumer/main.swift" <<'SWIFT'
import MixMoE
// a dense model from a named config, through the library as a dependency sees it
let m = DecoderModel(config: ModelConfig.tiny, seed: 0)
print("MixMoE as a versioned dependency: tiny model with \(m.store.count) parameters")
SWIFT
  (cd "$W/consumer" && swift build -c release 2>&1 | tail -3 && swift run -c release Consumer 2>/dev/null | tail -1)
}
echo "== this checkout, tagged 99.0.0"
consumer 99.0.0
if [ -n "${OLD:-}" ]; then echo "== $OLD, tagged 98.0.0"; consumer 98.0.0 || true; fi
