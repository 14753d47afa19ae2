#!/bin/sh
# moeckpt bench of the MoE block, interleaved: f32, bf16, mxfp4 synthetic weights of gpt-oss-20b's expert shape (hidden 2880,
# intermediate 2880), 8 experts top-4, one MoE block; tokens 1 (decode) and 256.
B=${1:-.build/release/moeckpt}
for round in 1 2 3; do
  for tokens in 1 256; do
    for dtype in f32 bf16 mxfp4; do
      printf "round %s tokens %s %s: " $round $tokens $dtype
      $B bench --what moe --dtype $dtype --hidden 2880 --intermediate 2880 --experts 8 --top-k 4 --tokens $tokens --repeat 7 --threads 2 | grep median
    done
  done
done
