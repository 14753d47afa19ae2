#!/usr/bin/env bash
# Runs ~775 moeckpt commands over the fixtures with one binary and records, per command, stdout,
# stderr and exit status, and the sha256 of every file it wrote (HDF5 files by their contents, see
# hdf5_signature.py: libhdf5 stamps times into them). For refactorings that must not change
# behaviour: run it with the binary from before and from after, then `diff -r` the two RESULTDIRs.
#   Usage: scripts/behaviour_battery.sh BIN RESULTDIR     (PYTHON: a python with h5py)
bin=$(realpath "$1"); res=$(realpath -m "$2")
cd "$(dirname "$0")/.."
rm -rf "$res" /tmp/bw; mkdir -p "$res" /tmp/bw  # outputs under one fixed path, so that messages naming them compare
n=0
rec() {  # rec NAME cmd...
  local name=$1; shift
  n=$((n+1))
  "$@" > "$res/$name.out" 2> "$res/$name.err"; echo "exit $?" >> "$res/$name.out"
  sed -i 's/[0-9.]* ms\|[0-9.]* s\b//g' "$res/$name.err"
}
hashout() {  # hashout NAME PATH
  if [ -f "$2" ] && [[ "$2" == *.h5 ]]; then "${PYTHON:-python3}" scripts/hdf5_signature.py "$2" > "$res/$1.sha"; return; fi
  if [ -e "$2" ]; then (cd "$(dirname "$2")" && find "$(basename "$2")" -type f -print0 | sort -z | xargs -0 sha256sum) > "$res/$1.sha"; else echo none > "$res/$1.sha"; fi
}
models=$(find fixtures/models fixtures/hdf5 -name expected.safetensors -printf '%h\n' | sort)
inputs="$models fixtures/safetensors/tiny-mixtral fixtures/safetensors/tiny-mixtral-fused fixtures/safetensors/tiny-mixtral-sharded fixtures/models/layouts/hf-sharded $(ls fixtures/hdf5/*.h5 fixtures/dtypes/*.safetensors fixtures/hostile/* fixtures/malformed/*.safetensors 2>/dev/null | head -80)"
i=0
for m in $inputs; do
  i=$((i+1)); t=$(echo "$m" | tr '/' '_')
  rec "inspect_$t" $bin inspect "$m"
  rec "inspectjson_$t" $bin inspect "$m" --json
done
for m in $models; do
  t=$(echo "$m" | tr '/' '_')
  rec "verify_$t" $bin verify "$m"
  rec "verifyjson_$t" $bin verify "$m" --json --threads 1
  rec "run_$t" $bin run "$m" --input "$m/expected.safetensors" --output /tmp/bw/run_$t.safetensors --aux-losses
  hashout "run_$t" /tmp/bw/run_$t.safetensors
  for out in o.safetensors odir o.h5 o.moeckpt; do
    rec "conv_${t}_$out" $bin convert "$m" /tmp/bw/$t-$out; hashout "conv_${t}_$out" /tmp/bw/$t-$out
  done
  rec "conv_${t}_gz" $bin convert "$m" /tmp/bw/$t-gz.h5 --hdf5-compression gzip:6; hashout "conv_${t}_gz" /tmp/bw/$t-gz.h5
  rec "conv_${t}_shard" $bin convert "$m" /tmp/bw/$t-shard --max-shard-size 20KB; hashout "conv_${t}_shard" /tmp/bw/$t-shard
  for dt in bf16 f16 f32; do rec "conv_${t}_$dt" $bin convert "$m" /tmp/bw/$t-$dt.safetensors --dtype $dt; hashout "conv_${t}_$dt" /tmp/bw/$t-$dt.safetensors; done
  for l in hf hf-fused mistral gguf mlx canonical mixture_of_experts switch_transformer mixtral_block basic_moe sparse_moe; do
    rec "conv_${t}_n$l" $bin convert "$m" /tmp/bw/$t-n$l --names $l; hashout "conv_${t}_n$l" /tmp/bw/$t-n$l
  done
  # round trips through the native format
  if [ -e /tmp/bw/$t-o.moeckpt ]; then
    rec "conv_${t}_back" $bin convert /tmp/bw/$t-o.moeckpt /tmp/bw/$t-back; hashout "conv_${t}_back" /tmp/bw/$t-back
    rec "conv_${t}_backh5" $bin convert /tmp/bw/$t-o.moeckpt /tmp/bw/$t-back.h5; hashout "conv_${t}_backh5" /tmp/bw/$t-back.h5
    rec "verify_${t}_native" $bin verify /tmp/bw/$t-o.moeckpt --expected "$m/expected.safetensors"
    rec "inspect_${t}_native" $bin inspect /tmp/bw/$t-o.moeckpt --check
    rec "conv_${t}_nat2" $bin convert /tmp/bw/$t-nmistral /tmp/bw/$t-nat2.moeckpt; hashout "conv_${t}_nat2" /tmp/bw/$t-nat2.moeckpt
    rec "conv_${t}_nat3" $bin convert /tmp/bw/$t-nat2.moeckpt /tmp/bw/$t-nat3; hashout "conv_${t}_nat3" /tmp/bw/$t-nat3
    rec "conv_${t}_nat4" $bin convert /tmp/bw/$t-o.moeckpt /tmp/bw/$t-nat4 --names gguf; hashout "conv_${t}_nat4" /tmp/bw/$t-nat4
  fi
  rec "inspect_${t}_h5" $bin inspect /tmp/bw/$t-o.h5
  rec "verify_${t}_h5" $bin verify /tmp/bw/$t-o.h5 --expected "$m/expected.safetensors"
done
# usage and errors
for c in "" inspect convert verify run bench; do rec "help_$c" $bin $c --help; done
rec e1 $bin convert fixtures/models/tiny-mixtral /tmp/bw/x.safetensors --names hf
rec e2 $bin convert fixtures/models/tiny-mixtral /tmp/bw/x.h5 --names hf
rec e3 $bin convert fixtures/models/tiny-mixtral /tmp/bw/x --dtype i8
rec e4 $bin convert fixtures/models/tiny-mixtral /tmp/bw/x --names nope
rec e5 $bin convert fixtures/models/tiny-mixtral /tmp/bw/x.moeckpt --names hf
rec e6 $bin convert fixtures/models/tiny-mixtral /tmp/bw/x --hdf5-compression gzip:12
rec e7 $bin convert fixtures/models/tiny-mixtral /tmp/bw/x --max-shard-size 5XB
rec e8 $bin bench --what nope
rec e9 $bin bench --dtype f16
rec e10 $bin bench fixtures/models/basic_moe --what moe
rec e11 $bin verify fixtures/models/tiny-mixtral --expected fixtures/models/basic_moe/expected.safetensors
rec e12 $bin run fixtures/models/basic_moe --input fixtures/models/tiny-mixtral/expected.safetensors --output /tmp/bw/e12.safetensors
rec e13 $bin convert fixtures/models/basic_moe /tmp/bw/x13 --names hf
rec e14 $bin verify fixtures/models/tiny-mixtral --threads 0
rec e15 $bin bench --tokens 4 --hidden 64 --intermediate 128 --layers 1 --vocab 100 --what nope
rec e16 $bin convert fixtures/hdf5/tiny-mixtral/model.h5 /tmp/bw/e16.h5 --hdf5-compression none; hashout e16 /tmp/bw/e16.h5
rec e17 $bin verify fixtures/models/tiny-mixtral fixtures/models/basic_moe
rec e18 $bin convert fixtures/models/layouts/gguf /tmp/bw/e18 --names mistral; hashout e18 /tmp/bw/e18
rec e19 $bin convert fixtures/models/layouts/hf-sharded /tmp/bw/e19.moeckpt; hashout e19 /tmp/bw/e19.moeckpt
rec e20 $bin convert fixtures/dtypes/all_dtypes.safetensors /tmp/bw/e20.moeckpt; hashout e20 /tmp/bw/e20.moeckpt
rec e21 $bin convert fixtures/models/tiny-mixtral/model.safetensors /tmp/bw/e21 --names mlx; hashout e21 /tmp/bw/e21
echo "$n commands"
