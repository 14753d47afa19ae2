#!/usr/bin/env python3
"""Generate the DeepSeek-V3 and gpt-oss cases of fixtures/models/families/
(tiny random models built with transformers, their FP8 / MXFP4 checkpoints as
the released models store them, and the outputs transformers computes) and
fixtures/routers/deepseek_v3.safetensors (DeepSeek-V3's router alone, on
random and tie-heavy rows).

Run AFTER scripts/make_family_fixtures.py (which deletes all of
fixtures/models/families/, these cases included, and rewrites its README.md):

    PYTHONPATH=/path/to/accelerate /work/venv/bin/python scripts/make_family_fixtures_2.py

Needs the pinned packages of scripts/requirements-fixtures.txt (torch,
safetensors, transformers, numpy, gguf) and `accelerate` (+ `psutil`), which
transformers wants before it loads an FP8 or MXFP4 checkpoint (the reload
check of the two quantized cases).  Not mlx.  CI never runs this script; the
generated files are committed.

Deterministic (a torch.manual_seed per model, seeded generators for every
edit and for the router rows, header metadata re-serialised with sorted keys)
and re-runnable: it deletes and rewrites only its own case directories and
fixtures/routers/, and replaces the section it appends to
fixtures/models/families/README.md (everything from the marker line on).

Same conventions as make_family_fixtures.py: config.json + model.safetensors
as save_pretrained writes them (the quantized cases: written here, as the
released checkpoints are laid out), expected.safetensors with input_ids,
logits, hidden_states.N, router_logits.L (decoder-layer index, MoE layers
only) and aux_loss where transformers returns one; metadata atol/rtol 1e-4 and
`reference`; eager attention, eager experts, float32; every checkpoint
reloaded with from_pretrained must give bit-identical logits.  Besides, each
model is recomputed by an independent hand-written forward pass
(`hand_forward_*`, plain torch ops following the fact sheet's formulas) that
must agree with transformers to 2e-5.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch
import torch.nn.functional as F

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
OUT = ROOT / "fixtures" / "models" / "families"
ROUTER_OUT = ROOT / "fixtures" / "routers"
README = OUT / "README.md"
MARKER = "<!-- Everything below is written by scripts/make_family_fixtures_2.py -->"

sys.path.insert(0, str(SCRIPTS))
from check_layout_logits import INPUT_IDS_SEED  # noqa: E402
from fixture_util import fresh_dir, log  # noqa: E402
from make_family_fixtures import (  # noqa: E402
    ATOL, EXPECTED, IDS_SHAPE, RTOL, ZERO_ID, ZERO_POSITIONS, _comp_largest, _compact_table, _heap_select,
    _nth_element, _sort_heap, _std_sort, _table, _versions, check_topk_rule, hand_aux_loss, make_ids)
from make_model_fixtures import save_st, tensor_table  # noqa: E402

MAX_TOTAL_BYTES = 3 * 1024 * 1024  # this script's files
HAND_ATOL = 2e-5

FP8_QUANT_CONFIG = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                    "weight_block_size": [128, 128]}
MXFP4_QUANT_CONFIG = {"modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                 "model.embed_tokens", "lm_head"], "quant_method": "mxfp4"}
FP4_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


# ---------------------------------------------------------------------------
# torch.topk on CPU with sorted=False (DeepSeek-V3's router), on top of the
# libstdc++ port of make_family_fixtures.py
# ---------------------------------------------------------------------------

def topk_like_torch(values, k: int, sorted_: bool = True) -> list[int]:
    """torch.topk(values, k, largest=True, sorted=sorted_).indices on CPU
    (torch 2.13, aten/src/ATen/native/TopKImpl.h): k * 64 <= n:
    std::partial_sort (the result is sorted whatever `sorted` says); otherwise
    std::nth_element(k - 1) and, only if sorted, std::sort of the first k - 1."""
    n = len(values)
    q = [(float(v), j) for j, v in enumerate(values)]
    if k * 64 <= n:
        _heap_select(q, 0, k, n, _comp_largest)
        _sort_heap(q, 0, k, _comp_largest)
    else:
        _nth_element(q, 0, k - 1, n, _comp_largest)
        if sorted_:
            _std_sort(q, 0, k - 1, _comp_largest)
    return [j for _, j in q[:k]]


def ds_route(logits: torch.Tensor, bias: torch.Tensor, n_group: int, topk_group: int, k: int,
             norm: bool, scale: float) -> dict[str, torch.Tensor]:
    """DeepseekV3TopkRouter.forward after the linear (modeling_deepseek_v3.py:136-158), with the
    intermediate values.  Used next to the module itself (asserted equal)."""
    T, E = logits.shape
    scores = logits.sigmoid()
    sfc = scores + bias
    gs = sfc.view(-1, n_group, E // n_group).topk(2, dim=-1)[0].sum(dim=-1)
    gidx = torch.topk(gs, k=topk_group, dim=-1, sorted=False)[1]
    gmask = torch.zeros_like(gs)
    gmask.scatter_(1, gidx, 1)
    smask = gmask.unsqueeze(-1).expand(-1, n_group, E // n_group).reshape(-1, E)
    masked = sfc.masked_fill(~smask.bool(), float("-inf"))
    idx = torch.topk(masked, k=k, dim=-1, sorted=False)[1]
    w = scores.gather(1, idx)
    if norm:
        w = w / (w.sum(dim=-1, keepdim=True) + 1e-20)
    w = w * scale
    return {"scores": scores, "biased": sfc, "group_scores": gs, "groups": gidx, "masked": masked,
            "indices": idx, "weights": w}


def check_ds_routing_rule(r: dict, k: int, topk_group: int, what: str) -> None:
    """The libstdc++ port reproduces torch's group choice (as a set) and expert choice (in torch's order)."""
    for t in range(r["masked"].shape[0]):
        g = topk_like_torch(r["group_scores"][t].tolist(), topk_group, sorted_=False)
        assert sorted(g) == sorted(r["groups"][t].tolist()), f"{what} row {t}: groups {g} vs {r['groups'][t]}"
        e = topk_like_torch(r["masked"][t].tolist(), k, sorted_=False)
        assert e == r["indices"][t].tolist(), f"{what} row {t}: experts {e} vs torch {r['indices'][t].tolist()}"


def boundary_gap(values: torch.Tensor, k: int) -> tuple[list[int], float]:
    """Rows whose k-th and (k+1)-th largest finite values are equal, and the smallest non-zero gap
    between them over the other rows."""
    s = torch.sort(values, dim=-1, descending=True).values
    ties, gap = [], math.inf
    for r in range(s.shape[0]):
        if s.shape[1] <= k or not torch.isfinite(s[r, k]):
            continue
        d = float(s[r, k - 1] - s[r, k])
        if d == 0.0:
            if not torch.all(s[r][torch.isfinite(s[r])] == s[r, 0]):
                ties.append(r)
        else:
            gap = min(gap, d)
    return ties, gap


# ---------------------------------------------------------------------------
# quantization
# ---------------------------------------------------------------------------

def fp8_quantize(w: torch.Tensor, block: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepSeek-V3's block FP8: for each block x block tile (the last row/column tiles may be
    partial), s = amax(|w|) / 448 (F32, `weight_scale_inv`) and q = (w / s).to(float8_e4m3fn)
    (round to nearest even; |w / s| <= 448 so no saturation).  Dequantized: q.float() * s."""
    R, C = w.shape
    nr, nc = -(-R // block), -(-C // block)
    s = torch.empty(nr, nc, dtype=torch.float32)
    q = torch.empty(R, C, dtype=torch.float8_e4m3fn)
    for i in range(nr):
        for j in range(nc):
            tile = w[i * block:(i + 1) * block, j * block:(j + 1) * block].float()
            amax = tile.abs().max()
            sc = (amax / 448.0) if amax > 0 else torch.tensor(1.0)
            s[i, j] = sc
            q[i * block:(i + 1) * block, j * block:(j + 1) * block] = (tile / sc).to(torch.float8_e4m3fn)
    return q, s


def fp8_dequantize(q: torch.Tensor, s: torch.Tensor, block: int = 128) -> torch.Tensor:
    full = s.repeat_interleave(block, 0).repeat_interleave(block, 1)[: q.shape[0], : q.shape[1]]
    return q.to(torch.float32) * full


def mxfp4_snap(w: torch.Tensor) -> torch.Tensor:
    """Round each group of 32 consecutive values of the LAST axis to MXFP4 with gguf-py's
    quantizer (gguf.quants.MXFP4: shared exponent e = floor(log2(amax)) - 2 (+127 bias), element =
    nearest E2M1 value) and return the dequantized values (exactly representable)."""
    from gguf.quants import MXFP4
    x = w.detach().to(torch.float32).contiguous().numpy().reshape(-1, 32)
    blocks = MXFP4.quantize_blocks(x)
    back = MXFP4.dequantize_blocks(blocks)
    return torch.from_numpy(np.ascontiguousarray(back, dtype=np.float32)).reshape(w.shape)


def mxfp4_encode(w_last32: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """HF/OpenAI MXFP4 of values exactly representable (groups of 32 along the last axis):
    blocks [..., G, 16] U8 with element 2j in the LOW nibble and 2j+1 in the HIGH nibble of byte j,
    scales [..., G] U8 = exponent + 127.  Cross-checked against gguf's encoding and transformers'
    dequantizer by the caller."""
    *lead, n = w_last32.shape
    assert n % 32 == 0
    x = w_last32.reshape(*lead, n // 32, 32).to(torch.float64)
    amax = x.abs().amax(-1)
    e = torch.where(amax > 0, torch.floor(torch.log2(amax)) - 2, torch.zeros_like(amax))
    mant = x / torch.pow(2.0, e).unsqueeze(-1)
    table = torch.tensor(FP4_VALUES, dtype=torch.float64)
    codes = torch.empty(mant.shape, dtype=torch.uint8)
    for c in range(16):
        if c == 8:
            continue  # -0 never chosen (0 is code 0)
        codes[mant == table[c]] = c
    hit = torch.zeros(mant.shape, dtype=torch.bool)
    for c in range(16):
        hit |= (mant == table[c])
    assert bool(hit.all()), "values are not MXFP4-representable"
    blocks = (codes[..., 0::2] | (codes[..., 1::2] << 4)).to(torch.uint8)
    scales = (e + 127).to(torch.uint8)
    return blocks.contiguous(), scales.contiguous()


# ---------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------

DS_BASE = dict(vocab_size=96, hidden_size=32, intermediate_size=256, moe_intermediate_size=12, num_hidden_layers=3,
               num_attention_heads=4, num_key_value_heads=4, n_shared_experts=1, n_routed_experts=16,
               routed_scaling_factor=2.5, kv_lora_rank=16, q_lora_rank=24, qk_rope_head_dim=8, v_head_dim=12,
               qk_nope_head_dim=8, n_group=4, topk_group=2, num_experts_per_tok=4, first_k_dense_replace=1,
               norm_topk_prob=True, initializer_range=0.15, max_position_embeddings=128, rope_interleave=True,
               rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
DS_YARN = dict(DS_BASE, max_position_embeddings=163840,
               rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0,
                                "original_max_position_embeddings": 4096, "beta_fast": 32.0, "beta_slow": 1.0,
                                "mscale": 1.0, "mscale_all_dim": 0.8})
DS_QPLAIN = dict(DS_BASE, q_lora_rank=None, rope_interleave=False, intermediate_size=48, n_routed_experts=8, n_group=2,
                 topk_group=1, num_experts_per_tok=2, norm_topk_prob=False, routed_scaling_factor=1.5,
                 n_shared_experts=2, qk_nope_head_dim=12, qk_rope_head_dim=4, v_head_dim=8)
GO_BASE = dict(vocab_size=96, hidden_size=64, intermediate_size=32, head_dim=16, num_attention_heads=4,
               num_key_value_heads=2, num_hidden_layers=3, num_local_experts=8, num_experts_per_tok=4,
               sliding_window=4, max_position_embeddings=131072, initializer_range=0.15,
               rope_parameters={"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0,
                                "beta_slow": 1.0, "truncate": False, "original_max_position_embeddings": 4096})

CASES: list[dict] = [
    dict(name="deepseek_v3", family="deepseek_v3", seed=301, cfg=DS_BASE, dup_router_rows=True,
         exercises="DeepSeek-V3: MLA with q_lora_rank 24 (q_a_proj, q_a_layernorm, q_b_proj), kv_lora_rank 16 "
                   "(kv_a_proj_with_mqa -> 16 latent + 8 rope dims, kv_a_layernorm, kv_b_proj -> k_nope 8 + v 12 per "
                   "head), rope_interleave true, scale 1/sqrt(16); layer 0 dense (first_k_dense_replace 1, "
                   "intermediate 256 = two 128-row FP8 blocks), layers 1-2 MoE: 16 experts in n_group 4, "
                   "topk_group 2, top-4 by sigmoid + e_score_correction_bias, weights from the unbiased sigmoid, "
                   "norm_topk_prob true, routed_scaling_factor 2.5, 1 shared expert; two tied router rows in layer 1"),
    dict(name="deepseek_v3-yarn", family="deepseek_v3", seed=301, cfg=DS_YARN, same_weights_as="deepseek_v3",
         dup_router_rows=False,
         exercises="the deepseek_v3 weights with YaRN rope_parameters (factor 40, original_max_position_embeddings "
                   "4096, beta_fast 32, beta_slow 1, mscale 1.0, mscale_all_dim 0.8 -- deliberately unequal so "
                   "that cos/sin are scaled too; truncate absent = true): inv_freq blended, cos/sin * "
                   "mscale(1.0)/mscale(0.8), softmax scale * mscale(0.8)^2"),
    dict(name="deepseek_v3-qplain", family="deepseek_v3", seed=302, cfg=DS_QPLAIN, dup_router_rows=False,
         exercises="DeepSeek-V3 with q_lora_rank null (a plain q_proj [4*16, 32]), rope_interleave false "
                   "(rotate_half on the 4 rope dims), qk_nope 12 / rope 4 / v 8, 8 experts in n_group 2 with "
                   "topk_group 1, top-2, norm_topk_prob false, routed_scaling_factor 1.5, n_shared_experts 2 "
                   "(shared MLP of 2*12)"),
    dict(name="deepseek_v3-fp8", family="deepseek_v3", seed=301, cfg=DS_BASE, same_weights_as="deepseek_v3",
         fp8=True, dup_router_rows=False,
         exercises="the deepseek_v3 weights as the released DeepSeek-V3 checkpoints store them: every Linear "
                   "weight of the decoder layers F8_E4M3 with a F32 `weight_scale_inv` per 128x128 block "
                   "(embeddings, lm_head, norms, router weight and e_score_correction_bias unquantized, here F32), "
                   "quantization_config as in the released config.json, plus an MTP layer model.layers.3.* "
                   "(num_nextn_predict_layers 1) that the forward pass does not use; expected outputs of the "
                   "dequantized weights"),
    dict(name="gpt_oss", family="gpt_oss", seed=311, cfg=GO_BASE, dup_router_rows=True,
         exercises="gpt-oss: layer_types sliding/full/sliding with sliding_window 4 over 10 tokens, attention "
                   "sinks (one logit per head in the softmax denominator), q/k/v/o biases, YaRN as released "
                   "(factor 32, original 4096, beta 32/1, truncate false: attention_factor 1.3466 on cos/sin), "
                   "GQA 4/2 with head_dim 16, router with bias, top-4 of 8 by logits then softmax over the 4, "
                   "experts gate_up_proj [E, H, 2I] interleaved (gate even, up odd columns) with biases, "
                   "clamped SwiGLU (limit 7, alpha 1.702, (up + 1) * gate * sigmoid(1.702 gate)); expert weights "
                   "exactly representable in MXFP4; two tied router rows in layer 0"),
    dict(name="gpt_oss-mxfp4", family="gpt_oss", seed=311, cfg=GO_BASE, same_weights_as="gpt_oss", mxfp4=True,
         dup_router_rows=False,
         exercises="the gpt_oss weights as the released gpt-oss checkpoints store them: experts' gate_up_proj / "
                   "down_proj as `*_blocks` U8 [E, rows, cols/32, 16] + `*_scales` U8 [E, rows, cols/32] (MXFP4, "
                   "E8M0 scales with bias 127), quantization_config as released; expected.safetensors identical "
                   "to gpt_oss's (the float weights are exactly the MXFP4 values)"),
]


def _classes(family: str):
    import transformers as t
    return {"deepseek_v3": (t.DeepseekV3Config, t.DeepseekV3ForCausalLM),
            "gpt_oss": (t.GptOssConfig, t.GptOssForCausalLM)}[family]


def router_module(model, family: str, layer: int):
    mlp = model.model.layers[layer].mlp
    return mlp.gate if family == "deepseek_v3" else mlp.router


def moe_layers(model, family: str) -> list[int]:
    out = []
    for i, layer in enumerate(model.model.layers):
        if family == "gpt_oss" or hasattr(layer.mlp, "gate") and hasattr(layer.mlp, "experts"):
            out.append(i)
    return out


def build(case: dict):
    Cfg, Model = _classes(case["family"])
    torch.manual_seed(case["seed"])
    cfg = Cfg(**case["cfg"], attn_implementation="eager", experts_implementation="eager")
    cfg._experts_implementation = "eager"  # transformers 5's grouped_mm fails on some CPU shapes
    model = Model(cfg)
    model.eval()
    assert model.dtype == torch.float32
    return model


def capture_router_inputs(model, family: str, ids: torch.Tensor) -> dict[int, torch.Tensor]:
    got: dict[int, torch.Tensor] = {}
    hooks = []
    for l in moe_layers(model, family):
        def hook(mod, args, out, l=l):
            got[l] = args[0].detach().reshape(-1, args[0].shape[-1]).clone()
        hooks.append(router_module(model, family, l).register_forward_hook(hook))
    with torch.no_grad():
        model(input_ids=ids)
    for h in hooks:
        h.remove()
    return got


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def prepare_deepseek(model, case: dict, ids: torch.Tensor) -> dict:
    """The deliberate edits of the random weights (documented in the README)."""
    cfg = model.config
    g = _gen(case["seed"] * 7 + 1)
    notes: dict[str, object] = {}
    with torch.no_grad():
        model.model.embed_tokens.weight[ZERO_ID].zero_()
        # RMSNorm weights away from 1 (a skipped or misplaced norm weight shows)
        n = 0
        for name, p in model.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
                n += 1
        notes["norm_weights_randomized"] = n
        # the dense MLP: distinct magnitudes per 128-block, so that FP8 block scales differ a lot
        if cfg.intermediate_size > 128:
            for l in range(cfg.first_k_dense_replace):
                mlp = model.model.layers[l].mlp
                mlp.gate_proj.weight[128:] *= 4.0
                mlp.up_proj.weight[128:] *= 0.25
                mlp.down_proj.weight[:, 128:] *= 2.0
            notes["dense_block_scaling"] = "gate_proj rows 128: x4, up_proj rows 128: x0.25, down_proj cols 128: x2"
        # e_score_correction_bias
        for l in moe_layers(model, "deepseek_v3"):
            b = router_module(model, "deepseek_v3", l).e_score_correction_bias
            b.copy_(0.15 * torch.randn(b.shape, generator=g))
    if case["dup_router_rows"]:
        l0 = moe_layers(model, "deepseek_v3")[0]
        x = capture_router_inputs(model, "deepseek_v3", ids)[l0]
        gate = router_module(model, "deepseek_v3", l0)
        E, k = cfg.n_routed_experts, cfg.num_experts_per_tok
        zero_row = ZERO_POSITIONS[0][0] * ids.shape[1] + ZERO_POSITIONS[0][1]
        chosen = None
        for a in range(E):
            for b in range(a + 1, E):
                w2 = gate.weight.detach().clone()
                w2[b] = w2[a]
                bias2 = gate.e_score_correction_bias.detach().clone()
                bias2[b] = bias2[a]
                r = ds_route(F.linear(x, w2), bias2, cfg.n_group, cfg.topk_group, k, cfg.norm_topk_prob,
                             cfg.routed_scaling_factor)
                rows = [t for t in boundary_gap(r["masked"], k)[0] if t != zero_row]
                if len(rows) >= 2:
                    chosen = (a, b, rows)
                    break
            if chosen:
                break
        assert chosen, "no router row pair gives boundary ties"
        a, b, rows = chosen
        with torch.no_grad():
            gate.weight[b].copy_(gate.weight[a])
            gate.e_score_correction_bias[b] = gate.e_score_correction_bias[a]
        notes["dup_router_rows"] = {"layer": l0, "rows": [a, b], "boundary_tie_tokens": rows}
    return notes


def prepare_gpt_oss(model, case: dict, ids: torch.Tensor) -> dict:
    cfg = model.config
    g = _gen(case["seed"] * 7 + 1)
    notes: dict[str, object] = {}
    with torch.no_grad():
        model.model.embed_tokens.weight[ZERO_ID].zero_()
        for name, p in model.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("_proj.bias") or name.endswith("proj_bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("self_attn.sinks"):
                p.copy_(torch.randn(p.shape, generator=g))
        for layer in model.model.layers:
            ex = layer.mlp.experts
            ex.gate_up_proj.mul_(2.5)  # pre-activations beyond +-7, so that the clamps act
            ex.gate_up_proj.copy_(mxfp4_snap(ex.gate_up_proj.transpose(1, 2)).transpose(1, 2))
            ex.down_proj.copy_(mxfp4_snap(ex.down_proj.transpose(1, 2)).transpose(1, 2))
    notes["edits"] = ("norm weights 1 + 0.2 N(0,1); q/k/v/o, gate_up_proj and down_proj biases 0.1 N(0,1); sinks "
                      "N(0,1); gate_up_proj x 2.5; expert weights rounded to MXFP4 (groups of 32 along the input "
                      "dimension: H for gate_up_proj, I for down_proj)")
    if case["dup_router_rows"]:
        l0 = 0
        x = capture_router_inputs(model, "gpt_oss", ids)[l0]
        router = router_module(model, "gpt_oss", l0)
        E, k = cfg.num_local_experts, cfg.num_experts_per_tok
        chosen = None
        for a in range(E):
            for b in range(a + 1, E):
                w2 = router.weight.detach().clone()
                w2[b] = w2[a]
                b2 = router.bias.detach().clone()
                b2[b] = b2[a]
                lg = F.linear(x, w2, b2)
                rows = boundary_gap(lg, k)[0]
                if len(rows) >= 2:
                    chosen = (a, b, rows)
                    break
            if chosen:
                break
        assert chosen, "no router row pair gives boundary ties"
        a, b, rows = chosen
        with torch.no_grad():
            router.weight[b].copy_(router.weight[a])
            router.bias[b] = router.bias[a]
        notes["dup_router_rows"] = {"layer": l0, "rows": [a, b], "boundary_tie_tokens": rows}
    return notes


# ---------------------------------------------------------------------------
# independent forward passes (the fact sheet's formulas, plain torch ops)
# ---------------------------------------------------------------------------

def _rms(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def _yarn_inv_freq(rp: dict, dim: int, max_pos: int) -> tuple[torch.Tensor, float]:
    base, factor = rp["rope_theta"], rp["factor"]
    orig = rp["original_max_position_embeddings"]

    def mscale(s, m=1.0):
        return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0
    if rp.get("attention_factor") is not None:
        att = rp["attention_factor"]
    elif rp.get("mscale") and rp.get("mscale_all_dim"):
        att = mscale(factor, rp["mscale"]) / mscale(factor, rp["mscale_all_dim"])
    else:
        att = mscale(factor)
    bf, bs = rp.get("beta_fast") or 32, rp.get("beta_slow") or 1

    def corr(rot):
        return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))
    lo, hi = corr(bf), corr(bs)
    if rp.get("truncate", True):
        lo, hi = math.floor(lo), math.ceil(hi)
    lo, hi = max(lo, 0), min(hi, dim - 1)
    if lo == hi:
        hi += 0.001
    i = torch.arange(dim // 2, dtype=torch.float64)
    ramp = ((i - lo) / (hi - lo)).clamp(0, 1)
    extra = 1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    inv = (extra / factor) * ramp + extra * (1 - ramp)
    return inv, att


def _rope_tables(rp: dict, dim: int, T: int, max_pos: int):
    if rp["rope_type"] == "yarn":
        inv, att = _yarn_inv_freq(rp, dim, max_pos)
    else:
        inv, att = 1.0 / rp["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim), 1.0
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]  # [T, dim/2]
    return (ang.cos() * att).float(), (ang.sin() * att).float(), inv, att


def hand_forward_deepseek(model, ids: torch.Tensor) -> dict:
    cfg = model.config
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    B, T = ids.shape
    nh, dn, dr, dv = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
    cos, sin, _, _ = _rope_tables(cfg.rope_parameters, dr, T, cfg.max_position_embeddings)
    scale = (dn + dr) ** -0.5
    rp = cfg.rope_parameters
    if rp["rope_type"] != "default" and rp.get("mscale_all_dim"):
        m = 0.1 * rp["mscale_all_dim"] * math.log(rp["factor"]) + 1.0 if rp["factor"] > 1 else 1.0
        scale = scale * m * m

    def rope(x):  # x [B, h, T, dr]
        if cfg.rope_interleave:  # pairs (2i, 2i+1) rotated by angle i, kept in place
            x1, x2 = x[..., 0::2], x[..., 1::2]
            y = torch.empty_like(x)
            y[..., 0::2] = x1 * cos - x2 * sin
            y[..., 1::2] = x2 * cos + x1 * sin
            return y
        h = dr // 2  # halves (i, i + dr/2) rotated by angle i
        x1, x2 = x[..., :h], x[..., h:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)

    x = sd["model.embed_tokens.weight"][ids]
    hs = [x]
    routes = {}
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(cfg.num_hidden_layers):
        p = f"model.layers.{l}."
        h = _rms(x, sd[p + "input_layernorm.weight"], cfg.rms_norm_eps)
        if cfg.q_lora_rank is None:
            q = h @ sd[p + "self_attn.q_proj.weight"].T
        else:
            qa = _rms(h @ sd[p + "self_attn.q_a_proj.weight"].T, sd[p + "self_attn.q_a_layernorm.weight"], 1e-6)
            q = qa @ sd[p + "self_attn.q_b_proj.weight"].T
        q = q.view(B, T, nh, dn + dr).transpose(1, 2)
        q_nope, q_pe = q[..., :dn], q[..., dn:]
        ckv = h @ sd[p + "self_attn.kv_a_proj_with_mqa.weight"].T
        c, k_pe = ckv[..., : cfg.kv_lora_rank], ckv[..., cfg.kv_lora_rank:]
        c = _rms(c, sd[p + "self_attn.kv_a_layernorm.weight"], 1e-6)
        kv = (c @ sd[p + "self_attn.kv_b_proj.weight"].T).view(B, T, nh, dn + dv).transpose(1, 2)
        k_nope, v = kv[..., :dn], kv[..., dn:]
        q_pe = rope(q_pe)
        k_pe = rope(k_pe.view(B, 1, T, dr))
        s = (q_nope @ k_nope.transpose(-1, -2) + q_pe @ k_pe.transpose(-1, -2)) * scale + mask
        a = torch.softmax(s, -1) @ v  # [B, nh, T, dv]
        x = x + a.transpose(1, 2).reshape(B, T, nh * dv) @ sd[p + "self_attn.o_proj.weight"].T
        h = _rms(x, sd[p + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
        if l < cfg.first_k_dense_replace:
            y = (F.silu(h @ sd[p + "mlp.gate_proj.weight"].T) * (h @ sd[p + "mlp.up_proj.weight"].T)) \
                @ sd[p + "mlp.down_proj.weight"].T
        else:
            flat = h.reshape(-1, cfg.hidden_size)
            logits = flat @ sd[p + "mlp.gate.weight"].T
            r = ds_route(logits, sd[p + "mlp.gate.e_score_correction_bias"], cfg.n_group, cfg.topk_group,
                         cfg.num_experts_per_tok, cfg.norm_topk_prob, cfg.routed_scaling_factor)
            check_ds_routing_rule(r, cfg.num_experts_per_tok, cfg.topk_group, f"hand layer {l}")
            routes[l] = r
            gu, dw = sd[p + "mlp.experts.gate_up_proj"], sd[p + "mlp.experts.down_proj"]
            I = cfg.moe_intermediate_size
            out = torch.zeros_like(flat)
            for t in range(flat.shape[0]):
                for j, e in enumerate(r["indices"][t].tolist()):
                    z = gu[e] @ flat[t]
                    out[t] += (F.silu(z[:I]) * z[I:]) @ dw[e].T * r["weights"][t, j]
            sh = (F.silu(flat @ sd[p + "mlp.shared_experts.gate_proj.weight"].T)
                  * (flat @ sd[p + "mlp.shared_experts.up_proj.weight"].T)) @ sd[p + "mlp.shared_experts.down_proj.weight"].T
            y = (out + sh).view(B, T, -1)
        x = x + y
        hs.append(x)
    x = _rms(x, sd["model.norm.weight"], cfg.rms_norm_eps)
    hs[-1] = x
    return {"logits": x @ sd["lm_head.weight"].T, "hidden_states": hs, "routes": routes}


def hand_forward_gpt_oss(model, ids: torch.Tensor, limit: float | None = None) -> dict:
    cfg = model.config
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    B, T = ids.shape
    nh, nkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    cos, sin, _, _ = _rope_tables(cfg.rope_parameters, hd, T, cfg.max_position_embeddings)
    lim = cfg.swiglu_limit if limit is None else limit

    def rope(x):  # halves (i, i + hd/2) rotated by angle i
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)

    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    x = sd["model.embed_tokens.weight"][ids]
    hs = [x]
    for l in range(cfg.num_hidden_layers):
        p = f"model.layers.{l}."
        h = _rms(x, sd[p + "input_layernorm.weight"], cfg.rms_norm_eps)
        q = (h @ sd[p + "self_attn.q_proj.weight"].T + sd[p + "self_attn.q_proj.bias"]).view(B, T, nh, hd).transpose(1, 2)
        k = (h @ sd[p + "self_attn.k_proj.weight"].T + sd[p + "self_attn.k_proj.bias"]).view(B, T, nkv, hd).transpose(1, 2)
        v = (h @ sd[p + "self_attn.v_proj.weight"].T + sd[p + "self_attn.v_proj.bias"]).view(B, T, nkv, hd).transpose(1, 2)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(nh // nkv, dim=1)  # q head n uses kv head n // (nh / nkv)
        v = v.repeat_interleave(nh // nkv, dim=1)
        allowed = j <= i
        if cfg.layer_types[l] == "sliding_attention":
            allowed = allowed & (j > i - cfg.sliding_window)
        s = (q @ k.transpose(-1, -2)) * hd ** -0.5
        s = s.masked_fill(~allowed, float("-inf"))
        sink = sd[p + "self_attn.sinks"].view(1, nh, 1, 1)
        m = torch.maximum(s.amax(-1, keepdim=True), sink)
        e = torch.exp(s - m)
        pr = e / (e.sum(-1, keepdim=True) + torch.exp(sink - m))
        a = (pr @ v).transpose(1, 2).reshape(B, T, nh * hd)
        x = x + a @ sd[p + "self_attn.o_proj.weight"].T + sd[p + "self_attn.o_proj.bias"]
        h = _rms(x, sd[p + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
        flat = h.reshape(-1, cfg.hidden_size)
        logits = flat @ sd[p + "mlp.router.weight"].T + sd[p + "mlp.router.bias"]
        top, idx = torch.topk(logits, cfg.num_experts_per_tok, dim=-1)
        w = torch.softmax(top, -1)
        gu, gub = sd[p + "mlp.experts.gate_up_proj"], sd[p + "mlp.experts.gate_up_proj_bias"]
        dw, dwb = sd[p + "mlp.experts.down_proj"], sd[p + "mlp.experts.down_proj_bias"]
        out = torch.zeros_like(flat)
        for t in range(flat.shape[0]):
            for jj, ex in enumerate(idx[t].tolist()):
                z = flat[t] @ gu[ex] + gub[ex]
                gate, up = z[0::2].clamp(max=lim), z[1::2].clamp(-lim, lim)
                y = ((up + 1) * (gate * torch.sigmoid(cfg.swiglu_alpha * gate))) @ dw[ex] + dwb[ex]
                out[t] += y * w[t, jj]
        x = x + out.view(B, T, -1)
        hs.append(x)
    x = _rms(x, sd["model.norm.weight"], cfg.rms_norm_eps)
    hs[-1] = x
    return {"logits": x @ sd["lm_head.weight"].T, "hidden_states": hs}


# ---------------------------------------------------------------------------
# reference outputs
# ---------------------------------------------------------------------------

def reference(model, family: str, ids: torch.Tensor, case_name: str) -> tuple[dict[str, torch.Tensor], dict]:
    import importlib
    cfg = model.config
    mls = moe_layers(model, family)
    hooked: dict[int, tuple] = {}
    hooks = [router_module(model, family, l).register_forward_hook(
        lambda m, a, o, l=l: hooked.__setitem__(l, tuple(t.detach().clone() for t in o))) for l in mls]
    with torch.no_grad():
        out = model(input_ids=ids, output_router_logits=True, output_hidden_states=True)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        plain = model(input_ids=ids)
    assert torch.equal(out.logits, plain.logits)
    n_tok = ids.numel()
    rl = out.router_logits
    assert isinstance(rl, tuple) and len(rl) == len(mls), (case_name, len(rl), mls)
    info: dict[str, object] = {"moe_layers": mls}
    ref: dict[str, torch.Tensor] = {"input_ids": ids, "logits": out.logits}
    hs = out.hidden_states
    assert len(hs) == cfg.num_hidden_layers + 1
    for n, h in enumerate(hs):
        ref[f"hidden_states.{n}"] = h
    with torch.no_grad():
        assert torch.equal(hs[-1], model.model(input_ids=ids).last_hidden_state)
        assert torch.equal(hs[0], model.model.embed_tokens(ids))
    E = cfg.num_local_experts
    k = cfg.num_experts_per_tok
    routing = {}
    for j, (l, r) in enumerate(zip(mls, rl)):
        assert r.shape == (n_tok, E) and r.dtype == torch.float32, (r.shape, r.dtype)
        assert torch.equal(r, hooked[l][0]), f"router_logits[{j}] is not decoder layer {l}'s router"
        ref[f"router_logits.{l}"] = r
        if family == "deepseek_v3":
            gate = router_module(model, family, l)
            mine = ds_route(r, gate.e_score_correction_bias, cfg.n_group, cfg.topk_group, k, cfg.norm_topk_prob,
                            cfg.routed_scaling_factor)
            assert torch.equal(mine["indices"], hooked[l][2]) and torch.equal(mine["weights"], hooked[l][1])
            check_ds_routing_rule(mine, k, cfg.topk_group, f"{case_name} layer {l}")
            unbiased = ds_route(r, torch.zeros_like(gate.e_score_correction_bias), cfg.n_group, cfg.topk_group,
                                k, cfg.norm_topk_prob, cfg.routed_scaling_factor)
            nogroup = ds_route(r, gate.e_score_correction_bias, 1, 1, k, cfg.norm_topk_prob,
                               cfg.routed_scaling_factor)
            sel = [set(x) for x in mine["indices"].tolist()]
            ties, gap = boundary_gap(mine["masked"], k)
            gties, ggap = boundary_gap(mine["group_scores"], cfg.topk_group)
            routing[l] = {
                "bias_changes_selection_rows": [t for t in range(n_tok) if sel[t] != set(unbiased["indices"][t].tolist())],
                "group_limit_changes_selection_rows": [t for t in range(n_tok)
                                                       if sel[t] != set(nogroup["indices"][t].tolist())],
                "boundary_tie_rows": ties, "group_boundary_tie_rows": gties,
                "min_nonzero_gap_kth": gap, "min_nonzero_gap_group": ggap,
                "experts_of_tied_rows": {t: mine["indices"][t].tolist() for t in ties},
            }
            assert routing[l]["bias_changes_selection_rows"], (case_name, l, "bias changes nothing")
        else:
            idx = hooked[l][2]
            check_topk_rule(r, idx, f"{case_name} layer {l} routing")
            ties, gap = boundary_gap(r, k)
            routing[l] = {"boundary_tie_rows": ties, "min_nonzero_gap_kth": gap,
                          "experts_of_tied_rows": {t: idx[t].tolist() for t in ties}}
    info["routing"] = routing
    if family == "gpt_oss":
        mod = importlib.import_module(type(model).__module__)
        raw = mod.load_balancing_loss_func(rl, E, k, None)
        assert torch.equal(raw, out.aux_loss)
        assert torch.allclose(hand_aux_loss(rl, E, k), raw, rtol=1e-6, atol=0)
        with torch.no_grad():
            with_labels = model(input_ids=ids, labels=ids, output_router_logits=True)
            ce_only = model(input_ids=ids, labels=ids)
        assert torch.allclose(with_labels.loss, ce_only.loss + cfg.router_aux_loss_coef * raw, rtol=1e-6, atol=0)
        ref["aux_loss"] = raw
        info["aux_loss"] = float(raw)
        info["router_aux_loss_coef"] = cfg.router_aux_loss_coef
    else:
        assert getattr(out, "aux_loss", None) is None, "DeepSeek-V3 returned an aux_loss"
        with torch.no_grad():
            with_labels = model(input_ids=ids, labels=ids, output_router_logits=True)
            ce_only = model(input_ids=ids, labels=ids)
        assert torch.equal(with_labels.loss, ce_only.loss)  # no auxiliary term in the loss either
        info["aux_loss"] = None
    info["logits_absmax"] = float(out.logits.abs().max())
    info["logits_std"] = float(out.logits.std())
    # the independent forward pass
    hand = hand_forward_deepseek(model, ids) if family == "deepseek_v3" else hand_forward_gpt_oss(model, ids)
    d = max(float((hand["logits"] - out.logits).abs().max()),
            max(float((a - b).abs().max()) for a, b in zip(hand["hidden_states"], hs)))
    assert d < HAND_ATOL, f"{case_name}: hand-written forward differs by {d}"
    info["hand_forward_max_abs_diff"] = d
    return ref, info


# ---------------------------------------------------------------------------
# feature checks (each exercised feature must change the outputs)
# ---------------------------------------------------------------------------

def _logit_change(model, ids, ref, mutate) -> float:
    alt = copy.deepcopy(model)
    with torch.no_grad():
        mutate(alt)
        return float((alt(input_ids=ids).logits - ref["logits"]).abs().max())


def family_checks(case: dict, model, ids: torch.Tensor, ref: dict, info: dict) -> None:
    cfg = model.config
    name = case["name"]
    eff: dict[str, float] = {}
    if case["family"] == "deepseek_v3":
        def zero_bias(m):
            for l in moe_layers(m, "deepseek_v3"):
                router_module(m, "deepseek_v3", l).e_score_correction_bias.zero_()
        eff["e_score_correction_bias zeroed"] = _logit_change(model, ids, ref, zero_bias)

        def one_group(m):
            for l in moe_layers(m, "deepseek_v3"):
                g = router_module(m, "deepseek_v3", l)
                g.num_group, g.topk_group = 1, 1
        eff["n_group/topk_group ignored"] = _logit_change(model, ids, ref, one_group)

        def sf1(m):
            for l in moe_layers(m, "deepseek_v3"):
                router_module(m, "deepseek_v3", l).routed_scaling_factor = 1.0
        eff["routed_scaling_factor 1"] = _logit_change(model, ids, ref, sf1)

        def flip_norm(m):
            for l in moe_layers(m, "deepseek_v3"):
                g = router_module(m, "deepseek_v3", l)
                g.norm_topk_prob = not g.norm_topk_prob
        eff["norm_topk_prob flipped"] = _logit_change(model, ids, ref, flip_norm)

        def flip_interleave(m):
            m.config.rope_interleave = not m.config.rope_interleave
        eff["rope_interleave flipped"] = _logit_change(model, ids, ref, flip_interleave)

        def no_shared(m):
            for l in moe_layers(m, "deepseek_v3"):
                m.model.layers[l].mlp.shared_experts.down_proj.weight.zero_()
        eff["shared experts removed"] = _logit_change(model, ids, ref, no_shared)
        if cfg.rope_parameters["rope_type"] == "yarn":
            def no_mscale(m):
                for layer in m.model.layers:
                    layer.self_attn.scaling = (cfg.qk_nope_head_dim + cfg.qk_rope_head_dim) ** -0.5
            eff["softmax mscale^2 dropped"] = _logit_change(model, ids, ref, no_mscale)

            def no_att_factor(m):
                m.model.rotary_emb.attention_scaling = 1.0
            eff["cos/sin attention_factor dropped"] = _logit_change(model, ids, ref, no_att_factor)
            re = model.model.rotary_emb
            info["rope"] = {"inv_freq": [float(x) for x in re.inv_freq], "attention_factor": re.attention_scaling,
                            "softmax_scale": model.model.layers[0].self_attn.scaling}
        # the zero token at (1, 0): hidden state exactly 0 -> router logits all 0 -> sigmoid 0.5 everywhere,
        # the selection made by the bias alone
        b, t = ZERO_POSITIONS[0]
        row = b * ids.shape[1] + t
        for l in info["moe_layers"]:
            assert torch.all(ref[f"router_logits.{l}"][row] == 0), (name, l)
        if case["dup_router_rows"]:
            dup = info["edits"]["dup_router_rows"]
            assert set(dup["boundary_tie_tokens"]) <= set(info["routing"][dup["layer"]]["boundary_tie_rows"])
    else:
        def no_sinks(m):
            for layer in m.model.layers:
                layer.self_attn.sinks.fill_(float("-inf"))
        eff["sinks removed (-inf)"] = _logit_change(model, ids, ref, no_sinks)

        def no_window(m):
            m.config.layer_types = ["full_attention"] * cfg.num_hidden_layers
            for layer in m.model.layers:
                layer.self_attn.sliding_window = None
        eff["sliding window removed"] = _logit_change(model, ids, ref, no_window)

        def no_att_factor(m):
            m.model.rotary_emb.attention_scaling = 1.0
        eff["cos/sin attention_factor dropped"] = _logit_change(model, ids, ref, no_att_factor)

        def no_clamp(m):
            for layer in m.model.layers:
                layer.mlp.experts.limit = float("inf")
        eff["swiglu clamp removed"] = _logit_change(model, ids, ref, no_clamp)

        def no_bias(m):
            for layer in m.model.layers:
                layer.mlp.experts.gate_up_proj_bias.zero_()
                layer.mlp.experts.down_proj_bias.zero_()
        eff["expert biases zeroed"] = _logit_change(model, ids, ref, no_bias)

        def swap_gate_up(m):
            for layer in m.model.layers:
                gu = layer.mlp.experts.gate_up_proj
                gu.copy_(torch.cat([gu[..., 0::2], gu[..., 1::2]], -1))
                gb = layer.mlp.experts.gate_up_proj_bias
                gb.copy_(torch.cat([gb[..., 0::2], gb[..., 1::2]], -1))
        eff["gate/up read as halves instead of interleaved"] = _logit_change(model, ids, ref, swap_gate_up)
        # fraction of clamped pre-activations
        frac = {}
        for l, layer in enumerate(model.model.layers):
            ex = layer.mlp.experts
            got = {}
            hk = layer.post_attention_layernorm.register_forward_hook(lambda m, a, o: got.__setitem__("x", o.detach()))
            with torch.no_grad():
                model(input_ids=ids)
            hk.remove()
            x = got["x"].reshape(-1, cfg.hidden_size)
            with torch.no_grad():
                _, _, idx = layer.mlp.router(x)
                z = torch.stack([x[t] @ ex.gate_up_proj[e] + ex.gate_up_proj_bias[e]
                                 for t in range(x.shape[0]) for e in idx[t].tolist()])
            gate, up = z[:, 0::2], z[:, 1::2]
            frac[l] = {"gate>7": float((gate > 7).float().mean()), "up>7": float((up > 7).float().mean()),
                       "up<-7": float((up < -7).float().mean())}
            assert frac[l]["gate>7"] > 0 and frac[l]["up>7"] + frac[l]["up<-7"] > 0, (name, frac)
        info["clamp_fraction"] = frac
        re = model.model.rotary_emb
        info["rope"] = {"inv_freq": [float(x) for x in re.inv_freq], "attention_factor": re.attention_scaling,
                        "softmax_scale": model.model.layers[0].self_attn.scaling}
        if case["dup_router_rows"]:
            dup = info["edits"]["dup_router_rows"]
            assert set(dup["boundary_tie_tokens"]) <= set(info["routing"][dup["layer"]]["boundary_tie_rows"])
    for key, v in eff.items():
        assert v > 1e-3, (name, key, v)
    info["feature_effects"] = eff
    # the decision among tied experts shows in the logits (breaking the tie one way or the other)
    if case["dup_router_rows"]:
        dup = info["edits"]["dup_router_rows"]
        rows = dup["boundary_tie_tokens"]
        T = ids.shape[1]
        diffs = []
        for f in (1 - 1e-5, 1 + 1e-5):
            alt = copy.deepcopy(model)
            with torch.no_grad():
                router_module(alt, case["family"], dup["layer"]).weight[dup["rows"][1]].mul_(f)
                lg = alt(input_ids=ids).logits
            d = (lg - ref["logits"]).abs()
            diffs.append([float(d[t // T, t % T].max()) for t in rows])
        effect = [max(x, y) for x, y in zip(*diffs)]
        assert min(effect) > 1e-3, (name, effect)
        info["tie_decision_effect_on_logits"] = dict(zip(rows, effect))
    assert info["logits_absmax"] > 0.5, (name, info["logits_absmax"])


# ---------------------------------------------------------------------------
# writing the cases
# ---------------------------------------------------------------------------

def write_config(d: Path, cfg: dict) -> None:
    (d / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def save_expected(d: Path, ref: dict, what: str) -> None:
    meta = {"format": "pt", "atol": ATOL, "rtol": RTOL, "reference": what}
    for key, v in ref.items():
        assert v.dtype in (torch.float32, torch.int64), (key, v.dtype)
    save_st(dict(ref), d / EXPECTED, meta)


def _what(model, extra: str = "") -> str:
    import transformers
    return (f"transformers {transformers.__version__} {type(model).__name__}, eager attention, eager experts, "
            f"float32, torch {torch.__version__}{extra}")


def fp8_checkpoint(model, mtp_seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """(tensors to write, the dequantized state dict, the MTP names).  Per-expert names as
    save_pretrained writes them; the MTP layer is model.layers.{L}.* as in the released files."""
    import tempfile
    cfg = model.config
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        sd = safetensors.torch.load_file(str(Path(tmp) / "model.safetensors"))

    def quantized(name: str) -> bool:
        return (name.endswith("_proj.weight") or name.endswith("kv_a_proj_with_mqa.weight")
                or name.endswith("eh_proj.weight")) and ".layers." in name
    # the MTP layer: a MoE decoder layer + enorm/hnorm/eh_proj/shared_head/embed_tokens, random
    L = cfg.num_hidden_layers
    g = _gen(mtp_seed)
    mtp: dict[str, torch.Tensor] = {}
    src = f"model.layers.{L - 1}."
    for k, v in sd.items():
        if k.startswith(src):
            nk = f"model.layers.{L}." + k[len(src):]
            if k.endswith("norm.weight"):
                mtp[nk] = 1.0 + 0.2 * torch.randn(v.shape, generator=g)
            elif k.endswith("e_score_correction_bias"):
                mtp[nk] = 0.15 * torch.randn(v.shape, generator=g)
            else:
                mtp[nk] = 0.15 * torch.randn(v.shape, generator=g)
    H, V = cfg.hidden_size, cfg.vocab_size
    mtp[f"model.layers.{L}.embed_tokens.weight"] = 0.15 * torch.randn(V, H, generator=g)
    mtp[f"model.layers.{L}.enorm.weight"] = 1.0 + 0.2 * torch.randn(H, generator=g)
    mtp[f"model.layers.{L}.hnorm.weight"] = 1.0 + 0.2 * torch.randn(H, generator=g)
    mtp[f"model.layers.{L}.eh_proj.weight"] = 0.15 * torch.randn(H, 2 * H, generator=g)
    mtp[f"model.layers.{L}.shared_head.norm.weight"] = 1.0 + 0.2 * torch.randn(H, generator=g)
    mtp[f"model.layers.{L}.shared_head.head.weight"] = 0.15 * torch.randn(V, H, generator=g)
    out: dict[str, torch.Tensor] = {}
    deq: dict[str, torch.Tensor] = {}
    for k, v in list(sd.items()) + list(mtp.items()):
        if quantized(k):
            q, s = fp8_quantize(v)
            out[k] = q
            out[k[: -len("weight")] + "weight_scale_inv"] = s
            deq[k] = fp8_dequantize(q, s)
        else:
            out[k] = v.contiguous()
            deq[k] = v
    return out, {k: v for k, v in deq.items() if k in sd}, sorted(mtp)


def mxfp4_checkpoint(model) -> dict[str, torch.Tensor]:
    import tempfile

    from gguf.quants import MXFP4
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        sd = safetensors.torch.load_file(str(Path(tmp) / "model.safetensors"))
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.endswith("mlp.experts.gate_up_proj") or k.endswith("mlp.experts.down_proj"):
            rows_major = v.transpose(1, 2).contiguous()  # [E, 2I, H] / [E, H, I]: groups along the input dim
            blocks, scales = mxfp4_encode(rows_major)
            # transformers' dequantizer gives back exactly the float parameter
            back = convert_moe_packed_tensors(blocks, scales, dtype=torch.float32)
            assert torch.equal(back, v), k
            # gguf-py's MXFP4 (17-byte blocks: E8M0 byte, then element j in the low and j+16 in the high nibble
            # of byte j) holds the same codes in another nibble order
            codes = torch.stack([blocks & 0x0F, blocks >> 4], -1).reshape(*blocks.shape[:-1], 32)
            gg = torch.cat([scales.unsqueeze(-1), codes[..., :16] | (codes[..., 16:] << 4)], -1)
            deq = MXFP4.dequantize_blocks(gg.reshape(-1, 17).numpy())
            assert torch.equal(torch.from_numpy(np.ascontiguousarray(deq)).reshape(rows_major.shape), rows_major), k
            out[k + "_blocks"] = blocks
            out[k + "_scales"] = scales
        else:
            out[k] = v.contiguous()
    return out


def check_reload(case: dict, d: Path, ids: torch.Tensor, want_logits: torch.Tensor, mtp: list[str] | None = None) -> dict:
    Cfg, Model = _classes(case["family"])
    kw = dict(attn_implementation="eager", experts_implementation="eager", dtype=torch.float32)
    re, li = Model.from_pretrained(str(d), output_loading_info=True, **kw)
    re.eval()
    unexpected = set(li.get("unexpected_keys") or ())
    problems = {k: v for k, v in li.items() if v and k in ("missing_keys", "mismatched_keys")}
    assert not problems, f"{case['name']}: reload problems {problems}"
    info: dict[str, object] = {}
    if mtp:
        assert unexpected and all(u.startswith(f"model.layers.{re.config.num_hidden_layers}.") for u in unexpected), \
            unexpected
        info["unexpected_keys"] = len(unexpected)
    else:
        assert not unexpected, unexpected
    with torch.no_grad():
        got = re(input_ids=ids).logits
    assert torch.equal(got, want_logits), f"{case['name']}: reloaded logits differ " \
                                          f"(max {float((got - want_logits).abs().max())})"
    re2 = Model.from_pretrained(str(d), attn_implementation="eager", dtype=torch.float32).eval()
    try:
        with torch.no_grad():
            d2 = float((re2(input_ids=ids).logits - want_logits).abs().max())
        info.update({"default_experts_impl": re2.config._experts_implementation, "max_abs_diff": d2})
    except Exception as e:  # noqa: BLE001
        info.update({"default_experts_impl": re2.config._experts_implementation, "error": f"{type(e).__name__}: {e}"})
    return info


def make_cases() -> dict[str, dict]:
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    results: dict[str, dict] = {}
    built: dict[str, tuple] = {}
    for case in CASES:
        name = case["name"]
        log(f"  {name}")
        d = fresh_dir(OUT / name)
        src_name = case.get("same_weights_as")
        if src_name and (case.get("fp8") or case.get("mxfp4")):
            model, ids, ref, info = built[src_name]
            info = dict(info, edits=dict(info["edits"], copied_from=src_name))
        else:
            model = build(case)
            ids = make_ids(model.config.vocab_size)
            if src_name:
                model.load_state_dict(built[src_name][0].state_dict())
                info = {"edits": dict(built[src_name][3]["edits"], copied_from=src_name)}
            else:
                prep = prepare_deepseek if case["family"] == "deepseek_v3" else prepare_gpt_oss
                info = {"edits": prep(model, case, ids)}
            ref, rinfo = reference(model, case["family"], ids, name)
            info.update(rinfo)
            family_checks(case, model, ids, ref, info)
            built[name] = (model, ids, ref, info)
        case_info = copy.deepcopy(info)
        mtp = None
        if case.get("fp8"):
            tensors, deq, mtp = fp8_checkpoint(model, case["seed"] * 7 + 5)
            dq = copy.deepcopy(model)
            dq.load_state_dict(safetensors_to_state(dq, deq))
            ref, rinfo = reference(dq, case["family"], ids, name)
            family_checks(dict(case, dup_router_rows=False), dq, ids, ref, rinfo)
            case_info = {"edits": info["edits"], **rinfo,
                         "fp8_vs_f32_logits_max_abs_diff": float((ref["logits"] - built[src_name][2]["logits"]).abs().max()),
                         "mtp_tensors": len(mtp)}
            save_st(tensors, d / "model.safetensors", {"format": "pt"})
            cfg_json = saved_config(model)
            cfg_json["quantization_config"] = FP8_QUANT_CONFIG
            write_config(d, cfg_json)
            save_expected(d, ref, _what(model, " on the dequantized FP8 weights (q.float() * weight_scale_inv per "
                                               "128x128 block)"))
        elif case.get("mxfp4"):
            tensors = mxfp4_checkpoint(model)
            save_st(tensors, d / "model.safetensors", {"format": "pt"})
            cfg_json = saved_config(model)
            cfg_json["quantization_config"] = MXFP4_QUANT_CONFIG
            write_config(d, cfg_json)
            save_expected(d, ref, _what(model))
            assert (d / EXPECTED).read_bytes() == (OUT / src_name / EXPECTED).read_bytes()
        else:
            model.save_pretrained(str(d))
            save_expected(d, ref, _what(model))
            if src_name:  # same tensors as the source case
                assert (d / "model.safetensors").read_bytes() == (OUT / src_name / "model.safetensors").read_bytes()
        cfg_json = json.loads((d / "config.json").read_text())
        case_info["reload"] = check_reload(case, d, ids, ref["logits"], mtp)
        case_info["config"] = cfg_json
        case_info["tensors"] = tensor_table(d / "model.safetensors")
        case_info["expected_table"] = tensor_table(d / EXPECTED)
        results[name] = case_info
    return results


def saved_config(model) -> dict:
    """config.json exactly as model.save_pretrained writes it."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        return json.loads((Path(tmp) / "config.json").read_text())


def safetensors_to_state(model, deq: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-expert file names -> the model's fused state dict (gate_up_proj[e] = cat(gate, up))."""
    sd = model.state_dict()
    out = {}
    for k in sd:
        if k.endswith("mlp.experts.gate_up_proj"):
            p = k[: -len("gate_up_proj")]
            out[k] = torch.stack([torch.cat([deq[f"{p}{e}.gate_proj.weight"], deq[f"{p}{e}.up_proj.weight"]], 0)
                                  for e in range(sd[k].shape[0])])
        elif k.endswith("mlp.experts.down_proj"):
            p = k[: -len("down_proj")]
            out[k] = torch.stack([deq[f"{p}{e}.down_proj.weight"] for e in range(sd[k].shape[0])])
        else:
            out[k] = deq[k]
    return out


# ---------------------------------------------------------------------------
# fixtures/routers/deepseek_v3.safetensors
# ---------------------------------------------------------------------------

ROUTER_SEED = 1515
ROUTER_T = 16
# (E, n_group, topk_group, k, norm_topk_prob, routed_scaling_factor, bias kind)
ROUTER_CONFIGS = [
    (8, 1, 1, 2, True, 1.0, "random"),
    (8, 2, 1, 2, False, 2.5, "grid"),
    (8, 4, 2, 3, True, 2.5, "periodic"),
    (8, 1, 1, 1, True, 1.0, "zero"),
    (16, 8, 4, 4, True, 2.5, "grid"),
    (16, 4, 2, 6, False, 1.0, "periodic"),
    (16, 2, 1, 8, True, 16.0, "random"),
    (64, 8, 4, 8, True, 2.5, "grid"),
    (64, 1, 1, 6, False, 1.0, "zero"),
    (64, 4, 4, 1, True, 2.5, "random"),
    (64, 8, 2, 2, True, 0.5, "periodic"),
    (16, 4, 3, 5, True, 2.5, "grid"),
]


def _router_bias(kind: str, E: int, G: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "zero":
        return np.zeros(E)
    if kind == "random":
        return 0.1 * rng.standard_normal(E)
    if kind == "grid":  # multiples of 1/32 in [-1/8, 1/8]: many equal entries
        return rng.integers(-4, 5, E) / 32.0
    # the same vector in every group: a logit row copied from group to group ties the group scores
    return np.tile(rng.integers(-4, 5, E // G) / 32.0, G)


def _router_rows(E: int, G: int, k: int, bias: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    m = E // G
    rows = [
        np.zeros(E),                                          # all equal
        np.full(E, 1.0),                                      # all equal, non-zero
        rng.integers(-2, 3, E) / 2.0,                         # a coarse grid: many ties
        rng.integers(-2, 3, E) / 2.0,
        np.where(rng.random(E) < 0.5, rng.choice([20.0, 24.0, 30.0], E), rng.standard_normal(E)),  # sigmoid == 1
    ]
    rows += [rng.standard_normal(E) * 1.5 for _ in range(5)]  # generic
    # ties exactly at the k-th place: two experts with the same bias get the same logit, larger than the rest
    for _ in range(2):
        r = rng.standard_normal(E) - 3.0
        eq = [(a, b) for a in range(E) for b in range(a + 1, E) if bias[a] == bias[b]]
        if eq:
            a, b = eq[int(rng.integers(len(eq)))]
            top = [e for e in rng.permutation(E) if e not in (a, b)][: k - 1]
            r[top] = 3.0
            r[a] = r[b] = 1.0
        rows.append(r)
    # group ties: group 0's logits copied into another group (equal group scores when the bias is periodic/zero)
    for _ in range(2):
        r = rng.standard_normal(E)
        if G > 1:
            h = int(rng.integers(1, G))
            r[h * m:(h + 1) * m] = r[:m]
        rows.append(r)
    rows.append(np.linspace(-2, 2, E))
    rows.append(np.linspace(2, -2, E))
    assert len(rows) == ROUTER_T
    return np.stack(rows).astype(np.float32)


def make_routers() -> dict:
    from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3TopkRouter
    from transformers import DeepseekV3Config
    d = fresh_dir(ROUTER_OUT)
    rng = np.random.default_rng(ROUTER_SEED)
    tensors: dict[str, torch.Tensor] = {}
    configs = []
    stats = {"expert_boundary_tie_rows": 0, "group_boundary_tie_rows": 0, "all_equal_rows": 0, "rows": 0}
    min_gap = math.inf
    for c, (E, G, TG, k, norm, sf, kind) in enumerate(ROUTER_CONFIGS):
        assert E % G == 0 and E // G >= 2 and TG <= G and k <= TG * (E // G)
        bias = torch.from_numpy(_router_bias(kind, E, G, rng).astype(np.float32))
        logits = torch.from_numpy(_router_rows(E, G, k, bias.numpy(), rng))
        cfg = DeepseekV3Config(hidden_size=E, n_routed_experts=E, n_group=G, topk_group=TG, num_experts_per_tok=k,
                               norm_topk_prob=norm, routed_scaling_factor=sf)
        mod = DeepseekV3TopkRouter(cfg)
        with torch.no_grad():
            mod.weight.copy_(torch.eye(E))  # F.linear(logits, I) == logits exactly (asserted)
            mod.e_score_correction_bias.copy_(bias)
            got_logits, weights, indices = mod(logits)
        assert torch.equal(got_logits, logits)
        mine = ds_route(logits, bias, G, TG, k, norm, sf)
        assert torch.equal(mine["indices"], indices) and torch.equal(mine["weights"], weights), c
        check_ds_routing_rule(mine, k, TG, f"router config {c}")
        assert indices.dtype == torch.int64 and weights.dtype == torch.float32
        tensors[f"logits.{c}"] = logits
        tensors[f"bias.{c}"] = bias
        tensors[f"indices.{c}"] = indices
        tensors[f"weights.{c}"] = weights
        tensors[f"groups.{c}"] = mine["groups"]
        ties, gap = boundary_gap(mine["masked"], k)
        gties, ggap = boundary_gap(mine["group_scores"], TG) if TG < G else ([], math.inf)
        alleq = [t for t in range(ROUTER_T) if torch.all(mine["biased"][t] == mine["biased"][t, 0])]
        stats["expert_boundary_tie_rows"] += len(ties)
        stats["group_boundary_tie_rows"] += len(gties)
        stats["all_equal_rows"] += len(alleq)
        stats["rows"] += ROUTER_T
        min_gap = min(min_gap, gap, ggap)
        configs.append({"C": c, "E": E, "n_group": G, "topk_group": TG, "k": k, "norm_topk_prob": norm,
                        "routed_scaling_factor": sf, "bias": kind, "T": ROUTER_T,
                        "expert_tie_rows": ties, "group_tie_rows": gties, "all_equal_rows": alleq})
    assert stats["expert_boundary_tie_rows"] >= 10 and stats["group_boundary_tie_rows"] >= 4, stats
    stats["min_nonzero_gap"] = min_gap
    import transformers
    meta = {"format": "pt",
            "reference": f"transformers {transformers.__version__} DeepseekV3TopkRouter.forward (weight = identity, "
                         f"so router_logits == logits.C), torch {torch.__version__} CPU",
            "configs": json.dumps([{k2: v for k2, v in x.items() if not k2.endswith("_rows")} for x in configs],
                                  separators=(",", ":"))}
    save_st(tensors, d / "deepseek_v3.safetensors", meta)
    back = safetensors.torch.load_file(str(d / "deepseek_v3.safetensors"))
    for key, v in tensors.items():
        assert torch.equal(back[key], v)
    return {"configs": configs, "stats": stats, "size": (d / "deepseek_v3.safetensors").stat().st_size}


# ---------------------------------------------------------------------------
# READMEs
# ---------------------------------------------------------------------------

def _fmt_gap(x: float) -> str:
    return "none" if x == math.inf else f"{x:.3g}"


def write_families_readme(results: dict[str, dict]) -> None:
    text = README.read_text() if README.exists() else ""
    if MARKER in text:
        text = text[: text.index(MARKER)]
    text = text.rstrip("\n") + "\n\n"
    parts = [MARKER, f"""
# DeepSeek-V3 and gpt-oss

Generated by `scripts/make_family_fixtures_2.py` ({_versions()}) after
`make_family_fixtures.py` (which deletes these directories and this section:
run the second script again after the first).  Deterministic.  Same
conventions as above (input_ids with token {ZERO_ID}'s embedding row zeroed, at
[1, 0] and [0, 4]; logits; hidden_states.0..L; router_logits.L by decoder layer,
MoE layers only; atol = rtol = {ATOL}; eager attention and experts, float32;
reload through `from_pretrained` bit-identical, asserted), with these
differences:

* **DeepSeek-V3 returns no aux_loss** (`DeepseekV3ForCausalLM.forward` never
  computes one; `outputs.aux_loss` is None, and `loss` with labels is the
  cross entropy alone, asserted): its expected.safetensors has no `aux_loss`.
  gpt-oss returns one (`load_balancing_loss_func` over all layers, softmax of
  the logits then topk, coefficient not applied), stored as `aux_loss`.
* `router_logits.L` is the router's raw linear output in F32 [20, E]:
  DeepSeek-V3: `x @ W.T` before the sigmoid and without
  `e_score_correction_bias`; only layers >= first_k_dense_replace.  gpt-oss:
  `x @ W.T + b` (router bias included), every layer.
* Every RMSNorm weight is `1 + 0.2 N(0,1)` (not all ones), so a norm weight
  applied in the wrong place shows.
* Each model is also recomputed by a hand-written forward pass of the script
  (`hand_forward_deepseek`, `hand_forward_gpt_oss`: the formulas of the fact
  sheet in plain torch ops, one token and one expert at a time); it agrees
  with transformers to < {HAND_ATOL:g} everywhere (max difference per case below).
* Every routing decision in the fixtures is reproduced by the libstdc++ port of
  `torch.topk` (make_family_fixtures.py), here also with `sorted=False`
  (`topk_like_torch`): DeepSeek-V3's router calls `torch.topk(..., sorted=False)`
  for the groups and for the experts, which on CPU is `std::nth_element(k-1)`
  WITHOUT the sort that follows for `sorted=True` (unless k * 64 <= n, where
  `std::partial_sort` sorts anyway).  The order of the k indices does not
  change transformers' outputs (experts are visited in index order), but the
  set does where scores tie.
* The quantized cases (`deepseek_v3-fp8`, `gpt_oss-mxfp4`) are written by the
  script (transformers cannot quantize to these formats on CPU), in the
  layout of the released checkpoints; their expected outputs are those of the
  dequantized weights, and transformers' own loader (which dequantizes on a
  machine without GPU, needs `accelerate`) reloads them to bit-identical
  logits.

## DeepSeek-V3 FP8 (`deepseek_v3-fp8/`)

For every 2-D Linear weight of the decoder layers (self_attn q_a_proj,
q_b_proj / q_proj, kv_a_proj_with_mqa, kv_b_proj, o_proj; the dense
mlp.gate_proj/up_proj/down_proj; mlp.experts.e.*; mlp.shared_experts.*; in the
MTP layer also eh_proj) of shape [R, C]: tiles of 128 x 128 (row tile i =
rows 128i..128i+127, column tile j likewise; the last tiles may be partial),
`weight_scale_inv[i, j]` = F32 amax(|tile|) / 448, `weight` = F8_E4M3
(`torch.float8_e4m3fn`, round to nearest even) of tile / scale.  Dequantized
(what the expected outputs use, and what transformers' `Fp8Dequantize`
computes): `w = float32(weight) * weight_scale_inv[r // 128, c // 128]`, the
product in F32.  The dense layer has intermediate_size 256 with its second
128-row (down_proj: 128-column) block scaled differently, so gate_proj/up_proj
carry `weight_scale_inv` [2, 1] and down_proj [1, 2] with unequal entries;
every other matrix is smaller than 128 x 128 and has a [1, 1] scale.  Not
quantized (F32 here; BF16 in the released files): embed_tokens, lm_head,
every norm, mlp.gate.weight, mlp.gate.e_score_correction_bias.
`quantization_config` = `{json.dumps(FP8_QUANT_CONFIG)}`.
The MTP layer `model.layers.3.*` (num_hidden_layers = 3, num_nextn_predict_layers
= 1): a MoE decoder layer plus embed_tokens, enorm, hnorm, eh_proj [H, 2H],
shared_head.norm, shared_head.head, random, unused by the forward pass;
transformers lists its tensors as unexpected keys (its ignore pattern is
`model\\.layers\\.61.*`, the released depth).

## gpt-oss MXFP4 (`gpt_oss-mxfp4/`)

`mlp.experts.gate_up_proj` (parameter [E, H, 2I]) is stored transposed, as
`gate_up_proj_blocks` U8 [E, 2I, H/32, 16] and `gate_up_proj_scales` U8
[E, 2I, H/32]; `down_proj` (parameter [E, I, H]) as `down_proj_blocks` U8
[E, H, I/32, 16] and `down_proj_scales` U8 [E, H, I/32].  Row r of the
transposed matrix, group g covers columns 32g..32g+31; byte j of the block
holds element 2j in its LOW nibble and element 2j+1 in its HIGH nibble; a
nibble is an E2M1 code indexing `{FP4_VALUES}`; the value is
`FP4[code] * 2^(scale - 127)`.  transformers (`convert_moe_packed_tensors`)
dequantizes to [E, rows, cols] and transposes back to the parameter layout.
The biases (`gate_up_proj_bias` [E, 2I], `down_proj_bias` [E, H]), router,
attention, sinks, norms, embeddings and lm_head are unquantized (F32 here;
BF16 in the released files).  The gpt_oss case's float weights were rounded
to MXFP4 first (gguf-py's quantizer: shared exponent floor(log2(amax)) - 2,
nearest E2M1 value), so both cases have the same expected.safetensors
(byte-identical, asserted); the script checks the blocks against transformers'
dequantizer and against gguf-py's own MXFP4 blocks (17 bytes: the E8M0 byte,
then element j in the low and element j + 16 in the high nibble of byte j).
`quantization_config` = `{json.dumps(MXFP4_QUANT_CONFIG)}`.

## Cases

| case | family (class) | layers (MoE) | experts / top-k | exercises |
| --- | --- | --- | --- | --- |
"""]
    for c in CASES:
        r = results[c["name"]]
        cfg = r["config"]
        E = cfg.get("n_routed_experts", cfg.get("num_local_experts"))
        parts.append(f"| `{c['name']}` | {c['family']} ({cfg['architectures'][0]}) | {cfg['num_hidden_layers']} "
                     f"({','.join(map(str, r['moe_layers']))}) | {E} / {cfg['num_experts_per_tok']} | "
                     f"{c['exercises']} |\n")
    for c in CASES:
        name = c["name"]
        r = results[name]
        cfg = r["config"]
        edits = r["edits"]
        lines = []
        lines.append(f"* `torch.manual_seed({c['seed']})` before building; MoE layers {r['moe_layers']}; "
                     + (f"aux_loss {r['aux_loss']:.6g} (router_aux_loss_coef {r['router_aux_loss_coef']} not "
                        f"applied)" if r.get("aux_loss") is not None else "no aux_loss")
                     + f"; logits |max| {r['logits_absmax']:.3g}, std {r['logits_std']:.3g}; hand-written forward "
                       f"within {r['hand_forward_max_abs_diff']:.2g}.")
        ed = dict(edits)
        if "copied_from" in ed:
            how = ("FP8-quantized as described above" if c.get("fp8") else
                   "stored as MXFP4 blocks/scales as described above" if c.get("mxfp4") else "same edits")
            lines.append(f"* Weights: `{ed['copied_from']}`'s ({how}).")
        elif c["family"] == "deepseek_v3":
            e = [f"embedding row {ZERO_ID} zeroed", f"{ed['norm_weights_randomized']} norm weights 1 + 0.2 N(0,1)",
                 "e_score_correction_bias 0.15 N(0,1) in every MoE layer"]
            if "dense_block_scaling" in ed:
                e.append(ed["dense_block_scaling"])
            if "dup_router_rows" in ed:
                dd = ed["dup_router_rows"]
                e.append(f"router rows {dd['rows'][0]} and {dd['rows'][1]} of layer {dd['layer']} identical, with "
                         f"equal bias entries (tokens {dd['boundary_tie_tokens']} tie at the k-th place)")
            lines.append("* Weight edits: " + "; ".join(e) + ".")
        else:
            e = [f"embedding row {ZERO_ID} zeroed (its row is not zero downstream: biases)", ed["edits"]]
            if "dup_router_rows" in ed:
                dd = ed["dup_router_rows"]
                e.append(f"router rows {dd['rows'][0]} and {dd['rows'][1]} of layer {dd['layer']} identical, with "
                         f"equal bias entries (tokens {dd['boundary_tie_tokens']} tie at the k-th place)")
            lines.append("* Weight edits: " + "; ".join(e) + ".")
        if "tie_decision_effect_on_logits" in r:
            lines.append("* Running the other tied expert changes the logits of those tokens by "
                         + ", ".join(f"{v:.3g} (row {t})" for t, v in r["tie_decision_effect_on_logits"].items()) + ".")
        rt = []
        for l, v in r["routing"].items():
            s = f"layer {l}: boundary-tie rows {v['boundary_tie_rows']}"
            if v["boundary_tie_rows"]:
                s += f" (experts chosen {v['experts_of_tied_rows']})"
            s += f", smallest non-zero gap at the k-th place {_fmt_gap(v['min_nonzero_gap_kth'])}"
            if "bias_changes_selection_rows" in v:
                s += (f"; the bias changes the chosen set on {len(v['bias_changes_selection_rows'])} of 20 rows, the "
                      f"group limit on {len(v['group_limit_changes_selection_rows'])}; group-boundary ties "
                      f"{v['group_boundary_tie_rows']}, smallest non-zero group gap {_fmt_gap(v['min_nonzero_gap_group'])}")
            rt.append(s)
        lines.append("* Routing: " + "; ".join(rt) + ".")
        if "feature_effects" in r:
            lines.append("* Max logit change when a feature is switched off: " + ", ".join(
                f"{k} {v:.3g}" for k, v in r["feature_effects"].items()) + ".")
        if "clamp_fraction" in r:
            lines.append("* Fraction of routed gate/up pre-activations beyond the clamp: " + json.dumps(
                {l: {k: round(v, 3) for k, v in f.items()} for l, f in r["clamp_fraction"].items()}) + ".")
        if "rope" in r:
            rp = r["rope"]
            lines.append(f"* RoPE: inv_freq {[float(f'{x:.6g}') for x in rp['inv_freq']]}, attention_factor (on cos "
                         f"and sin) {rp['attention_factor']:.6g}, softmax scale {rp['softmax_scale']:.6g}.")
        if "fp8_vs_f32_logits_max_abs_diff" in r:
            lines.append(f"* The FP8 rounding moves the logits by up to {r['fp8_vs_f32_logits_max_abs_diff']:.3g} "
                         f"from deepseek_v3's; {r['mtp_tensors']} MTP tensors (before quantization) in the file.")
        rl = r["reload"]
        if "error" in rl:
            rl_text = f"with the default experts implementation ({rl['default_experts_impl']}): {rl['error']}"
        else:
            rl_text = (f"with the default experts implementation ({rl['default_experts_impl']}) the logits "
                       f"differ by {rl['max_abs_diff']:.3g}")
        if "unexpected_keys" in rl:
            rl_text += f"; {rl['unexpected_keys']} unexpected keys, all model.layers.3.* (the MTP layer)"
        lines.append(f"* Reload: bit-identical; {rl_text}.")
        cfg_short = {k: v for k, v in cfg.items() if k not in ("architectures", "transformers_version")}
        parts.append(f"""
## `{name}/`

{c['exercises']}.

""" + "\n".join(lines) + f"""

`config.json`:

```json
{json.dumps(cfg_short, indent=None, sort_keys=True)}
```

`model.safetensors` (layer numbers L and expert numbers e folded):

```
{_compact_table(r['tensors'])}
```

`expected.safetensors`:

```
{_table(r['expected_table'])}
```
""")
    README.write_text(text + "".join(parts))


def write_routers_readme(info: dict) -> None:
    rows = "\n".join(
        f"| {c['C']} | {c['E']} | {c['n_group']} | {c['topk_group']} | {c['k']} | {str(c['norm_topk_prob']).lower()} | "
        f"{c['routed_scaling_factor']} | {c['bias']} | {c['expert_tie_rows']} | {c['group_tie_rows']} | "
        f"{c['all_equal_rows']} |" for c in info["configs"])
    st = info["stats"]
    text = f"""# DeepSeek-V3's router alone

`deepseek_v3.safetensors`, generated by `scripts/make_family_fixtures_2.py`
({_versions()}; numpy generator seed {ROUTER_SEED}).  For each configuration
C (metadata `configs`, JSON):

* `logits.C` F32 [{ROUTER_T}, E]: the router's linear output (before the sigmoid).
* `bias.C` F32 [E]: `e_score_correction_bias`.
* `indices.C` I64 [{ROUTER_T}, k] and `weights.C` F32 [{ROUTER_T}, k]: what
  `DeepseekV3TopkRouter.forward` (transformers `modeling_deepseek_v3.py:133-158`)
  returns, called on a module with `weight` = identity (E x E) and the bias
  set, so that its `router_logits` are exactly `logits.C` (asserted).
  **The order of the k entries is torch's `topk(..., sorted=False)` order**:
  on CPU `std::nth_element` leaves the k largest in the first k places in no
  particular order (except when k * 64 <= E, here E = 64 with k = 1, where
  `std::partial_sort` sorts them).  `weights.C[t, j]` belongs to
  `indices.C[t, j]`; compare (index, weight) pairs as sets unless you follow
  the same algorithm (the script's port `topk_like_torch` reproduces every row).
* `groups.C` I64 [{ROUTER_T}, topk_group]: the groups kept (torch's
  `topk(group_scores, topk_group, sorted=False)` indices), from the same code
  written out (`ds_route`, asserted equal to the module on indices and weights).

The computation (f32 throughout): `s = sigmoid(logits)`; `b = s + bias`;
`group_score[g] = sum of the 2 largest b in group g` (groups = E / n_group
consecutive experts); keep the `topk_group` groups with the largest scores,
set `b` of the other groups' experts to -inf; `indices = topk(b, k)`;
`weights = s[indices]` (the UNBIASED sigmoid); if norm_topk_prob:
`weights /= (sum(weights) + 1e-20)`; `weights *= routed_scaling_factor`.

| C | E | n_group | topk_group | k | norm | scale | bias | rows tied at the k-th place | rows tied at the group boundary | rows all equal |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

Rows of every C: 0 all zero; 1 all 1.0; 2-3 a coarse grid (multiples of 0.5 in
[-1, 1]); 4 half the entries 20, 24 or 30 (sigmoid == 1.0 exactly in f32:
ties), the rest N(0,1); 5-9 1.5 N(0,1); 10-11 two experts with equal bias given
equal logits just below k - 1 clear winners (a tie exactly at the k-th place
when the bias has equal entries); 12-13 group 0's logits copied into another
group (equal group scores when the bias is zero or the same in every group);
14 ascending; 15 descending.  Bias kinds: zero; random = 0.1 N(0,1); grid =
multiples of 1/32 in [-1/8, 1/8] (repeated values); periodic = one grid
vector repeated in every group.  Over all configurations: {st['rows']} rows,
{st['expert_boundary_tie_rows']} with a tie at the k-th place (not all equal),
{st['group_boundary_tie_rows']} with a tie at the topk_group-th group,
{st['all_equal_rows']} with all biased scores equal; the smallest non-zero gap
at either boundary elsewhere is {_fmt_gap(st['min_nonzero_gap'])}.

Among ties: torch's choice is neither the lowest nor the highest index in
general (libstdc++'s introselect; see fixtures/topk/README.md).  The group
choice among tied group scores decides which experts can be chosen at all.
"""
    (ROUTER_OUT / "README.md").write_text(text)


# ---------------------------------------------------------------------------

def main() -> int:
    os.chdir(ROOT)
    torch.set_num_threads(1)
    try:
        import accelerate  # noqa: F401
    except ImportError:
        print("make_family_fixtures_2.py needs `accelerate` (and psutil) for transformers to load the FP8 and "
              "MXFP4 checkpoints (pip install accelerate==1.15.0 psutil==7.2.2)", file=sys.stderr)
        return 2
    if not (OUT / "qwen3_moe").exists():
        print("run scripts/make_family_fixtures.py first", file=sys.stderr)
        return 2
    log(f"writing DeepSeek-V3 / gpt-oss cases under {OUT}")
    results = make_cases()
    log("writing fixtures/routers")
    routers = make_routers()
    write_families_readme(results)
    write_routers_readme(routers)
    mine = [OUT / c["name"] for c in CASES] + [ROUTER_OUT]
    for base in mine:
        os.chmod(base, 0o755)
        for p in base.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
    summary = {n: {k: v for k, v in r.items() if k not in ("config", "tensors", "expected_table")}
               for n, r in results.items()}
    print(json.dumps(summary, indent=1, default=str))
    print(json.dumps(routers["stats"], default=str))
    total = sum(p.stat().st_size for base in mine for p in base.rglob("*") if p.is_file())
    log(f"total size of this script's fixtures: {total} bytes (routers {routers['size']})")
    assert total < MAX_TOTAL_BYTES, "fixtures too large"
    return 0


if __name__ == "__main__":
    sys.exit(main())
