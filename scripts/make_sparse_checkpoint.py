#!/usr/bin/env python3
"""Writes a sparse 118 GB sharded checkpoint (19 shards, 1,007 BF16 tensors of 14336 x 4096) into the
current directory: real headers, data left as holes, so it takes ~250 KB of disk. Used to time
`moeckpt inspect` on a large checkpoint (docs/PERFORMANCE.md). Standard library only."""
import json, struct, os
shards, per = 19, 53  # 1007 tensors
wm = {}
for s in range(shards):
    fn = f"model-{s+1:05d}-of-{shards:05d}.safetensors"
    hdr, off = {"__metadata__": {"format": "pt"}}, 0
    for t in range(per):
        name = f"model.layers.{s}.block_sparse_moe.experts.{t}.w1.weight"
        n = 14336 * 4096 * 2 // 2  # bf16 elements
        hdr[name] = {"dtype": "BF16", "shape": [14336, 4096], "data_offsets": [off, off + n * 2]}
        off += n * 2; wm[name] = fn
    h = json.dumps(hdr, separators=(",", ":")).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(fn, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); f.truncate(8 + len(h) + off)
json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, open("model.safetensors.index.json", "w"))
