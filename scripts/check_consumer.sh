#!/usr/bin/env bash
# Builds scripts/consumer, a package that depends on moeckpt by URL and version (`from:`), against
# this checkout's commit as a tagged release, and runs it on a fixture model. SwiftPM refuses a
# versioned dependency whose products use unsafe build flags, so this is the check that the
# MoECkpt library product can be depended on.
#
# The release tag of the version the CLI reports is used where it points at HEAD; otherwise (a
# commit after the release, or a clone without tags) a throwaway bare clone tags HEAD with it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(sed -n 's/^ *version: "\([0-9][0-9.]*\)",$/\1/p' "$root/Sources/MoeckptCLI/Moeckpt.swift")
head=$(git -C "$root" rev-parse HEAD)
git clone -q --bare "$root" "$work/moeckpt.git"
tagged=$(git -C "$work/moeckpt.git" rev-parse -q --verify "refs/tags/$version^{commit}" || true)
if [ "$tagged" != "$head" ]; then
    echo "check_consumer: tagging $head as $version in a throwaway clone (the release tag is ${tagged:-absent})"
    git -C "$work/moeckpt.git" tag -f "$version" "$head" >/dev/null
fi
cp -R "$root/scripts/consumer" "$work/consumer"
export MOECKPT_URL="file://$work/moeckpt.git" MOECKPT_VERSION="$version"
swift build --package-path "$work/consumer" --scratch-path "$work/consumer/.build" 2>&1 | tail -3
resolved=$(sed -n 's/.*"version" : "\(.*\)".*/\1/p' "$work/consumer/Package.resolved" | head -5 | tr '\n' ' ')
echo "check_consumer: resolved versions: $resolved"
"$work/consumer/.build/debug/consumer" "$root/fixtures/models/mixtral_block"
