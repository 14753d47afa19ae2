#!/usr/bin/env bash
# The main job on the shipped fixtures: set up, build in release mode, verify every shipped model
# against the outputs PyTorch computed for it, inspect a sharded checkpoint written by
# transformers, and round-trip it through convert (files, shards, dtypes, naming layouts),
# checking each result byte for byte against files written by the official tools.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
swift build -c release --product moeckpt 2>&1 | tail -n 1
bin=$(swift build -c release --show-bin-path)/moeckpt
work=$(mktemp -d /tmp/moeckpt-main-job.XXXXXX)
trap 'rm -rf "$work"' EXIT

same() {  # same FILE REFERENCE WHAT
  if cmp -s "$1" "$2"; then echo "ok    $3"; else echo "FAIL  $3 ($1 differs from $2)"; exit 1; fi
}

echo "== moeckpt verify: every shipped model against PyTorch's outputs"
# (a quantized GGUF's dequantized/ and llamacpp/expected.safetensors are checked below, against its model)
models=$(find fixtures/models fixtures/hdf5 fixtures/gguf -name expected.safetensors -not -path '*/dequantized/*' -not -path '*/llamacpp/*' -printf '%h\n' | sort)
# shellcheck disable=SC2086
"$bin" verify $models

echo
echo "== moeckpt inspect fixtures/safetensors/tiny-mixtral-sharded"
"$bin" inspect fixtures/safetensors/tiny-mixtral-sharded

echo
echo "== convert round trips"
"$bin" convert fixtures/safetensors/tiny-mixtral-sharded "$work/joined.safetensors"
same "$work/joined.safetensors" fixtures/safetensors/tiny-mixtral/model.safetensors \
  "3 shards -> 1 file equals transformers' single-file save"
"$bin" convert "$work/joined.safetensors" "$work/resharded" --max-shard-size 25KB
"$bin" convert "$work/resharded" "$work/rejoined.safetensors"
"$bin" convert "$work/joined.safetensors" "$work/fanned" --max-shard-size 25KB --plan "$work/plan.json" --quiet
scripts/convert_jobs.sh "$work/plan.json" 2 "$bin" > /dev/null
if diff -r "$work/resharded" "$work/fanned" > /dev/null; then
  echo "ok    convert --plan, its jobs through xargs -P and --finish equal one convert, file for file"
else
  echo "FAIL  convert --plan jobs differ from one convert"; exit 1
fi
same "$work/rejoined.safetensors" fixtures/safetensors/tiny-mixtral/model.safetensors \
  "1 file -> shards of 25KB -> 1 file is exact"
for dtype in bf16 f16; do
  "$bin" convert fixtures/safetensors/tiny-mixtral "$work/$dtype.safetensors" --dtype "$dtype"
  same "$work/$dtype.safetensors" "fixtures/casts/tiny-mixtral-$dtype.safetensors" \
    "--dtype $dtype equals torch's Tensor.to($dtype)"
done
for layout in hf-fused mistral gguf mlx; do
  "$bin" convert fixtures/models/layouts/hf "$work/$layout" --names "$layout" --quiet
  "$bin" convert "$work/$layout" "$work/$layout-back" --names hf --quiet
  same "$work/$layout-back/model.safetensors" fixtures/models/layouts/hf/model.safetensors \
    "--names $layout and back to hf is exact"
  cp "fixtures/models/layouts/$layout/expected.safetensors" "$work/$layout/"
  "$bin" verify "$work/$layout" > /dev/null
  echo "ok    --names $layout output verifies against transformers' logits"
done
"$bin" convert fixtures/hdf5/tiny-mixtral/model.h5 "$work/from-h5.safetensors" --quiet
same "$work/from-h5.safetensors" fixtures/models/tiny-mixtral/model.safetensors "HDF5 written by h5py -> safetensors is exact"
"$bin" convert fixtures/models/tiny-mixtral/model.safetensors "$work/gzip.h5" --hdf5-compression gzip:6 --quiet
"$bin" convert "$work/gzip.h5" "$work/from-gzip.safetensors" --quiet
same "$work/from-gzip.safetensors" fixtures/models/tiny-mixtral/model.safetensors "safetensors -> gzip HDF5 -> safetensors is exact"
"$bin" convert fixtures/models/layouts/mistral "$work/native.moeckpt" --quiet
"$bin" inspect "$work/native.moeckpt" --check > /dev/null
echo "ok    .moeckpt checksums verify"
"$bin" convert "$work/native.moeckpt" "$work/native-back" --quiet
same "$work/native-back/consolidated.safetensors" fixtures/models/layouts/mistral/consolidated.safetensors \
  "Mistral -> .moeckpt -> Mistral is exact"
"$bin" verify "$work/native.moeckpt" --expected fixtures/models/layouts/mistral/expected.safetensors > /dev/null
echo "ok    the .moeckpt verifies against transformers' logits"
"$bin" convert fixtures/gguf/tiny-mixtral "$work/from-gguf" --names hf --quiet
same "$work/from-gguf/model.safetensors" fixtures/models/tiny-mixtral/model.safetensors \
  "GGUF written by the gguf package -> transformers' names is exact"
"$bin" convert fixtures/gguf/tiny-mixtral/model.gguf "$work/again.gguf" --quiet
same "$work/again.gguf" fixtures/gguf/tiny-mixtral/model.gguf "GGUF -> GGUF is the gguf package's file"
"$bin" convert fixtures/models/families/qwen3_moe "$work/q8.gguf" --dtype q8_0 --quiet
# (a failing verify stops the job: set -e)
"$bin" verify "$work/q8.gguf" --expected fixtures/models/families/qwen3_moe/expected.safetensors --atol 0.2 --rtol 0 > /dev/null
echo "ok    Qwen3-MoE --dtype q8_0 GGUF verifies within Q8_0's error (atol 0.2)"
for q in q8_0 q4_0 q4_k_m bf16; do
  "$bin" verify "fixtures/gguf/qwen3-moe-$q/model.gguf" --expected "fixtures/gguf/qwen3-moe-$q/dequantized/expected.safetensors" > /dev/null
  echo "ok    llama.cpp's $q GGUF computes transformers' logits on its dequantized weights (1e-4)"
  "$bin" verify "fixtures/gguf/qwen3-moe-$q/model.gguf" --expected "fixtures/gguf/qwen3-moe-$q/llamacpp/expected.safetensors" --arithmetic ggml > /dev/null
  echo "ok    llama.cpp's $q GGUF, --arithmetic ggml, computes llama.cpp's own logits (1e-5)"
done
"$bin" compare fixtures/tokenizers/byte-level fixtures/tokenizers/byte-level/converter.gguf > /dev/null
echo "ok    compare: llama.cpp's own GGUF of a Qwen3-MoE is equivalent to the original"
status=0
"$bin" compare fixtures/compare/right/transformers-v5-qwen3_moe fixtures/compare/fused-experts-transposed > "$work/compare.txt" || status=$?
test "$status" = 1 && grep -q "^  - transposed" "$work/compare.txt"
echo "ok    compare: fused experts stored transposed are named (exit 1)"
echo "main job: all checks passed"
