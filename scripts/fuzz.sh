#!/usr/bin/env bash
# Builds one libFuzzer target (Fuzz/Package.swift) with address sanitizer and runs it for SECONDS
# on a seed corpus made from the fixtures. Crashes land in fuzz-artifacts/TARGET/.
# Usage: scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags]
#   TARGET: FuzzSafetensorsHeader | FuzzShardIndex | FuzzNative | FuzzConfig | FuzzHDF5 | FuzzNativeModel | FuzzGGUF
#           | FuzzTokenizer
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
shift 2

swift build --package-path Fuzz --product "$target" -c release --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld 2>&1 | tail -n 1

corpus=fuzz-corpus/$target
mkdir -p "$corpus" "fuzz-artifacts/$target"
# Seeds: the fixtures, and the hostile-input review's cases (fixtures/hostile/, and variants of
# the fixtures made here: counts at the limit, shard names with directory parts, RoPE scalings,
# control characters in names).
seed() { [ -f "$corpus/$2" ] || printf '%s' "$1" > "$corpus/$2"; }
config=$(cat fixtures/models/tiny-mixtral/config.json)
case $target in
  FuzzSafetensorsHeader)
    cp -n fixtures/safetensors/*.safetensors fixtures/malformed/*.safetensors "$corpus"/ 2>/dev/null || true
    printf '\x48\x00\x00\x00\x00\x00\x00\x00{"a\\nb\\u001b[2J":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}      \x00\x00\x00\x00' \
      > "$corpus/control-characters.safetensors" ;;
  FuzzGGUF)
    cp -n fixtures/gguf/*/*.gguf "$corpus"/ 2>/dev/null || true ;;
  FuzzTokenizer)
    # First byte: even for tokenizer.model, odd for tokenizer.json.
    for d in fixtures/tokenizers/*/; do
      name=$(basename "$d")
      [ -f "$d/tokenizer.model" ] && { printf '\x00'; cat "$d/tokenizer.model"; } > "$corpus/$name.model"
      { printf '\x01'; cat "$d/tokenizer.json"; } > "$corpus/$name.json"
    done ;;
  FuzzShardIndex)
    for f in $(find fixtures -name '*.index.json'); do cp -n "$f" "$corpus/$(echo "$f" | tr / _)"; done
    for name in link/x.safetensors ./a.safetensors .. /etc/passwd 'a\u0000b'; do
      seed "{\"weight_map\": {\"a\": \"$name\"}}" "shard-$(echo "$name" | tr -c 'a-z' _).json"
    done ;;
  FuzzNative|FuzzNativeModel)
    bin=$(swift build -c release --show-bin-path)/moeckpt
    [ -x "$bin" ] || swift build -c release --product moeckpt > /dev/null
    if [ "$target" = FuzzNative ]; then
      for f in safetensors/all_dtypes.safetensors safetensors/odd_shapes.safetensors models/tiny-mixtral models/basic_moe; do
        out="$corpus/$(echo "$f" | tr / _).moeckpt"
        [ -f "$out" ] || "$bin" convert "fixtures/$f" "$out" --quiet
      done
      cp -n fixtures/hostile/*.moeckpt "$corpus"/
    else
      for f in $(find fixtures/models -name config.json); do cp -n "$f" "$corpus/$(echo "$f" | tr / _)"; done
      seed "${config/\"num_hidden_layers\": 2/\"num_hidden_layers\": 16777216}" huge-layers.json
      seed "${config/\"num_local_experts\": 4/\"num_local_experts\": 16777216}" huge-experts.json
    fi ;;
  FuzzConfig)
    for f in $(find fixtures -name config.json -o -name params.json); do cp -n "$f" "$corpus/$(echo "$f" | tr / _)"; done
    seed "${config/\"num_hidden_layers\": 2/\"num_hidden_layers\": 16777216}" huge-layers.json
    seed "${config/\"num_local_experts\": 4/\"num_local_experts\": 16777216}" huge-experts.json
    seed "${config/\"rope_type\": \"default\"/\"rope_type\": \"yarn\", \"factor\": 1e30}" rope-yarn.json
    seed "${config/\"rope_parameters\": \{/\"rope_scaling\": {\"type\": \"linear\"}, \"rope_parameters\": \{}" rope-linear.json ;;
  FuzzHDF5)
    for f in $(find fixtures/hdf5 fixtures/hostile -name '*.h5' -size -64k); do cp -n "$f" "$corpus/$(echo "$f" | tr / _)"; done ;;
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
