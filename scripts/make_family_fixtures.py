#!/usr/bin/env python3
"""Generate fixtures/models/families/ (tiny random MoE language models of the
families transformers ships besides Mixtral, with the outputs transformers
computes for them) and fixtures/topk/ (torch.topk on rows with ties).

Deterministic (a torch.manual_seed per case, the input_ids from
check_layout_logits.make_input_ids, a seeded numpy generator for the top-k
rows, header metadata re-serialised with sorted keys) and re-runnable: both
directories are deleted and rewritten.  Run from anywhere:

    /work/venv/bin/python scripts/make_family_fixtures.py

Needs the pinned packages of scripts/requirements-fixtures.txt (torch,
safetensors, transformers, numpy); not mlx.  CI never runs this script; the
generated files are committed.

NOTE: scripts/make_model_fixtures.py deletes and rewrites all of
fixtures/models/, including families/: run this script again after it.
This script in turn deletes the DeepSeek-V3 / gpt-oss cases and the README
section of scripts/make_family_fixtures_2.py: run that one after this one.

Every case directory holds
  config.json           as save_pretrained writes it
  model.safetensors     save_pretrained's default (per-expert names), except
                        qwen3_moe-fused (save_original_format=False)
  expected.safetensors  input_ids, logits, hidden_states.N, router_logits.L
                        (L = decoder-layer index of each MoE layer), aux_loss;
                        metadata atol/rtol 1e-4 and `reference`
Each case's checkpoint is reloaded with from_pretrained and must give
bit-identical logits (asserted).  The README files are written from what the
script observed.
"""

from __future__ import annotations

import copy
import json
import os
import platform
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
TOPK_OUT = ROOT / "fixtures" / "topk"

sys.path.insert(0, str(SCRIPTS))
from check_layout_logits import INPUT_IDS_SEED, make_input_ids  # noqa: E402
from fixture_util import fresh_dir, log  # noqa: E402
from make_model_fixtures import save_st, tensor_table  # noqa: E402

MAX_TOTAL_BYTES = 3 * 1024 * 1024
MAX_TOPK_BYTES = 200 * 1024
EXPECTED = "expected.safetensors"
ATOL = RTOL = "1e-4"
IDS_SHAPE = (2, 10)
# The token whose embedding row is set to zeros.  At position 0 of sequence 1
# (no earlier token to attend to, no attention bias) its hidden state stays
# exactly zero, so every MoE layer's router logits for it are all equal (0).
# It also stands at position 4 of sequence 0, where attention mixes in the
# earlier tokens (an ordinary row there).
ZERO_ID = 5
ZERO_POSITIONS = ((1, 0), (0, 4))

OBS: dict[str, object] = {}


# ---------------------------------------------------------------------------
# torch.topk on CPU, re-implemented: libstdc++'s algorithms as
# aten/src/ATen/native/TopKImpl.h (torch 2.13) calls them.  Used to cross-check
# every row of fixtures/topk/ (and every router row of the model fixtures).
# ---------------------------------------------------------------------------

def _comp_largest(x, y) -> bool:
    # TopKImpl.h, largest=True: (isnan(x) && !isnan(y)) || x > y  (values only)
    xv, yv = x[0], y[0]
    return (xv != xv and yv == yv) or xv > yv


def _lg(n: int) -> int:
    return n.bit_length() - 1


def _push_heap(a, first, hole, top, value, comp):
    parent = (hole - 1) // 2
    while hole > top and comp(a[first + parent], value):
        a[first + hole] = a[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    a[first + hole] = value


def _adjust_heap(a, first, hole, length, value, comp):
    top = hole
    second = hole
    while second < (length - 1) // 2:
        second = 2 * (second + 1)
        if comp(a[first + second], a[first + second - 1]):
            second -= 1
        a[first + hole] = a[first + second]
        hole = second
    if (length & 1) == 0 and second == (length - 2) // 2:
        second = 2 * (second + 1)
        a[first + hole] = a[first + second - 1]
        hole = second - 1
    _push_heap(a, first, hole, top, value, comp)


def _make_heap(a, first, last, comp):
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(a, first, parent, length, a[first + parent], comp)
        if parent == 0:
            return
        parent -= 1


def _pop_heap(a, first, last, result, comp):
    value = a[result]
    a[result] = a[first]
    _adjust_heap(a, first, 0, last - first, value, comp)


def _sort_heap(a, first, last, comp):
    while last - first > 1:
        last -= 1
        _pop_heap(a, first, last, last, comp)


def _heap_select(a, first, middle, last, comp):
    _make_heap(a, first, middle, comp)
    for i in range(middle, last):
        if comp(a[i], a[first]):
            _pop_heap(a, first, middle, i, comp)


def _move_median_to_first(a, result, x, y, z, comp):
    if comp(a[x], a[y]):
        if comp(a[y], a[z]):
            a[result], a[y] = a[y], a[result]
        elif comp(a[x], a[z]):
            a[result], a[z] = a[z], a[result]
        else:
            a[result], a[x] = a[x], a[result]
    elif comp(a[x], a[z]):
        a[result], a[x] = a[x], a[result]
    elif comp(a[y], a[z]):
        a[result], a[z] = a[z], a[result]
    else:
        a[result], a[y] = a[y], a[result]


def _unguarded_partition(a, first, last, pivot, comp):
    while True:
        while comp(a[first], a[pivot]):
            first += 1
        last -= 1
        while comp(a[pivot], a[last]):
            last -= 1
        if not first < last:
            return first
        a[first], a[last] = a[last], a[first]
        first += 1


def _unguarded_partition_pivot(a, first, last, comp):
    mid = first + (last - first) // 2
    _move_median_to_first(a, first, first + 1, mid, last - 1, comp)
    return _unguarded_partition(a, first + 1, last, first, comp)


def _unguarded_linear_insert(a, last, comp):
    val = a[last]
    nxt = last - 1
    while comp(val, a[nxt]):
        a[last] = a[nxt]
        last = nxt
        nxt -= 1
    a[last] = val


def _insertion_sort(a, first, last, comp):
    if first == last:
        return
    for i in range(first + 1, last):
        if comp(a[i], a[first]):
            val = a[i]
            a[first + 1:i + 1] = a[first:i]
            a[first] = val
        else:
            _unguarded_linear_insert(a, i, comp)


_S_THRESHOLD = 16


def _introsort_loop(a, first, last, depth, comp):
    while last - first > _S_THRESHOLD:
        if depth == 0:
            _heap_select(a, first, last, last, comp)  # std::__partial_sort(first, last, last)
            _sort_heap(a, first, last, comp)
            return
        depth -= 1
        cut = _unguarded_partition_pivot(a, first, last, comp)
        _introsort_loop(a, cut, last, depth, comp)
        last = cut


def _std_sort(a, first, last, comp):
    if first == last:
        return
    _introsort_loop(a, first, last, _lg(last - first) * 2, comp)
    if last - first > _S_THRESHOLD:  # __final_insertion_sort
        _insertion_sort(a, first, first + _S_THRESHOLD, comp)
        for i in range(first + _S_THRESHOLD, last):
            _unguarded_linear_insert(a, i, comp)
    else:
        _insertion_sort(a, first, last, comp)


def _nth_element(a, first, nth, last, comp):
    if first == last or nth == last:
        return
    depth = _lg(last - first) * 2
    while last - first > 3:  # __introselect
        if depth == 0:
            _heap_select(a, first, nth + 1, last, comp)
            a[first], a[nth] = a[nth], a[first]
            return
        depth -= 1
        cut = _unguarded_partition_pivot(a, first, last, comp)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(a, first, last, comp)


def topk_indices_like_torch(values, k: int) -> list[int]:
    """torch.topk(values, k, largest=True, sorted=True).indices on CPU
    (torch 2.13): k * 64 <= n: std::partial_sort of (value, index) pairs;
    otherwise std::nth_element(k - 1) then std::sort of the first k - 1."""
    n = len(values)
    q = [(float(v), j) for j, v in enumerate(values)]
    if k * 64 <= n:
        _heap_select(q, 0, k, n, _comp_largest)
        _sort_heap(q, 0, k, _comp_largest)
    else:
        _nth_element(q, 0, k - 1, n, _comp_largest)
        _std_sort(q, 0, k - 1, _comp_largest)
    return [j for _, j in q[:k]]


def check_topk_rule(values: torch.Tensor, indices: torch.Tensor, what: str) -> None:
    k = indices.shape[-1]
    for r in range(values.shape[0]):
        mine = topk_indices_like_torch(values[r].tolist(), k)
        assert mine == indices[r].tolist(), f"{what} row {r}: torch {indices[r].tolist()} != libstdc++ port {mine}"


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------

def _classes(family: str):
    import transformers as t
    return {
        "qwen2_moe": (t.Qwen2MoeConfig, t.Qwen2MoeForCausalLM),
        "qwen3_moe": (t.Qwen3MoeConfig, t.Qwen3MoeForCausalLM),
        "olmoe": (t.OlmoeConfig, t.OlmoeForCausalLM),
        "granitemoe": (t.GraniteMoeConfig, t.GraniteMoeForCausalLM),
        "granitemoeshared": (t.GraniteMoeSharedConfig, t.GraniteMoeSharedForCausalLM),
        "mixtral": (t.MixtralConfig, t.MixtralForCausalLM),
    }[family]


# family -> (MoE block attribute, router attribute inside it, router tie rule)
ROUTING = {
    "qwen2_moe": ("mlp", "gate", "softmax over all experts, then topk of the probabilities"),
    "qwen3_moe": ("mlp", "gate", "softmax over all experts, then topk of the probabilities"),
    "olmoe": ("mlp", "gate", "softmax over all experts, then topk of the probabilities"),
    "mixtral": ("mlp", "gate", "softmax over all experts, then topk of the probabilities"),
    "granitemoe": ("block_sparse_moe", "router", "topk of the logits, then softmax over the k"),
    "granitemoeshared": ("block_sparse_moe", "router", "topk of the logits, then softmax over the k"),
}

COMMON = dict(max_position_embeddings=128)

QWEN2 = dict(vocab_size=96, hidden_size=32, intermediate_size=48, moe_intermediate_size=12,
             shared_expert_intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, num_experts=8, num_experts_per_tok=4, norm_topk_prob=False,
             initializer_range=0.15, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
QWEN3 = dict(vocab_size=96, hidden_size=32, intermediate_size=48, moe_intermediate_size=12,
             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=12,
             num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, initializer_range=0.15,
             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})

CASES: list[dict] = [
    dict(name="qwen2_moe", family="qwen2_moe", seed=201, dup_router_rows=True,
         cfg=dict(QWEN2),
         exercises="Qwen2-MoE: q/k/v biases (o_proj none), GQA 4/2 heads, 8 experts top-4 with "
                   "norm_topk_prob false (weights are the raw softmax probabilities), the shared expert "
                   "gated by sigmoid(shared_expert_gate(x)), rope_theta 1e6"),
    dict(name="qwen2_moe-dense", family="qwen2_moe", seed=202, dup_router_rows=False,
         cfg=dict(QWEN2, num_hidden_layers=3, mlp_only_layers=[1], num_experts=6, num_experts_per_tok=2,
                  norm_topk_prob=True, intermediate_size=40),
         exercises="Qwen2-MoE with a dense layer in the middle: mlp_only_layers [1] (layer 1 is a plain "
                   "SwiGLU MLP of intermediate_size 40; layers 0 and 2 MoE), norm_topk_prob true; "
                   "router_logits.0 and router_logits.2 only"),
    dict(name="qwen2_moe-sparse-step", family="qwen2_moe", seed=203, dup_router_rows=False,
         cfg=dict(QWEN2, num_hidden_layers=4, decoder_sparse_step=2, num_experts=4, num_experts_per_tok=2,
                  norm_topk_prob=True, intermediate_size=40),
         exercises="Qwen2-MoE with decoder_sparse_step 2: layer i is MoE iff (i + 1) % 2 == 0, so layers "
                   "1 and 3 are MoE and 0 and 2 dense; norm_topk_prob true; router_logits.1 and "
                   "router_logits.3 only"),
    dict(name="qwen3_moe", family="qwen3_moe", seed=204, dup_router_rows=False,
         cfg=dict(QWEN3),
         exercises="Qwen3-MoE: head_dim 12 with hidden 32 and 4 heads (q_proj [48, 32], k_proj [24, 32]), per-head "
                   "RMSNorm q_norm/k_norm [head_dim] before RoPE, no biases, 8 experts top-2, "
                   "norm_topk_prob true, rope_theta 1e6"),
    dict(name="qwen3_moe-fused", family="qwen3_moe", seed=204, dup_router_rows=False, same_as="qwen3_moe",
         save_kw=dict(save_original_format=False), cfg=dict(QWEN3),
         exercises="the qwen3_moe model saved with save_pretrained(save_original_format=False): "
                   "transformers 5's fused names mlp.experts.gate_up_proj [E, 2*I, H] and "
                   "mlp.experts.down_proj [E, H, I]; expected.safetensors identical to qwen3_moe's"),
    dict(name="qwen3_moe-bf16", family="qwen3_moe", seed=204, dup_router_rows=False, same_as="qwen3_moe",
         bf16=True, cfg=dict(QWEN3),
         exercises="the qwen3_moe weights cast to bfloat16 (config dtype bfloat16); expected outputs of "
                   "the float32 model on the bf16-rounded weights"),
    dict(name="olmoe", family="olmoe", seed=205, dup_router_rows=True,
         cfg=dict(vocab_size=96, hidden_size=32, intermediate_size=16, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, num_experts=8, num_experts_per_tok=2,
                  clip_qkv=1.5, initializer_range=0.2, eos_token_id=2,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
         exercises="OLMoE: full-width RMSNorm q_norm [hidden] and k_norm [(hidden/heads)*kv_heads] on the "
                   "projections before the head split and RoPE, clip_qkv 1.5 (clamps q, k and v after "
                   "the norms; asserted to clip each), GQA 4/2, 8 experts top-2, norm_topk_prob false, "
                   "pad_token_id 1 (its embedding row is zero from init)"),
    dict(name="granitemoe", family="granitemoe", seed=206, dup_router_rows=True,
         cfg=dict(vocab_size=96, hidden_size=32, intermediate_size=12, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, num_local_experts=6, num_experts_per_tok=2,
                  embedding_multiplier=4.0, attention_multiplier=0.25, residual_multiplier=0.5,
                  logits_scaling=3.0, tie_word_embeddings=True, initializer_range=0.15,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
         exercises="GraniteMoE: embeddings * embedding_multiplier 4, attention scale = "
                   "attention_multiplier 0.25 (not 1/sqrt(head_dim) = 0.354), residual branches * "
                   "residual_multiplier 0.5, logits / logits_scaling 3, router = topk of the logits then "
                   "softmax over the k, stacked experts input_linear [E, 2*I, H] / output_linear "
                   "[E, H, I], tied lm_head (no lm_head.weight in the file)"),
    dict(name="granitemoeshared", family="granitemoeshared", seed=207, dup_router_rows=False,
         cfg=dict(vocab_size=96, hidden_size=32, intermediate_size=12, shared_intermediate_size=24,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, num_local_experts=6,
                  num_experts_per_tok=2, embedding_multiplier=2.0, attention_multiplier=0.3,
                  residual_multiplier=0.7, logits_scaling=2.0, tie_word_embeddings=False,
                  initializer_range=0.15, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
         exercises="GraniteMoE-shared: GraniteMoE plus an always-on shared MLP (shared_mlp.input_linear "
                   "[2*24, H] = gate rows then up rows, output_linear [H, 24]) added to the MoE output "
                   "before the residual multiplier; other multipliers 2 / 0.3 / 0.7 / 2; untied lm_head"),
    dict(name="mixtral-gelu", family="mixtral", seed=208, dup_router_rows=True,
         cfg=dict(vocab_size=99, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, num_local_experts=8, num_experts_per_tok=2,
                  hidden_act="gelu", initializer_range=0.15),
         exercises="Mixtral with hidden_act \"gelu\" (transformers' GELUActivation: exact erf GELU, as in "
                   "transformers' own Mixtral tester config), intermediate_size 37 (odd), vocab 99"),
]


def build(case: dict):
    Cfg, Model = _classes(case["family"])
    torch.manual_seed(case["seed"])
    cfg = Cfg(**COMMON, **case["cfg"], attn_implementation="eager", experts_implementation="eager")
    cfg._experts_implementation = "eager"  # transformers 5's grouped_mm fails on some CPU shapes
    model = Model(cfg)
    model.eval()
    assert model.dtype == torch.float32
    assert model.config._attn_implementation == "eager" and model.config._experts_implementation == "eager"
    return model


def moe_layers(model, family: str) -> list[int]:
    block, router, _ = ROUTING[family]
    out = []
    for i, layer in enumerate(model.model.layers):
        mod = getattr(layer, block)
        if hasattr(mod, router):
            out.append(i)
    return out


def router_module(model, family: str, layer: int):
    block, router, _ = ROUTING[family]
    return getattr(getattr(model.model.layers[layer], block), router)


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


def router_scores(family: str, logits: torch.Tensor) -> torch.Tensor:
    """What the family's router hands to torch.topk."""
    if family in ("granitemoe", "granitemoeshared"):
        return logits.float()
    return torch.softmax(logits.float(), dim=-1)


def boundary_ties(scores: torch.Tensor, k: int) -> list[int]:
    """Rows whose k-th and (k+1)-th largest scores are equal (the choice among
    them decides which experts run), excluding rows where all are equal."""
    s = torch.sort(scores, dim=-1, descending=True).values
    rows = []
    for r in range(s.shape[0]):
        if s.shape[1] > k and s[r, k - 1] == s[r, k] and not torch.all(s[r] == s[r, 0]):
            rows.append(r)
    return rows


def prepare_weights(model, case: dict, ids: torch.Tensor) -> dict:
    """The deliberate edits of the random weights (documented in the README)."""
    family = case["family"]
    notes: dict[str, object] = {}
    with torch.no_grad():
        model.model.embed_tokens.weight[ZERO_ID].zero_()
        mls = moe_layers(model, family)
        if family == "qwen2_moe":
            # q/k/v biases: the attention output at position 0 would be o_proj(v_bias), not 0.
            for l in range(mls[0] + 1):
                model.model.layers[l].self_attn.v_proj.bias.zero_()
            notes["v_bias_zeroed_layers"] = list(range(mls[0] + 1))
    if case["dup_router_rows"]:
        l0 = mls[0]
        k = model.config.num_experts_per_tok
        x = capture_router_inputs(model, family, ids)[l0]
        w = router_module(model, family, l0).weight
        E = w.shape[0]
        chosen = None
        for a in range(E):
            for b in range(a + 1, E):
                w2 = w.detach().clone()
                w2[b] = w2[a]
                lg = F.linear(x, w2)
                if not torch.equal(lg[:, a], lg[:, b]):
                    continue
                rows = boundary_ties(router_scores(family, lg), k)
                if len(rows) >= 2:
                    chosen = (a, b, rows)
                    break
            if chosen:
                break
        assert chosen, f"{case['name']}: no router row pair gives boundary ties"
        a, b, rows = chosen
        with torch.no_grad():
            w[b].copy_(w[a])
        notes["dup_router_rows"] = {"layer": l0, "rows": [a, b], "boundary_tie_tokens": rows}
    return notes


def make_ids(vocab: int) -> torch.Tensor:
    ids = make_input_ids(vocab, IDS_SHAPE)
    for b, t in ZERO_POSITIONS:
        ids[b, t] = ZERO_ID
    return ids


def hand_aux_loss(router_logits, num_experts: int, top_k: int) -> torch.Tensor:
    """load_balancing_loss_func (no attention mask) written out: over all MoE
    layers' rows together, E * sum_e (top-k slots routed to e / rows) * (mean
    softmax prob of e); the slots come from torch.topk of the softmax."""
    counts = torch.zeros(num_experts, dtype=torch.float64)
    psum = torch.zeros(num_experts, dtype=torch.float64)
    n = 0
    for r in router_logits:
        p = torch.softmax(r.float(), -1)
        sel = torch.topk(p, top_k, dim=-1).indices
        counts += torch.bincount(sel.reshape(-1), minlength=num_experts).double()
        psum += p.double().sum(0)
        n += r.shape[0]
    return (num_experts * ((counts / n) * (psum / n)).sum()).float()


def reference(model, family: str, ids: torch.Tensor, case_name: str) -> tuple[dict[str, torch.Tensor], dict]:
    import importlib
    cfg = model.config
    E = cfg.num_experts if family in ("qwen2_moe", "qwen3_moe", "olmoe") else cfg.num_local_experts
    k = cfg.num_experts_per_tok
    mls = moe_layers(model, family)
    # router outputs by decoder layer, via hooks (to map the tuple to layers)
    hooked: dict[int, tuple] = {}
    hooks = [router_module(model, family, l).register_forward_hook(
        lambda m, a, o, l=l: hooked.__setitem__(l, tuple(t.detach().clone() for t in o))) for l in mls]
    with torch.no_grad():
        out = model(input_ids=ids, output_router_logits=True, output_hidden_states=True)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        plain = model(input_ids=ids)
        with_labels = model(input_ids=ids, labels=ids, output_router_logits=True)
        ce_only = model(input_ids=ids, labels=ids)
    assert torch.equal(out.logits, plain.logits)
    assert out.loss is None and plain.router_logits is None and plain.aux_loss is None
    n_tok = ids.numel()
    rl = out.router_logits
    assert isinstance(rl, tuple) and len(rl) == len(mls), (case_name, len(rl), mls)
    info: dict[str, object] = {"moe_layers": mls, "router_logits_tuple_len": len(rl)}
    ref: dict[str, torch.Tensor] = {"input_ids": ids, "logits": out.logits}
    hs = out.hidden_states
    assert len(hs) == cfg.num_hidden_layers + 1
    for n, h in enumerate(hs):  # 0: embeddings (x embedding_multiplier), 1..L-1: layer outputs, L: final norm
        ref[f"hidden_states.{n}"] = h
    with torch.no_grad():
        assert torch.equal(hs[-1], model.model(input_ids=ids).last_hidden_state)
    emb = model.model.embed_tokens(ids) * getattr(cfg, "embedding_multiplier", 1.0)
    assert torch.equal(hs[0], emb), "hidden_states.0 is not the (scaled) embedding"
    sel_info = {}
    for j, (l, r) in enumerate(zip(mls, rl)):
        assert r.shape == (n_tok, E) and r.dtype == torch.float32, (r.shape, r.dtype)
        assert torch.equal(r, hooked[l][0].float()), f"router_logits[{j}] is not decoder layer {l}'s router"
        ref[f"router_logits.{l}"] = r
        # the experts the layer ran: torch.topk as the family's router calls it; check the libstdc++ port
        idx = hooked[l][2]
        check_topk_rule(router_scores(family, r), idx, f"{case_name} layer {l} routing")
        zero_rows = [int(i) for i in range(n_tok) if torch.all(r[i] == r[i, 0])]
        sel_info[l] = {"all_equal_rows": zero_rows,
                       "boundary_tie_rows": boundary_ties(router_scores(family, r), k),
                       "experts_of_tied_rows": {i: idx[i].tolist() for i in
                                                zero_rows + boundary_ties(router_scores(family, r), k)}}
    info["routing"] = sel_info
    mod = importlib.import_module(type(model).__module__)
    raw = mod.load_balancing_loss_func(rl, E, k, None)
    assert torch.equal(raw, out.aux_loss), "outputs.aux_loss is not load_balancing_loss_func(router_logits, E, k)"
    assert torch.allclose(hand_aux_loss(rl, E, k), raw, rtol=1e-6, atol=0), "hand-computed aux loss differs"
    coef = cfg.router_aux_loss_coef
    assert torch.allclose(with_labels.loss, ce_only.loss + coef * raw, rtol=1e-6, atol=0)
    ref["aux_loss"] = raw
    info["aux_loss"] = float(raw)
    info["router_aux_loss_coef"] = coef
    info["logits_absmax"] = float(out.logits.abs().max())
    info["logits_std"] = float(out.logits.std())
    return ref, info


def save_case(case: dict, model, ref: dict, info: dict, src_model=None) -> Path:
    import transformers
    d = fresh_dir(OUT / case["name"])
    (src_model or model).save_pretrained(str(d), **case.get("save_kw", {}))
    cls = type(model).__name__
    what = (f"transformers {transformers.__version__} {cls}, eager attention, eager experts, float32, "
            f"torch {torch.__version__}")
    if case.get("bf16"):
        what += " (weights rounded to bfloat16, computed in float32)"
    meta = {"format": "pt", "atol": ATOL, "rtol": RTOL, "reference": what}
    tensors = dict(ref)
    for key, v in tensors.items():
        assert v.dtype in (torch.float32, torch.int64), (key, v.dtype)
    save_st(tensors, d / EXPECTED, meta)
    return d


def check_reload(case: dict, d: Path, ids: torch.Tensor, want_logits: torch.Tensor) -> dict:
    Cfg, Model = _classes(case["family"])
    re, li = Model.from_pretrained(str(d), attn_implementation="eager", experts_implementation="eager",
                                   dtype=torch.float32, output_loading_info=True)
    re.eval()
    problems = {k: v for k, v in li.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    assert not problems, f"{case['name']}: reload problems {problems}"
    assert re.dtype == torch.float32
    with torch.no_grad():
        got = re(input_ids=ids).logits
    assert torch.equal(got, want_logits), f"{case['name']}: reloaded logits differ " \
                                          f"(max {float((got - want_logits).abs().max())})"
    # and with transformers' default experts implementation (grouped_mm), for the record
    re2 = Model.from_pretrained(str(d), attn_implementation="eager", dtype=torch.float32).eval()
    try:
        with torch.no_grad():
            d2 = float((re2(input_ids=ids).logits - want_logits).abs().max())
        return {"default_experts_impl": re2.config._experts_implementation, "max_abs_diff": d2}
    except Exception as e:  # noqa: BLE001
        return {"default_experts_impl": re2.config._experts_implementation, "error": f"{type(e).__name__}: {e}"}


def file_table(path: Path) -> list[tuple[str, str, list[int]]]:
    return tensor_table(path)


def make_families() -> dict[str, dict]:
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    results: dict[str, dict] = {}
    built: dict[str, tuple] = {}
    for case in CASES:
        name = case["name"]
        log(f"  {name}")
        if case.get("same_as"):
            base_model, ids, ref, info = built[case["same_as"]]
            model = base_model
        else:
            model = build(case)
            ids = make_ids(model.config.vocab_size)
            info = {"edits": prepare_weights(model, case, ids)}
            ref, rinfo = reference(model, case["family"], ids, name)
            info.update(rinfo)
            built[name] = (model, ids, ref, info)
            _family_checks(case, model, ids, ref, info)
        src = None
        case_info = dict(info)
        if case.get("bf16"):
            bf = copy.deepcopy(model).to(torch.bfloat16)
            upcast = copy.deepcopy(model).eval()
            with torch.no_grad():
                for prm in upcast.parameters():
                    prm.copy_(prm.to(torch.bfloat16).to(torch.float32))
            # non-persistent buffers (rotary inv_freq) stay float32, as from_pretrained(dtype=float32) builds them
            assert torch.equal(upcast.model.rotary_emb.inv_freq, model.model.rotary_emb.inv_freq)
            ref, rinfo = reference(upcast, case["family"], ids, name)
            case_info = {"edits": info["edits"], **rinfo,
                         "bf16_vs_f32_logits_max_abs_diff": float((ref["logits"] - built[case["same_as"]][2]["logits"]).abs().max())}
            src = bf
        d = save_case(case, model, ref, case_info, src_model=src)
        cfg_json = json.loads((d / "config.json").read_text())
        names = file_table(d / "model.safetensors")
        on_disk = safetensors.torch.load_file(str(d / "model.safetensors"))
        if case.get("bf16"):
            assert cfg_json["dtype"] == "bfloat16"
            assert all(v.dtype == torch.bfloat16 for v in on_disk.values())
            f32 = safetensors.torch.load_file(str(OUT / case["same_as"] / "model.safetensors"))
            assert set(f32) == set(on_disk)
            for key in f32:
                assert torch.equal(on_disk[key], f32[key].to(torch.bfloat16)), key
        if case.get("save_kw", {}).get("save_original_format") is False:
            per_expert = safetensors.torch.load_file(str(OUT / case["same_as"] / "model.safetensors"))
            _check_fused(on_disk, per_expert, model.config)
            assert (d / EXPECTED).read_bytes() == (OUT / case["same_as"] / EXPECTED).read_bytes()
        if model.config.tie_word_embeddings:
            assert "lm_head.weight" not in on_disk
        case_info["reload"] = check_reload(case, d, ids, ref["logits"])
        case_info["config"] = cfg_json
        case_info["tensors"] = names
        case_info["expected_keys"] = [n for n, _, _ in file_table(d / EXPECTED)]
        case_info["expected_table"] = file_table(d / EXPECTED)
        results[name] = case_info
    return results


def _check_fused(fused: dict, per_expert: dict, cfg) -> None:
    """fused gate_up_proj[e] = cat(gate_proj_e, up_proj_e) rows; down_proj[e] = down_proj_e."""
    E = cfg.num_experts
    n_fused = 0
    for key, v in fused.items():
        if key.endswith(".mlp.experts.gate_up_proj"):
            p = key[: -len("gate_up_proj")]
            want = torch.stack([torch.cat([per_expert[f"{p}{e}.gate_proj.weight"],
                                           per_expert[f"{p}{e}.up_proj.weight"]], 0) for e in range(E)])
            assert torch.equal(v, want), key
            n_fused += 1
        elif key.endswith(".mlp.experts.down_proj"):
            p = key[: -len("down_proj")]
            assert torch.equal(v, torch.stack([per_expert[f"{p}{e}.down_proj.weight"] for e in range(E)])), key
        else:
            assert torch.equal(v, per_expert[key]), key
    assert n_fused == cfg.num_hidden_layers
    assert not any(".experts.0." in k for k in fused)


def _family_checks(case: dict, model, ids: torch.Tensor, ref: dict, info: dict) -> None:
    """Checks that the features a case is meant to exercise do something."""
    family = case["family"]
    cfg = model.config
    name = case["name"]
    if family == "olmoe":
        # clip_qkv must clip some of q, k and v in every layer
        frac = {}
        for l, layer in enumerate(model.model.layers):
            attn = layer.self_attn
            x_in = {}
            hk = layer.input_layernorm.register_forward_hook(lambda m, a, o: x_in.__setitem__("x", o.detach()))
            with torch.no_grad():
                model(input_ids=ids)
                hk.remove()
                x = x_in["x"]
                q = attn.q_norm(attn.q_proj(x))
                kk = attn.k_norm(attn.k_proj(x))
                v = attn.v_proj(x)
            c = cfg.clip_qkv
            frac[l] = {n: float((t.abs() > c).float().mean()) for n, t in (("q", q), ("k", kk), ("v", v))}
            assert all(f > 0 for f in frac[l].values()), (name, frac)
        info["clip_fraction"] = frac
        noclip = copy.deepcopy(model)
        noclip.config.clip_qkv = None
        with torch.no_grad():
            info["clip_qkv_effect_on_logits"] = float((noclip(input_ids=ids).logits - ref["logits"]).abs().max())
        assert info["clip_qkv_effect_on_logits"] > 1e-3
    if family in ("granitemoe", "granitemoeshared"):
        effects = {}
        for attr in ("embedding_multiplier", "attention_multiplier", "residual_multiplier", "logits_scaling"):
            alt = copy.deepcopy(model)
            setattr(alt.config, attr, 1.0)
            # modules copy some of them at construction
            if attr == "embedding_multiplier":
                alt.model.embedding_multiplier = 1.0
            if attr == "attention_multiplier":
                for layer in alt.model.layers:
                    layer.self_attn.scaling = 1.0
            if attr == "residual_multiplier":
                for layer in alt.model.layers:
                    layer.residual_multiplier = 1.0
            if attr == "logits_scaling":
                alt.logits_scaling = 1.0
            with torch.no_grad():
                effects[attr] = float((alt(input_ids=ids).logits - ref["logits"]).abs().max())
            assert effects[attr] > 1e-3, (name, attr, effects[attr])
        info["multiplier_effects"] = effects
    if family == "qwen2_moe":
        layer = model.model.layers[moe_layers(model, family)[0]]
        g = {}
        hk = layer.mlp.shared_expert_gate.register_forward_hook(lambda m, a, o: g.__setitem__("g", o.detach()))
        with torch.no_grad():
            model(input_ids=ids)
        hk.remove()
        s = torch.sigmoid(g["g"])
        info["shared_gate_sigmoid_range"] = [float(s.min()), float(s.max())]
    for l in range(cfg.num_hidden_layers):
        if l not in info["moe_layers"]:
            assert f"router_logits.{l}" not in ref
    # the zero token at position (1, 0): all-equal router logits in every MoE layer
    # (Qwen2-MoE: only up to the first MoE layer, where v_proj.bias is zeroed)
    b, t = ZERO_POSITIONS[0]
    row = b * ids.shape[1] + t
    zero_layers = info["moe_layers"][:1] if family == "qwen2_moe" else info["moe_layers"]
    for l in zero_layers:
        r = ref[f"router_logits.{l}"][row]
        assert torch.all(r == 0), (name, l, r)
    info["all_zero_router_row_layers"] = zero_layers
    if case["dup_router_rows"]:
        dup = info["edits"]["dup_router_rows"]
        r = ref[f"router_logits.{dup['layer']}"]
        a, bb = dup["rows"]
        assert torch.equal(r[:, a], r[:, bb])
        assert info["routing"][dup["layer"]]["boundary_tie_rows"] == dup["boundary_tie_tokens"]
        # the decision among the tied experts shows in the logits: scaling row b by 1 -/+ 1e-5
        # breaks each tie one way or the other; one of the two differs from torch's choice
        rows = dup["boundary_tie_tokens"]
        T = ids.shape[1]
        diffs = []
        for f in (1 - 1e-5, 1 + 1e-5):
            alt = copy.deepcopy(model)
            with torch.no_grad():
                router_module(alt, family, dup["layer"]).weight[bb].mul_(f)
                lg = alt(input_ids=ids).logits
            d = (lg - ref["logits"]).abs()
            diffs.append([float(d[t // T, t % T].max()) for t in rows])
        effect = [max(x, y) for x, y in zip(*diffs)]
        assert min(effect) > 1e-2, (name, effect)
        info["tie_decision_effect_on_logits"] = dict(zip(rows, effect))
    assert info["logits_absmax"] > 0.5, (name, info["logits_absmax"])


# ---------------------------------------------------------------------------
# fixtures/topk/ties.safetensors
# ---------------------------------------------------------------------------

TOPK_NS = (4, 8, 60, 64, 128, 256)
TOPK_KS = (1, 2, 4, 6, 8)
TOPK_SEED = 4242


def topk_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    rows = [
        np.zeros(n),                                    # all equal (0)
        np.full(n, 0.125),                              # all equal (non-zero)
        np.full(n, 1.0 / n),                            # softmax of equal logits
        rng.integers(0, 2, n).astype(np.float64),       # two distinct values
        rng.integers(0, 3, n).astype(np.float64),       # three distinct values
        rng.integers(0, 8, n).astype(np.float64) / 8,   # a few distinct values
        np.repeat(rng.standard_normal((n + 1) // 2), 2)[:n],  # every value twice (adjacent)
        np.tile(rng.standard_normal(max(1, n // 4)), 4)[:n] if n >= 4 else rng.standard_normal(n),  # four times
        np.concatenate([np.ones(n // 2), rng.standard_normal(n - n // 2) - 5.0]),  # the top half tied
        np.concatenate([rng.standard_normal(n - 3) - 5.0, np.ones(3)]),  # three tied maxima at the end
        rng.standard_normal(n),                         # no ties (random)
        rng.standard_normal(n),
        np.sort(rng.standard_normal(n)),                # ascending, no ties
        np.sort(rng.standard_normal(n))[::-1].copy(),   # descending, no ties
    ]
    # a row with a tie exactly at every boundary k / k+1 of the ks used
    r = rng.standard_normal(n) - 10.0
    for kk in TOPK_KS:
        if kk < n:
            r[(kk * 7) % n] = 3.0 - kk * 0.25
            r[(kk * 7 + 3) % n] = 3.0 - kk * 0.25
    rows.append(r)
    return np.stack(rows).astype(np.float32)


def make_topk() -> dict:
    d = fresh_dir(TOPK_OUT)
    rng = np.random.default_rng(TOPK_SEED)
    tensors: dict[str, torch.Tensor] = {}
    summary: dict[str, list] = {}
    for n in TOPK_NS:
        vals = torch.from_numpy(topk_rows(n, rng))
        for k in TOPK_KS:
            if k > n:
                continue
            idx = torch.topk(vals, k, dim=-1, largest=True, sorted=True).indices
            assert idx.dtype == torch.int64
            # the values selected are the k largest (ties aside) and sorted
            tv = torch.gather(vals, 1, idx)
            assert torch.equal(tv, torch.sort(vals, dim=-1, descending=True).values[:, :k])
            check_topk_rule(vals, idx, f"topk n{n} k{k}")
            tensors[f"values.n{n}.k{k}"] = vals.clone()
            tensors[f"indices.n{n}.k{k}"] = idx
            summary[f"n{n}.k{k}"] = idx[0].tolist()
    meta = {"format": "pt", "reference": f"torch.topk(values, k, dim=-1, largest=True, sorted=True).indices, "
                                         f"torch {torch.__version__} CPU",
            "rows": "0 all 0; 1 all 0.125; 2 all 1/n; 3 two values; 4 three values; 5 eight values; "
                    "6 pairs; 7 quadruples; 8 top half tied at 1; 9 three tied maxima at the end; "
                    "10-11 random; 12 ascending; 13 descending; 14 ties at the k/k+1 boundaries"}
    save_st(tensors, d / "ties.safetensors", meta)
    size = (d / "ties.safetensors").stat().st_size
    assert size < MAX_TOPK_BYTES, size
    # the library reads it back
    back = safetensors.torch.load_file(str(d / "ties.safetensors"))
    for key, v in tensors.items():
        assert torch.equal(back[key], v)
    return {"size": size, "all_equal_row_indices": summary, "rows": int(next(iter(tensors.values())).shape[0])}


# ---------------------------------------------------------------------------
# READMEs
# ---------------------------------------------------------------------------

def _versions() -> str:
    import transformers
    return (f"torch {torch.__version__}, transformers {transformers.__version__}, safetensors "
            f"{safetensors.__version__}, numpy {np.__version__}, Python {platform.python_version()}")


def _table(rows) -> str:
    return "\n".join(f"{n:<60} {dt:<5} {shape}" for n, dt, shape in rows)


def _ranges(xs) -> str:
    xs = sorted(xs)
    out, start, prev = [], xs[0], xs[0]
    for x in xs[1:] + [None]:
        if x is not None and x == prev + 1:
            prev = x
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if x is not None:
            start = prev = x
    return ",".join(out)


def _compact_table(rows) -> str:
    """The tensor list with layer numbers and expert numbers folded:
    `model.layers.{L}.mlp.experts.{e}.up_proj.weight  F32 [16, 32]  L 0-1, e 0-7`."""
    import re
    groups: dict[tuple, tuple[set, set]] = {}
    order = []
    for n, dt, shape in rows:
        ls = re.findall(r"layers\.(\d+)\.", n)
        es = re.findall(r"experts\.(\d+)\.", n)
        key = (re.sub(r"experts\.\d+\.", "experts.{e}.", re.sub(r"layers\.\d+\.", "layers.{L}.", n)), dt,
               str(shape))
        if key not in groups:
            groups[key] = (set(), set())
            order.append(key)
        if ls:
            groups[key][0].add(int(ls[0]))
        if es:
            groups[key][1].add(int(es[0]))
    lines = []
    for key in sorted(order):
        ls, es = groups[key]
        where = ", ".join(x for x in ((f"L {_ranges(ls)}" if ls else ""), (f"e {_ranges(es)}" if es else "")) if x)
        lines.append(f"{key[0]:<56} {key[1]:<5} {key[2]:<13} {where}".rstrip())
    return "\n".join(lines)


def _experts(cfg: dict) -> int:
    return cfg.get("num_experts", cfg.get("num_local_experts"))


def write_families_readme(results: dict[str, dict]) -> None:
    parts = [f"""# Tiny MoE language models of several families

Generated by `scripts/make_family_fixtures.py` ({_versions()}).
Deterministic: two runs give byte-identical files.  CI never runs the script.
`scripts/make_model_fixtures.py` rewrites all of `fixtures/models/`: run
`make_family_fixtures.py` again after it.

Every case directory holds `config.json` and `model.safetensors` exactly as
`save_pretrained` wrote them (per-expert names; `qwen3_moe-fused/` uses
`save_original_format=False`), and `expected.safetensors`:

* `input_ids` I64 [2, 10]: `make_input_ids(vocab, (2, 10))` (seed {INPUT_IDS_SEED}, from
  `scripts/check_layout_logits.py`), then token {ZERO_ID} written at [1, 0] and [0, 4].
  Token {ZERO_ID}'s embedding row is set to zeros, so at [1, 0] (flat row 10) the
  hidden state is exactly zero up to the final norm in every family without
  attention biases: the router logits of that row are all 0 in every MoE layer,
  and torch.topk's choice among equal values picks the experts (the outputs do
  not depend on it there, since every expert maps 0 to 0, but `aux_loss`
  counts the chosen experts).  Qwen2-MoE has q/k/v biases: its `v_proj.bias` is
  zeroed in the layers up to and including the first MoE layer, so the row is
  zero there too (later layers have their random biases).
* `logits` F32 [2, 10, vocab].
* `hidden_states.N` F32 [2, 10, hidden], N = 0..num_hidden_layers, as
  `output_hidden_states=True` returns them: 0 = the embeddings (GraniteMoE:
  already multiplied by `embedding_multiplier`), N = output of decoder layer
  N-1 for N < L, and N = L the output of the final norm (transformers replaces
  the last layer's output by `last_hidden_state`; the raw output of the last
  layer is not among them).
* `router_logits.L` F32 [20, experts] for each MoE decoder layer L (flattened
  batch*seq rows, before softmax).  transformers returns a tuple with one entry
  per MoE layer only (dense layers have none), in layer order; the generator
  maps entry j to the j-th MoE layer and checks, with a hook on each router, that
  it is that layer's router output.
* `aux_loss` F32 scalar: `outputs.aux_loss` with `output_router_logits=True`,
  i.e. `load_balancing_loss_func(router_logits, E, k)` over the MoE layers'
  logits only, WITHOUT `router_aux_loss_coef` (the coefficient is applied only
  inside `outputs.loss` when labels are given: loss = CE + coef * aux_loss,
  asserted).  The experts counted are `torch.topk(softmax(logits), k)`, for
  GraniteMoE too (whose routing takes the top-k of the logits).

Metadata: `atol` = `rtol` = `{ATOL}`, `reference` = the transformers class and
versions.  All models were built with `attn_implementation="eager"` and
`config._experts_implementation = "eager"` (transformers 5's default
`grouped_mm` fails on some CPU shapes), float32, `model.eval()`,
`torch.no_grad()`.  Each checkpoint is reloaded with `from_pretrained(dir,
dtype=torch.float32, attn_implementation="eager", experts_implementation="eager")`
and gives bit-identical logits (asserted).  `initializer_range` 0.15-0.2 so
that the logits are O(1) and the routing is not uniform.

## Ties in the routing

Besides the all-zero row, in `qwen2_moe`, `olmoe`, `granitemoe` and
`mixtral-gelu` the first MoE layer's router has two identical rows (row b
copied from row a after the random init; the first pair in (a, b) order that
gives at least two tokens a tie exactly at the k-th place).  Those tokens'
k-th and (k+1)-th router scores are equal, and which of the two experts runs
changes the outputs: the logits test the tie rule.  The rule
(`fixtures/topk/README.md`): torch.topk on CPU runs libstdc++'s
`std::nth_element` + `std::sort` (k * 64 > n, always the case for these
routers), so among equal scores the chosen index is neither the lowest nor the
highest in general.

## Cases

| case | family (class) | layers (MoE) | experts / top-k | exercises |
| --- | --- | --- | --- | --- |
""" + "\n".join(
        f"| `{c['name']}` | {c['family']} ({results[c['name']]['config']['architectures'][0]}) | "
        f"{results[c['name']]['config']['num_hidden_layers']} ({','.join(map(str, results[c['name']]['moe_layers']))}) | "
        f"{_experts(results[c['name']]['config'])} / {results[c['name']]['config']['num_experts_per_tok']} | "
        f"{c['exercises']} |" for c in CASES) + "\n"]
    for case in CASES:
        name = case["name"]
        r = results[name]
        cfg = r["config"]
        edits = r["edits"]
        routing = r["routing"]
        rt = "; ".join(
            f"layer {l}: all-equal rows {v['all_equal_rows']}, boundary-tie rows {v['boundary_tie_rows']}, "
            f"experts chosen there {v['experts_of_tied_rows']}" for l, v in routing.items())
        extra = []
        if "dup_router_rows" in edits:
            dd = edits["dup_router_rows"]
            extra.append(f"router rows {dd['rows'][0]} and {dd['rows'][1]} of layer {dd['layer']} identical")
        if "tie_decision_effect_on_logits" in r:
            eff = r["tie_decision_effect_on_logits"]
            extra.append("running the other tied expert instead changes the logits of those tokens by "
                         + ", ".join(f"{v:.3g} (row {t})" for t, v in eff.items()))
        if "v_bias_zeroed_layers" in edits:
            extra.append(f"`v_proj.bias` zeroed in layers {edits['v_bias_zeroed_layers']}")
        if "clip_fraction" in r:
            extra.append("fraction of |q|,|k|,|v| > clip_qkv per layer: " + json.dumps(
                {l: {k: round(v, 3) for k, v in f.items()} for l, f in r["clip_fraction"].items()})
                + f"; logits without clipping differ by up to {r['clip_qkv_effect_on_logits']:.3g}")
        if "multiplier_effects" in r:
            extra.append("max logit change when one multiplier is set to 1: " + json.dumps(
                {k: round(v, 4) for k, v in r["multiplier_effects"].items()}))
        if "shared_gate_sigmoid_range" in r:
            lo, hi = r["shared_gate_sigmoid_range"]
            extra.append(f"sigmoid(shared_expert_gate) ranges {lo:.3f}..{hi:.3f}")
        if "bf16_vs_f32_logits_max_abs_diff" in r:
            extra.append(f"logits differ from qwen3_moe's by up to {r['bf16_vs_f32_logits_max_abs_diff']:.3g}")
        rl = r["reload"]
        if "error" in rl:
            rl_text = f"with the default experts implementation ({rl['default_experts_impl']}): {rl['error']}"
        else:
            rl_text = (f"with the default experts implementation ({rl['default_experts_impl']}) the logits "
                       f"differ by {rl['max_abs_diff']:.3g}")
        cfg_short = {k: v for k, v in cfg.items() if k not in ("architectures", "transformers_version")}
        parts.append(f"""## `{name}/`

{case['exercises']}.

* `torch.manual_seed({case['seed']})` before building; MoE layers {r['moe_layers']}; aux_loss
  {r['aux_loss']:.6g} (router_aux_loss_coef {r['router_aux_loss_coef']} not applied); logits |max|
  {r['logits_absmax']:.3g}, std {r['logits_std']:.3g}.
* Weight edits: embedding row {ZERO_ID} zeroed{'; ' + '; '.join(extra) if extra else ''}.
* Routing ties: {rt}.
* Reload: bit-identical; {rl_text}.

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
    (OUT / "README.md").write_text("\n".join(parts))


def write_topk_readme(info: dict) -> None:
    lines = "\n".join(f"| {key} | {v} |" for key, v in info["all_equal_row_indices"].items())
    text = f"""# torch.topk among ties

`ties.safetensors`, generated by `scripts/make_family_fixtures.py`
({_versions()}; numpy generator seed {TOPK_SEED}).  For n in {list(TOPK_NS)}
and k in {list(TOPK_KS)} (k <= n): `values.n{{n}}.k{{k}}` F32 [{info['rows']}, n] and
`indices.n{{n}}.k{{k}}` I64 [{info['rows']}, k] = `torch.topk(values, k, dim=-1,
largest=True, sorted=True).indices` on CPU.  The rows of one n are the same for
every k.  Rows (metadata `rows`): 0 all 0; 1 all 0.125; 2 all 1/n (a softmax of
equal logits); 3 two distinct values; 4 three; 5 eight; 6 every value twice;
7 every value four times; 8 the top half tied; 9 three tied maxima at the end;
10-11 random (no ties); 12 ascending; 13 descending; 14 ties exactly at the
k/k+1 boundary for each k.

## The rule

torch 2.13's CPU kernel (`aten/src/ATen/native/TopKImpl.h`, `topk_impl_loop`)
fills a vector of (value, index) pairs in index order and, with a comparator
on the values only (`largest`: NaN first, then `x.first > y.first`):

```cpp
auto use_partial_sort = k * 64 <= n;
if (use_partial_sort) {{
  std::partial_sort(queue.begin(), queue.begin() + k, queue.end(), comp);
}} else {{
  std::nth_element(queue.begin(), queue.begin() + k - 1, queue.end(), comp);
  if (sorted) {{
    std::sort(queue.begin(), queue.begin() + k - 1, comp);
  }}
}}
// indices[j] = queue[j].second for j < k
```

Neither algorithm is stable, so among equal values the result is whatever
libstdc++'s introselect (median-of-3 pivot, unguarded partition, insertion
sort below 4 elements; depth limit 2*floor(log2 n), then heap select), introsort
(threshold 16, final insertion sort) and heap select / sort_heap
(`std::__adjust_heap`, `std::__push_heap`) leave there.  The generator carries
a Python port of exactly those routines (`topk_indices_like_torch`) and
asserts that it reproduces every row of this file and every routing decision
of `fixtures/models/families/` (a newer PyTorch replaces `std::partial_sort` by
a k-sized heap with `pop_heap`/`push_heap`; on these rows that variant differs
from torch 2.13 and the port follows 2.13).

Indices torch returns for the all-zero row (row 0):

| n.k | indices |
| --- | --- |
{lines}

So for the common router sizes (k * 64 > n) the first index is not 0: for
n = 8, k = 2 torch picks [6, 5]; for n = 4, k = 2 [2, 3]; for n = 60, k = 4
[39, 40, 41, 38].  Only with k * 64 <= n (partial sort: heap select keeps the
first k indices, then sort_heap orders them) does the all-equal row give
small indices ([0] for n = 64/128/256, k = 1; [0, 1] for n = 128/256, k = 2;
[1, 3, 0, 2] for n = 256, k = 4).
"""
    (TOPK_OUT / "README.md").write_text(text)


# ---------------------------------------------------------------------------

def main() -> int:
    os.chdir(ROOT)
    torch.set_num_threads(1)
    log(f"writing family fixtures under {OUT}")
    fresh_dir(OUT)
    results = make_families()
    log("writing fixtures/topk")
    topk = make_topk()
    write_families_readme(results)
    write_topk_readme(topk)
    for base in (OUT, TOPK_OUT):
        for p in base.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
    summary = {n: {k: v for k, v in r.items() if k not in ("config", "tensors", "expected_table")}
               for n, r in results.items()}
    print(json.dumps(summary, indent=1, default=str))
    total = sum(p.stat().st_size for base in (OUT, TOPK_OUT) for p in base.rglob("*") if p.is_file())
    log(f"total size of fixtures/models/families + fixtures/topk: {total} bytes (topk {topk['size']})")
    assert total < MAX_TOTAL_BYTES, "fixtures too large"
    return 0


if __name__ == "__main__":
    sys.exit(main())
