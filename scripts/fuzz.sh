#!/usr/bin/env bash
# Builds one libFuzzer target (Fuzz/Package.swift) with address sanitizer and runs it for SECONDS
# on a seed corpus made from the fixtures. Crashes land in fuzz-artifacts/TARGET/.
# Usage: scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags]
#   TARGET: FuzzSafetensorsHeader | FuzzShardIndex | FuzzNative | FuzzConfig | FuzzHDF5
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
shift 2

swift build --package-path Fuzz --product "$target" -c release --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld 2>&1 | tail -n 1

corpus=fuzz-corpus/$target
mkdir -p "$corpus" "fuzz-artifacts/$target"
case $target in
  FuzzSafetensorsHeader) cp -n fixtures/safetensors/*.safetensors fixtures/malformed/*.safetensors "$corpus"/ 2>/dev/null || true ;;
  FuzzShardIndex) for f in $(find fixtures -name '*.index.json'); do cp -n "$f" "$corpus/$(echo "$f" | tr / _)"; done ;;
  FuzzNative)
    bin=$(swift build -c release --show-bin-path)/moeckpt
    [ -x "$bin" ] || swift build -c release --product moeckpt > /dev/null
    for f in safetensors/all_dtypes.safetensors safetensors/odd_shapes.safetensors models/tiny-mixtral models/basic_moe; do
      out="$corpus/$(echo "$f" | tr / _).moeckpt"
      [ -f "$out" ] || "$bin" convert "fixtures/$f" "$out" --quiet
    done ;;
  FuzzConfig) for f in $(find fixtures -name config.json -o -name params.json); do cp -n "$f" "$corpus/$(echo "$f" | tr / _)"; done ;;
  FuzzHDF5) for f in $(find fixtures/hdf5 -name '*.h5' -size -64k); do cp -n "$f" "$corpus/$(echo "$f" | tr / _)"; done ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac

# libhdf5 keeps allocations made on its error paths, and until exit (reported by LeakSanitizer
# inside the library, not in moeckpt): leaks are not checked for that target. libhdf5 runs in a
# child process that moeckpt stops after 10 s: allow the fuzzer more than that.
leaks=1 timeout=10
if [ "$target" = FuzzHDF5 ]; then
  leaks=0 timeout=30
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
fi
# Inputs up to 64 KiB; 2 GiB of memory at most (a parser must never allocate by an unchecked size);
# a run over 10 s is a hang.
exec ".build-fuzz/release/$target" "$corpus" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
  -timeout=$timeout -detect_leaks=$leaks -artifact_prefix="fuzz-artifacts/$target/" -print_final_stats=1 "$@"
