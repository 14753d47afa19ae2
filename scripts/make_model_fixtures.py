#!/usr/bin/env python3
"""Generate fixtures/models/: reference MoE models, their inputs and outputs,
and one tiny Mixtral's weights in every common checkpoint layout.

Deterministic (a torch.manual_seed per model, a dedicated generator for the
Mixtral input_ids, no timestamps) and re-runnable: fixtures/models/ is
deleted and rewritten.  Run from anywhere:

    /work/venv/bin/python scripts/make_model_fixtures.py

Needs the pinned packages in scripts/requirements-fixtures.txt (torch,
safetensors, transformers, numpy, gguf).  CI never runs this script; the
generated files are committed.

Sections:
  a) seed modules (scripts/seed_modules.py): config.json, model.safetensors,
     expected.safetensors (inputs + eval/no_grad outputs) per module
  b) transformers MixtralForCausalLM: tiny-mixtral, tiny-mixtral-variant,
     tiny-mixtral-bf16 (config.json, model.safetensors, expected.safetensors)
  c) layouts/ of tiny-mixtral's weights: hf, hf-sharded, hf-fused, mistral,
     gguf, mlx - every derived file is mapped back to the HF tensors and
     compared exactly (the script fails loudly otherwise)
  d) README.md files (fixtures/models/README.md, fixtures/models/layouts/README.md)
"""

from __future__ import annotations

import copy
import json
import os
import platform
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
OUT = ROOT / "fixtures" / "models"
LAYOUTS = OUT / "layouts"
EXISTING_TINY = ROOT / "fixtures" / "safetensors" / "tiny-mixtral"

sys.path.insert(0, str(SCRIPTS))
import seed_modules as sm  # noqa: E402
from check_layout_logits import INPUT_IDS_SEED, make_input_ids  # noqa: E402
from fixture_util import canonicalize_metadata_order, fresh_dir, log

MAX_TOTAL_BYTES = 2 * 1024 * 1024

# Per-model torch.manual_seed values (set right before the module is built;
# the module's input is drawn from the same global stream right after it).
SEEDS = {
    "mixture_of_experts": 101,
    "switch_transformer": 102,
    "mixtral_block": 103,
    "basic_moe": 104,
    "sparse_moe": 105,
    "sparse_moe_shared": 106,
    "mixtral": 0,  # every transformers Mixtral (as in scripts/make_fixtures.py)
}

# Observations collected while generating; rendered into the READMEs.
OBS: dict[str, object] = {}




def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def save_st(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors.torch.save_file with contiguous tensors.  With more than one
    metadata key the library's HashMap writes them in random order; see
    canonicalize_metadata_order."""
    safetensors.torch.save_file({k: v.contiguous() for k, v in tensors.items()}, str(path),
                                metadata=metadata if metadata is not None else {"format": "pt"})
    if metadata is not None and len(metadata) > 1:
        canonicalize_metadata_order(path)


def read_header(path: Path) -> tuple[int, bytes]:
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    return n, b[8:8 + n]


def load_st(path: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(path))


def load_dir(d: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory (index.json aware); fails on
    duplicates, on tensors missing from the index, or unlisted tensors."""
    idx = d / "model.safetensors.index.json"
    out: dict[str, torch.Tensor] = {}
    if idx.exists():
        wm = json.loads(idx.read_text())["weight_map"]
        for shard in sorted(set(wm.values())):
            t = load_st(d / shard)
            for k, v in t.items():
                assert k not in out, f"{k} in two shards"
                assert wm.get(k) == shard, f"{k}: index says {wm.get(k)}, found in {shard}"
                out[k] = v
        assert set(out) == set(wm), "index and shards disagree"
    else:
        files = sorted(d.glob("*.safetensors"))
        assert len(files) == 1, f"{d}: expected one .safetensors file, got {files}"
        out = load_st(files[0])
    return out


def assert_same_tensors(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], what: str) -> None:
    if set(got) != set(want):
        raise AssertionError(f"{what}: names differ: missing {sorted(set(want) - set(got))[:6]}, "
                             f"extra {sorted(set(got) - set(want))[:6]}")
    for k in want:
        g, w = got[k], want[k]
        if g.dtype != w.dtype or g.shape != w.shape or not torch.equal(g, w):
            raise AssertionError(f"{what}: tensor {k} differs ({g.dtype} {list(g.shape)} vs {w.dtype} {list(w.shape)})")


def tensor_table(path: Path) -> list[tuple[str, str, list[int]]]:
    _, hdr = read_header(path)
    obj = json.loads(hdr)
    return [(k, v["dtype"], v["shape"]) for k, v in obj.items() if k != "__metadata__"]


# ---------------------------------------------------------------------------
# a) seed modules
# ---------------------------------------------------------------------------

SEED_DOCS: dict[str, dict] = {}


# moeckpt verify's file: inputs under `inputs` (modules) or `input_ids` (causal LMs), outputs under
# the names verify knows; tolerances and a description of the reference in __metadata__.
EXPECTED = "expected.safetensors"
KEY_NAMES = {"x": "inputs", "output": "outputs"}


def save_expected(reference: dict[str, torch.Tensor], d: Path, what: str, atol: str = "1e-5",
                  rtol: str = "1e-4", **extra: str) -> None:
    tensors = {KEY_NAMES.get(k, k): v for k, v in reference.items()}
    for k, v in tensors.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    meta = {"format": "pt", "atol": atol, "rtol": rtol, "reference": what, **extra}
    save_st(tensors, d / EXPECTED, meta)


def write_seed_model(name: str, model_type: str, ctor_args: dict, module: torch.nn.Module,
                     reference: dict[str, torch.Tensor], doc: dict, **extra: str) -> None:
    d = fresh_dir(OUT / name)
    write_json(d / "config.json", {"model_type": model_type, **ctor_args})
    save_st(module.state_dict(), d / "model.safetensors", {"format": "pt"})
    save_expected(reference, d, f"{doc['class']} (scripts/seed_modules.py) in eval mode, torch {torch.__version__}",
                  **extra)
    # round trip: the saved weights reproduce the reference outputs
    SEED_DOCS[name] = doc


def run_eval(module: torch.nn.Module, *args):
    module.eval()
    with torch.no_grad():
        return module(*args)


def make_mixture_of_experts() -> None:
    args = dict(d_model=16, d_ff=32, num_experts=4, k=2)
    torch.manual_seed(SEEDS["mixture_of_experts"])
    m = sm.MixtureOfExperts(**args)
    x = torch.randn(2, 8, 16)
    out, aux = run_eval(m, x)
    assert out.shape == (2, 8, 16) and aux.shape == ()
    write_seed_model("mixture_of_experts", "mixture_of_experts", args, m,
                     {"x": x, "output": out, "aux_loss": aux},
                     {"class": "MixtureOfExperts", "seed": SEEDS["mixture_of_experts"],
                      "tensors": {"x": "input, torch.randn", "output": "first return value",
                                  "aux_loss": "second return value, TopKRouter.compute_load_balancing_loss(router(x)) (scalar)"}})


# -- Switch Transformer -----------------------------------------------------

def switch_routing(m: sm.SwitchTransformer, x: torch.Tensor):
    """The seed's routing decisions, recomputed: per expert, the (b, l) token
    positions it keeps (same selection code as the seed's forward)."""
    B, L, _ = x.shape
    logits = m.router(x)
    idx = logits.argmax(dim=-1)
    probs = torch.softmax(logits, dim=-1)
    capacity = int(m.capacity_factor * L / m.num_experts)
    kept, routed = [], []
    for e in range(m.num_experts):
        mask = idx == e
        ti = mask.nonzero(as_tuple=True)
        routed.append(len(ti[0]))
        if len(ti[0]) > capacity:
            top = probs[mask][:, e].topk(capacity).indices
            ti = (ti[0][top], ti[1][top])
        kept.append(ti)
    return capacity, routed, kept, probs


def switch_forward_prob_scaled(m: sm.SwitchTransformer, x: torch.Tensor) -> torch.Tensor:
    """Switch Transformer paper variant (Fedus et al. 2021, eq. 2): a kept
    token's output is p_i(x) * E_i(x), with p_i the router softmax
    probability of its (argmax) expert i.  Token selection under the
    capacity limit and dropping (zero output) are exactly the seed's."""
    _, _, kept, probs = switch_routing(m, x)
    out = torch.zeros_like(x)
    for e, ti in enumerate(kept):
        if len(ti[0]) > 0:
            y = m.experts[e](x[ti])
            out[ti] = y * probs[ti][:, e].unsqueeze(-1)
    return out


def make_switch_transformer() -> None:
    args = dict(d_model=16, num_experts=4, capacity_factor=1.0)
    torch.manual_seed(SEEDS["switch_transformer"])
    m = sm.SwitchTransformer(**args)
    m.eval()
    for attempt in range(1, 101):
        x = torch.randn(2, 8, 16)
        with torch.no_grad():
            capacity, routed, kept, _ = switch_routing(m, x)
        dropped = sum(max(0, r - capacity) for r in routed)
        if any(r > capacity for r in routed) and dropped > 0:
            break
    else:
        raise AssertionError("no input with an over-capacity expert")
    out = run_eval(m, x)
    with torch.no_grad():
        scaled = switch_forward_prob_scaled(m, x)
    # cross-checks: dropped tokens are exactly the all-zero rows of both outputs
    kept_mask = torch.zeros(2, 8, dtype=torch.bool)
    for ti in kept:
        kept_mask[ti] = True
    assert int((~kept_mask).sum()) == dropped
    assert torch.all(out[~kept_mask] == 0) and torch.all(scaled[~kept_mask] == 0)
    assert torch.all(out[kept_mask].abs().sum(-1) > 0)
    with torch.no_grad():
        probs = torch.softmax(m.router(x), -1)
        p = probs.gather(-1, probs.argmax(-1, keepdim=True))
    assert torch.allclose(scaled, out * p, rtol=1e-6, atol=1e-7)
    OBS["switch"] = {"capacity": capacity, "routed_per_expert": routed, "dropped": dropped,
                     "input_attempts": attempt, "kept": int(kept_mask.sum())}
    scaled_dir = "switch_transformer_scaled"
    write_seed_model(scaled_dir, "switch_transformer", {**args, "scale_by_router_probability": True}, m,
                     {"x": x, "output": scaled},
                     {"class": "SwitchTransformer + switch_forward_prob_scaled", "seed": SEEDS["switch_transformer"],
                      "tensors": {"x": "input (the same as switch_transformer's)",
                                  "output": "switch_forward_prob_scaled(x): each kept token's expert output "
                                            "multiplied by its router softmax probability (paper variant)"}},
                     dropped_tokens=str(dropped))
    write_seed_model("switch_transformer", "switch_transformer", args, m,
                     {"x": x, "output": out},
                     {"class": "SwitchTransformer", "seed": SEEDS["switch_transformer"],
                      "tensors": {"x": "input, torch.randn (first draw after building the module that "
                                       "makes an expert exceed capacity; asserted)",
                                  "output": "SwitchTransformer.forward(x) (seed: kept tokens get the raw expert output)",
                                  }},
                     dropped_tokens=str(dropped))


def make_mixtral_block() -> None:
    args = dict(d_model=16, n_heads=4, num_experts=4, k=2)
    torch.manual_seed(SEEDS["mixtral_block"])
    m = sm.MixtralBlock(**args)
    x = torch.randn(2, 8, 16)
    out, aux = run_eval(m, x)
    # nn.MultiheadAttention takes its fused "fast path" in eval + no_grad;
    # compare with the reference (math) path.
    prev = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        out_slow, aux_slow = run_eval(m, x)
    finally:
        torch.backends.mha.set_fastpath_enabled(prev)
    OBS["mha_fastpath_vs_slow"] = {"equal": bool(torch.equal(out, out_slow)),
                                   "max_abs_diff": float((out - out_slow).abs().max()),
                                   "aux_equal": bool(torch.equal(aux, aux_slow))}
    assert torch.allclose(out, out_slow, atol=1e-5)
    write_seed_model("mixtral_block", "mixtral_block", args, m,
                     {"x": x, "output": out, "aux_loss": aux},
                     {"class": "MixtralBlock", "seed": SEEDS["mixtral_block"],
                      "tensors": {"x": "input, torch.randn", "output": "first return value (after ln2)",
                                  "aux_loss": "second return value (the inner MixtureOfExperts' aux_loss, scalar)"}})


def make_basic_moe() -> None:
    args = dict(feature_in=16, feature_out=8, num_experts=4)
    torch.manual_seed(SEEDS["basic_moe"])
    m = sm.BasicMOE(**args)
    x = torch.randn(4, 16)
    out = run_eval(m, x)
    assert out.shape == (4, 8)
    write_seed_model("basic_moe", "basic_moe", args, m, {"x": x, "output": out},
                     {"class": "BasicMOE", "seed": SEEDS["basic_moe"],
                      "tensors": {"x": "input, torch.randn", "output": "BasicMOE.forward(x)"}})


def make_sparse(name: str, shared: int) -> None:
    args = dict(hidden_dim=16, expert_number=4, top_k=2, shared_experts_number=shared)
    torch.manual_seed(SEEDS[name])
    cls = sm.SparseMOE if shared == 0 else sm.SharedExpertSparseMOE
    m = cls(sm.MOEConfig(**args))
    x = torch.randn(2, 4, 16)
    out, logits = run_eval(m, x)
    assert out.shape == (2, 4, 16) and logits.shape == (8, 4)
    keys = list(m.state_dict())
    want = ([f"experts.{i}.fc.{p}" for i in range(4) for p in ("weight", "bias")]
            + ["router.gate.weight", "router.gate.bias"]
            + [f"shared_experts.{i}.fc.{p}" for i in range(shared) for p in ("weight", "bias")])
    assert keys == want, keys
    if shared:
        # the shared part is exactly out - SparseMOE(x) with the same weights
        base = sm.SparseMOE(sm.MOEConfig(**args))
        base.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("shared_")})
        b_out, b_logits = run_eval(base, x)
        assert torch.equal(b_logits, logits)
        with torch.no_grad():
            s = m.shared_experts[0](x) + m.shared_experts[1](x)
        assert torch.equal(out, b_out + s)
    write_seed_model(name, "sparse_moe", args, m, {"x": x, "output": out, "router_logits": logits},
                     {"class": cls.__name__, "seed": SEEDS[name],
                      "tensors": {"x": "input, torch.randn",
                                  "output": "first return value" + (" (sparse output + shared_0(x) + shared_1(x))" if shared else ""),
                                  "router_logits": "second return value: router gate logits over the flattened "
                                                   "tokens [batch*seq, expert_number] (before softmax)"}})


# ---------------------------------------------------------------------------
# b) transformers Mixtral
# ---------------------------------------------------------------------------

TINY_CFG = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                num_experts_per_tok=2, max_position_embeddings=64, tie_word_embeddings=False)
# every config feature at once
VARIANT_CFG = dict(vocab_size=48, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                   num_attention_heads=4, head_dim=8, num_key_value_heads=1, num_local_experts=3,
                   num_experts_per_tok=2, max_position_embeddings=64, sliding_window=4,
                   tie_word_embeddings=True, rms_norm_eps=1e-6,
                   rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
# plain multi-head attention, top-1 of 8 experts, widths that are not multiples of 16, weights
# large enough that every output is O(1)
# 8 heads, so that dropping num_key_value_heads from config.json means the same to transformers
# (whose MixtralConfig defaults it to 8) and to the rule "absent: equal to the heads".
MHA_CFG = dict(vocab_size=50, hidden_size=48, intermediate_size=40, num_hidden_layers=2,
               num_attention_heads=8, num_key_value_heads=8, num_local_experts=8,
               num_experts_per_tok=1, max_position_embeddings=64, tie_word_embeddings=False,
               initializer_range=0.3, rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
MHA_IDS_SHAPE = (2, 9)
TINY_IDS_SHAPE = (2, 12)
VARIANT_IDS_SHAPE = (1, 16)

MIXTRAL_DOCS: dict[str, dict] = {}


def build_mixtral(cfg_kwargs: dict):
    from transformers import MixtralConfig, MixtralForCausalLM
    torch.manual_seed(SEEDS["mixtral"])
    cfg = MixtralConfig(**cfg_kwargs, attn_implementation="eager")
    model = MixtralForCausalLM(cfg)
    model.eval()
    assert model.dtype == torch.float32 and model.config._attn_implementation == "eager"
    return model


def save_pretrained(model, d: Path, **kw) -> None:
    model.save_pretrained(str(d), **kw)


def hand_aux_loss(router_logits, num_experts: int, top_k: int) -> torch.Tensor:
    """Switch-style load balancing loss as transformers 5.23 computes it
    (no attention mask): over all layers' rows together,
    E * sum_e (fraction of top-k slots routed to e) * (mean router prob of e)
    where the fraction counts top-k selections (so it sums to top_k)."""
    counts = torch.zeros(num_experts, dtype=torch.float64)
    psum = torch.zeros(num_experts, dtype=torch.float64)
    n = 0
    for r in router_logits:
        p = torch.softmax(r.double(), -1)
        sel = torch.topk(torch.softmax(r, -1), top_k, dim=-1).indices
        counts += torch.bincount(sel.reshape(-1), minlength=num_experts).double()
        psum += p.sum(0)
        n += r.shape[0]
    return (num_experts * ((counts / n) * (psum / n)).sum()).float()


def mixtral_reference(model, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func
    cfg = model.config
    with torch.no_grad():
        out = model(input_ids=ids, output_router_logits=True)
        plain = model(input_ids=ids)
        with_labels = model(input_ids=ids, labels=ids, output_router_logits=True)
        ce_only = model(input_ids=ids, labels=ids)
    assert torch.equal(out.logits, plain.logits)
    assert out.loss is None
    raw = load_balancing_loss_func(out.router_logits, cfg.num_local_experts, cfg.num_experts_per_tok, None)
    assert torch.equal(raw, out.aux_loss), "outputs.aux_loss is not load_balancing_loss_func(...)"
    assert torch.allclose(hand_aux_loss(out.router_logits, cfg.num_local_experts, cfg.num_experts_per_tok),
                          raw, rtol=1e-6, atol=0), "hand-computed aux loss differs"
    # outputs.loss (only with labels) = cross-entropy + router_aux_loss_coef * aux_loss
    assert torch.allclose(with_labels.loss, ce_only.loss + cfg.router_aux_loss_coef * raw, rtol=1e-6, atol=0)
    OBS["aux_loss_coef"] = cfg.router_aux_loss_coef
    ref = {"input_ids": ids, "logits": out.logits}
    with torch.no_grad():
        hs = model(input_ids=ids, output_hidden_states=True).hidden_states
    assert len(hs) == cfg.num_hidden_layers + 1
    for n, h in enumerate(hs):  # 0: embeddings, 1..L-1: layer outputs, L: final-norm output
        ref[f"hidden_states.{n}"] = h
    # ST-MoE router z-loss over every layer's logits: mean over tokens of logsumexp(logits)^2
    ref["router_z_loss"] = (torch.logsumexp(torch.cat(out.router_logits), dim=-1) ** 2).mean()
    n_tok = ids.numel()
    for l, r in enumerate(out.router_logits):
        assert r.shape == (n_tok, cfg.num_local_experts) and r.dtype == torch.float32
        ref[f"router_logits.{l}"] = r
    ref["aux_loss"] = raw
    assert raw.shape == () and raw.dtype == torch.float32
    return ref


def write_mixtral(name: str, model, ids: torch.Tensor, ref_model=None, **save_kw) -> dict[str, torch.Tensor]:
    d = fresh_dir(OUT / name)
    save_pretrained(model, d, **save_kw)
    ref = mixtral_reference(ref_model if ref_model is not None else model, ids)
    import transformers
    save_expected(ref, d, f"transformers {transformers.__version__} MixtralForCausalLM, eager attention, float32",
                  atol="1e-5", rtol="1e-4")
    return ref


def make_mixtrals() -> dict:
    import transformers
    from transformers import MixtralForCausalLM
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    # ---- tiny-mixtral ------------------------------------------------------
    model = build_mixtral(TINY_CFG)
    ids = make_input_ids(TINY_CFG["vocab_size"], TINY_IDS_SHAPE)
    ref = write_mixtral("tiny-mixtral", model, ids)
    d = OUT / "tiny-mixtral"
    assert (d / "config.json").read_bytes() == (EXISTING_TINY / "config.json").read_bytes(), \
        "tiny-mixtral/config.json differs from fixtures/safetensors/tiny-mixtral/config.json"
    assert (d / "model.safetensors").read_bytes() == (EXISTING_TINY / "model.safetensors").read_bytes(), \
        "tiny-mixtral weights differ from fixtures/safetensors/tiny-mixtral"
    OBS["tiny_same_as_existing"] = True
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["rope_parameters"]["rope_theta"] == 1e6 and cfg["head_dim"] is None
    # reload check: from_pretrained reproduces the logits exactly
    re = MixtralForCausalLM.from_pretrained(str(d), attn_implementation="eager", torch_dtype=torch.float32).eval()
    with torch.no_grad():
        assert torch.equal(re(input_ids=ids).logits, ref["logits"])

    # ---- tiny-mixtral-variant ------------------------------------------------
    var = build_mixtral(VARIANT_CFG)
    c = var.config
    assert (c.head_dim, c.num_key_value_heads, c.sliding_window, c.tie_word_embeddings, c.rms_norm_eps,
            c.rope_parameters["rope_theta"], c.num_local_experts, c.num_experts_per_tok) == \
        (8, 1, 4, True, 1e-6, 10000.0, 3, 2)
    assert var.lm_head.weight is var.model.embed_tokens.weight, "lm_head not tied"
    assert var.model.layers[0].self_attn.q_proj.weight.shape == (32, 16)
    vids = make_input_ids(VARIANT_CFG["vocab_size"], VARIANT_IDS_SHAPE)
    vref = write_mixtral("tiny-mixtral-variant", var, vids)
    vd = OUT / "tiny-mixtral-variant"
    vnames = [n for n, _, _ in tensor_table(vd / "model.safetensors")]
    assert "lm_head.weight" not in vnames, "tied lm_head.weight was saved"
    # the sliding window (4 < 16 tokens) must change the result
    nosw = copy.deepcopy(var)
    nosw.config.sliding_window = None
    with torch.no_grad():
        sw_diff = float((nosw(input_ids=vids).logits - vref["logits"]).abs().max())
    assert sw_diff > 1e-4, "sliding window has no effect"
    OBS["variant_sliding_window_effect"] = sw_diff
    re = MixtralForCausalLM.from_pretrained(str(vd), attn_implementation="eager", torch_dtype=torch.float32).eval()
    with torch.no_grad():
        assert torch.equal(re(input_ids=vids).logits, vref["logits"])
    OBS["variant_config"] = json.loads((vd / "config.json").read_text())

    # ---- tiny-mixtral-bf16 ---------------------------------------------------
    bf = copy.deepcopy(model).to(torch.bfloat16)
    # float32 model on the bf16-rounded weights.  Only the parameters are
    # rounded: the literal `model.to(bfloat16).to(float32)` would also round
    # the non-persistent rotary buffer inv_freq (not in the checkpoint), which
    # neither from_pretrained(torch_dtype=float32) nor a float32 reader does.
    upcast = copy.deepcopy(model).eval()
    with torch.no_grad():
        for prm in upcast.parameters():
            prm.copy_(prm.to(torch.bfloat16).to(torch.float32))
    literal = copy.deepcopy(model).to(torch.bfloat16).to(torch.float32).eval()
    inv_lit = literal.model.rotary_emb.inv_freq
    inv_ok = upcast.model.rotary_emb.inv_freq
    assert inv_ok.dtype == torch.float32 and torch.equal(inv_ok, model.model.rotary_emb.inv_freq)
    with torch.no_grad():
        OBS["bf16_literal_recipe"] = {
            "inv_freq_max_abs_diff": float((inv_lit - inv_ok).abs().max()),
            "logits_max_abs_diff": float((literal(input_ids=ids).logits - upcast(input_ids=ids).logits).abs().max())}
    for (n1, a), (n2, b) in zip(literal.named_parameters(), upcast.named_parameters()):
        assert n1 == n2 and torch.equal(a, b)
    bref = write_mixtral("tiny-mixtral-bf16", bf, ids, ref_model=upcast)
    bd = OUT / "tiny-mixtral-bf16"
    bcfg = json.loads((bd / "config.json").read_text())
    assert bcfg["dtype"] == "bfloat16", bcfg["dtype"]
    on_disk = load_st(bd / "model.safetensors")
    assert all(v.dtype == torch.bfloat16 for v in on_disk.values())
    f32 = load_st(d / "model.safetensors")
    assert_same_tensors(on_disk, {k: v.to(torch.bfloat16) for k, v in f32.items()}, "bf16 = f32 weights .to(bf16)")
    re = MixtralForCausalLM.from_pretrained(str(bd), attn_implementation="eager", torch_dtype=torch.float32).eval()
    with torch.no_grad():
        assert torch.equal(re(input_ids=ids).logits, bref["logits"]), "bf16 reload (upcast) != reference"
    OBS["bf16_vs_f32_logits_max_abs_diff"] = float((bref["logits"] - ref["logits"]).abs().max())

    # ---- mixtral-mha-top1, its config.json rewritten as transformers 4.x wrote it -------------
    mha = build_mixtral(MHA_CFG)
    mids = make_input_ids(MHA_CFG["vocab_size"], MHA_IDS_SHAPE)
    mref = write_mixtral("mixtral-mha-top1", mha, mids)
    md_ = OUT / "mixtral-mha-top1"
    cfg4 = json.loads((md_ / "config.json").read_text())
    theta = cfg4.pop("rope_parameters")["rope_theta"]
    for key in ("head_dim", "num_key_value_heads", "dtype", "transformers_version"):
        cfg4.pop(key, None)
    cfg4.update(rope_theta=theta, torch_dtype="float32", transformers_version="4.36.0")
    write_json(md_ / "config.json", cfg4)
    re = MixtralForCausalLM.from_pretrained(str(md_), attn_implementation="eager", torch_dtype=torch.float32).eval()
    assert re.config.num_key_value_heads == 8 and re.config.head_dim in (None, 6)
    with torch.no_grad():
        assert torch.equal(re(input_ids=mids).logits, mref["logits"]), "4.x-style config changes the model"
    assert float(mref["logits"].abs().max()) > 0.5, "mha logits too small to test anything"

    for n, r in (("tiny-mixtral", ref), ("tiny-mixtral-variant", vref), ("tiny-mixtral-bf16", bref),
                 ("mixtral-mha-top1", mref)):
        OBS[f"aux_loss[{n}]"] = float(r["aux_loss"])
    return {"model": model, "ids": ids, "ref": ref}


# ---------------------------------------------------------------------------
# c) layouts of tiny-mixtral's weights
# ---------------------------------------------------------------------------

# Quoted from transformers' src/transformers/models/mixtral/convert_mixtral_weights_to_hf.py
# (huggingface/transformers @ ae19f01e6d4e3da006db0f79db2de097ea12c29d; the
# script is not shipped in the transformers 5.23.0 wheel):
#
#     # permute for sliced rotary
#     def permute(w, n_heads=n_heads, dim1=dim, dim2=dim):
#         return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)
#
# It maps Mistral's (interleaved-pair rotary) wq/wk rows to HF's (half-split
# rotary) q_proj/k_proj rows; for wk it is called with
# (num_key_value_heads, key_value_dim, dim).
def hf_permute(w: torch.Tensor, n_heads: int, dim1: int, dim2: int) -> torch.Tensor:
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def mistral_unpermute(w: torch.Tensor, n_heads: int, dim1: int, dim2: int) -> torch.Tensor:
    """Exact inverse of hf_permute: HF q_proj/k_proj -> Mistral wq/wk."""
    return w.view(n_heads, 2, dim1 // n_heads // 2, dim2).transpose(1, 2).reshape(dim1, dim2)


# Quoted from llama.cpp's convert_hf_to_gguf.py, class LlamaModel (which
# MixtralForCausalLM is registered to; ggml-org/llama.cpp @ 0024aa7417efd50a7c2a79e049dfbbbceb0beaaf):
#
#     @staticmethod
#     def permute(weights: Tensor, n_head: int, n_head_kv: int | None):
#         if n_head_kv is not None and n_head != n_head_kv:
#             n_head = n_head_kv
#         return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
#                 .swapaxes(1, 2)
#                 .reshape(weights.shape))
#
# applied as permute(q, n_head, n_head) and permute(k, n_head, n_kv_head).
def gguf_permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def np32(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32, copy=True)


class Dims:
    def __init__(self, cfg: dict):
        self.L = cfg["num_hidden_layers"]
        self.E = cfg["num_local_experts"]
        self.K = cfg["num_experts_per_tok"]
        self.H = cfg["hidden_size"]
        self.I = cfg["intermediate_size"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg["num_key_value_heads"]
        self.hd = cfg["head_dim"] or self.H // self.nh
        self.vocab = cfg["vocab_size"]
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg["rope_parameters"]["rope_theta"]
        self.ctx = cfg["max_position_embeddings"]


# ---- hf-fused --------------------------------------------------------------

def hf_from_fused(t: dict[str, torch.Tensor], D: Dims) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in t.items():
        if ".mlp.experts.gate_up_proj" in k:
            l = k.split(".")[2]
            assert v.shape == (D.E, 2 * D.I, D.H)
            for e in range(D.E):
                p = f"model.layers.{l}.block_sparse_moe.experts.{e}."
                out[p + "w1.weight"] = v[e, :D.I].clone()
                out[p + "w3.weight"] = v[e, D.I:].clone()
        elif ".mlp.experts.down_proj" in k:
            l = k.split(".")[2]
            assert v.shape == (D.E, D.H, D.I)
            for e in range(D.E):
                out[f"model.layers.{l}.block_sparse_moe.experts.{e}.w2.weight"] = v[e].clone()
        elif k.endswith(".mlp.gate.weight"):
            out[k.replace(".mlp.gate.weight", ".block_sparse_moe.gate.weight")] = v
        else:
            out[k] = v
    return out


# ---- mistral ---------------------------------------------------------------

def mistral_from_hf(hf: dict[str, torch.Tensor], D: Dims) -> dict[str, torch.Tensor]:
    m = {"tok_embeddings.weight": hf["model.embed_tokens.weight"],
         "norm.weight": hf["model.norm.weight"],
         "output.weight": hf["lm_head.weight"]}
    for l in range(D.L):
        h, o = f"model.layers.{l}.", f"layers.{l}."
        m[o + "attention.wq.weight"] = mistral_unpermute(hf[h + "self_attn.q_proj.weight"], D.nh, D.nh * D.hd, D.H)
        m[o + "attention.wk.weight"] = mistral_unpermute(hf[h + "self_attn.k_proj.weight"], D.nkv, D.nkv * D.hd, D.H)
        m[o + "attention.wv.weight"] = hf[h + "self_attn.v_proj.weight"]
        m[o + "attention.wo.weight"] = hf[h + "self_attn.o_proj.weight"]
        m[o + "attention_norm.weight"] = hf[h + "input_layernorm.weight"]
        m[o + "ffn_norm.weight"] = hf[h + "post_attention_layernorm.weight"]
        m[o + "feed_forward.gate.weight"] = hf[h + "block_sparse_moe.gate.weight"]
        for e in range(D.E):
            for w in ("w1", "w2", "w3"):
                m[o + f"feed_forward.experts.{e}.{w}.weight"] = hf[h + f"block_sparse_moe.experts.{e}.{w}.weight"]
    return {k: v.contiguous().clone() for k, v in m.items()}


def hf_from_mistral(m: dict[str, torch.Tensor], D: Dims) -> dict[str, torch.Tensor]:
    hf = {"model.embed_tokens.weight": m["tok_embeddings.weight"],
          "model.norm.weight": m["norm.weight"],
          "lm_head.weight": m["output.weight"]}
    for l in range(D.L):
        h, o = f"model.layers.{l}.", f"layers.{l}."
        # the transformers conversion script's permute, exactly as it calls it
        hf[h + "self_attn.q_proj.weight"] = hf_permute(m[o + "attention.wq.weight"], D.nh, D.nh * D.hd, D.H)
        hf[h + "self_attn.k_proj.weight"] = hf_permute(m[o + "attention.wk.weight"], D.nkv, D.nkv * D.hd, D.H)
        hf[h + "self_attn.v_proj.weight"] = m[o + "attention.wv.weight"]
        hf[h + "self_attn.o_proj.weight"] = m[o + "attention.wo.weight"]
        hf[h + "input_layernorm.weight"] = m[o + "attention_norm.weight"]
        hf[h + "post_attention_layernorm.weight"] = m[o + "ffn_norm.weight"]
        hf[h + "block_sparse_moe.gate.weight"] = m[o + "feed_forward.gate.weight"]
        for e in range(D.E):
            for w in ("w1", "w2", "w3"):
                hf[h + f"block_sparse_moe.experts.{e}.{w}.weight"] = m[o + f"feed_forward.experts.{e}.{w}.weight"]
    assert len(m) == len(hf), "unmapped mistral tensors"
    return hf


def mistral_params(D: Dims) -> dict:
    return {"dim": D.H, "n_layers": D.L, "head_dim": D.hd, "hidden_dim": D.I, "n_heads": D.nh,
            "n_kv_heads": D.nkv, "norm_eps": D.eps, "vocab_size": D.vocab, "rope_theta": D.theta,
            "moe": {"num_experts": D.E, "num_experts_per_tok": D.K}}


# ---- gguf ------------------------------------------------------------------

GGUF_WID = {"w1": "ffn_gate_exps", "w3": "ffn_up_exps", "w2": "ffn_down_exps"}


def gguf_from_hf(hf: dict[str, torch.Tensor], D: Dims) -> dict[str, np.ndarray]:
    import gguf
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, D.L)

    def name(hf_name: str) -> str:
        n = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        assert n is not None, f"gguf has no name for {hf_name}"
        return n

    g: dict[str, np.ndarray] = {}
    for k, v in hf.items():
        if ".block_sparse_moe.experts." in k:
            continue
        a = np32(v)
        if k.endswith("self_attn.q_proj.weight"):
            a = gguf_permute(a, D.nh, D.nh)
        elif k.endswith("self_attn.k_proj.weight"):
            a = gguf_permute(a, D.nh, D.nkv)
        g[name(k)] = np.ascontiguousarray(a)
    for l in range(D.L):
        for wid in ("w1", "w2", "w3"):
            stacked = np.stack([np32(hf[f"model.layers.{l}.block_sparse_moe.experts.{e}.{wid}.weight"])
                                for e in range(D.E)], axis=0)
            # the name convert_hf_to_gguf.py gives the stacked tensor, mapped by gguf-py
            n = name(f"layers.{l}.feed_forward.experts.{wid}.weight")
            assert n == name(f"model.layers.{l}.block_sparse_moe.experts.{wid}.weight")
            assert n == f"blk.{l}.{GGUF_WID[wid]}.weight", n
            g[n] = stacked
    # the names must be exactly the documented llama.cpp ones
    want = {"token_embd.weight", "output_norm.weight", "output.weight"}
    for l in range(D.L):
        want |= {f"blk.{l}.{s}.weight" for s in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                                   "ffn_norm", "ffn_gate_inp", "ffn_gate_exps",
                                                   "ffn_up_exps", "ffn_down_exps")}
    assert set(g) == want, sorted(set(g) ^ want)
    for l in range(D.L):
        assert g[f"blk.{l}.ffn_gate_exps.weight"].shape == (D.E, D.I, D.H)
        assert g[f"blk.{l}.ffn_up_exps.weight"].shape == (D.E, D.I, D.H)
        assert g[f"blk.{l}.ffn_down_exps.weight"].shape == (D.E, D.H, D.I)
    return g


def gguf_metadata(D: Dims) -> dict[str, str]:
    import gguf
    K, arch = gguf.Keys, "llama"
    kv = {
        K.General.ARCHITECTURE: arch,
        K.LLM.BLOCK_COUNT.format(arch=arch): D.L,
        K.LLM.CONTEXT_LENGTH.format(arch=arch): D.ctx,
        K.LLM.EMBEDDING_LENGTH.format(arch=arch): D.H,
        K.LLM.FEED_FORWARD_LENGTH.format(arch=arch): D.I,
        K.Attention.HEAD_COUNT.format(arch=arch): D.nh,
        K.Attention.HEAD_COUNT_KV.format(arch=arch): D.nkv,
        K.Rope.FREQ_BASE.format(arch=arch): float(D.theta),
        K.Attention.LAYERNORM_RMS_EPS.format(arch=arch): float(D.eps),
        K.LLM.EXPERT_COUNT.format(arch=arch): D.E,
        K.LLM.EXPERT_USED_COUNT.format(arch=arch): D.K,
        K.Rope.DIMENSION_COUNT.format(arch=arch): D.hd,
        K.LLM.VOCAB_SIZE.format(arch=arch): D.vocab,
    }
    want = {"general.architecture", "llama.block_count", "llama.context_length", "llama.embedding_length",
            "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
            "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon", "llama.expert_count",
            "llama.expert_used_count", "llama.rope.dimension_count", "llama.vocab_size"}
    assert set(kv) == want, sorted(set(kv) ^ want)
    md = {k: str(v) for k, v in kv.items()}  # Python str(): ints "16", floats "1000000.0", "1e-05"
    md["format"] = "pt"
    return md


def hf_from_gguf(g: dict[str, torch.Tensor], D: Dims) -> dict[str, torch.Tensor]:
    hf = {"model.embed_tokens.weight": g["token_embd.weight"],
          "model.norm.weight": g["output_norm.weight"],
          "lm_head.weight": g["output.weight"]}
    used = set(hf)
    for l in range(D.L):
        b, h = f"blk.{l}.", f"model.layers.{l}."
        # llama.cpp's permute is inverted by transformers' permute (the GGUF
        # q/k row order is Mistral's/Meta's original interleaved order)
        hf[h + "self_attn.q_proj.weight"] = hf_permute(g[b + "attn_q.weight"], D.nh, D.nh * D.hd, D.H)
        hf[h + "self_attn.k_proj.weight"] = hf_permute(g[b + "attn_k.weight"], D.nkv, D.nkv * D.hd, D.H)
        hf[h + "self_attn.v_proj.weight"] = g[b + "attn_v.weight"]
        hf[h + "self_attn.o_proj.weight"] = g[b + "attn_output.weight"]
        hf[h + "input_layernorm.weight"] = g[b + "attn_norm.weight"]
        hf[h + "post_attention_layernorm.weight"] = g[b + "ffn_norm.weight"]
        hf[h + "block_sparse_moe.gate.weight"] = g[b + "ffn_gate_inp.weight"]
        for wid, s in GGUF_WID.items():
            for e in range(D.E):
                hf[h + f"block_sparse_moe.experts.{e}.{wid}.weight"] = g[b + s + ".weight"][e].clone()
        used |= {b + s for s in ("attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
                                 "attn_norm.weight", "ffn_norm.weight", "ffn_gate_inp.weight")}
        used |= {b + s + ".weight" for s in GGUF_WID.values()}
    used = {"token_embd.weight", "output_norm.weight", "output.weight"} | {u for u in used if u.startswith("blk.")}
    assert used == set(g), "unmapped gguf tensors"
    return hf


# ---- mlx -------------------------------------------------------------------

MLX_WID = {"w1": "gate_proj", "w2": "down_proj", "w3": "up_proj"}  # mlx-lm Mixtral sanitize()


def mlx_from_hf(hf: dict[str, torch.Tensor], D: Dims) -> dict[str, torch.Tensor]:
    out = {k: np32(v) for k, v in hf.items() if ".block_sparse_moe.experts." not in k}
    for l in range(D.L):
        p = f"model.layers.{l}.block_sparse_moe."
        for n, m in MLX_WID.items():
            out[p + f"switch_mlp.{m}.weight"] = np.stack(
                [np32(hf[p + f"experts.{e}.{n}.weight"]) for e in range(D.E)], axis=0)
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}


def hf_from_mlx(t: dict[str, torch.Tensor], D: Dims) -> dict[str, torch.Tensor]:
    hf = {}
    for k, v in t.items():
        if ".switch_mlp." in k:
            pre, rest = k.split("switch_mlp.")
            m = rest[: -len(".weight")]
            n = {v2: k2 for k2, v2 in MLX_WID.items()}[m]
            for e in range(D.E):
                hf[pre + f"experts.{e}.{n}.weight"] = v[e].clone()
        else:
            hf[k] = v
    return hf


def make_layouts(model, ids: torch.Tensor, ref: dict[str, torch.Tensor]) -> None:
    from transformers import MixtralForCausalLM
    fresh_dir(LAYOUTS)
    tiny = OUT / "tiny-mixtral"
    hf_sd = load_st(tiny / "model.safetensors")   # the classic on-disk tensors: the ground truth
    cfg = json.loads((tiny / "config.json").read_text())
    D = Dims(cfg)
    assert D.hd == 4 and D.nh * D.hd == D.H
    lay: dict[str, dict] = {}

    def reload_logits(d: Path) -> torch.Tensor:
        m = MixtralForCausalLM.from_pretrained(str(d), attn_implementation="eager", torch_dtype=torch.float32).eval()
        with torch.no_grad():
            return m(input_ids=ids).logits

    # hf ---------------------------------------------------------------------
    d = LAYOUTS / "hf"
    save_pretrained(model, d)
    assert (d / "model.safetensors").read_bytes() == (tiny / "model.safetensors").read_bytes()
    assert_same_tensors(load_dir(d), hf_sd, "hf")
    assert torch.equal(reload_logits(d), ref["logits"])

    # hf-sharded -------------------------------------------------------------
    chosen = None
    for kb in range(8, 200):
        tmp = LAYOUTS / "_shard_probe"
        if tmp.exists():
            shutil.rmtree(tmp)
        save_pretrained(model, tmp, max_shard_size=f"{kb}KB")
        n = len(list(tmp.glob("model-*.safetensors")))
        shutil.rmtree(tmp)
        if n == 3:
            chosen = f"{kb}KB"
            break
    assert chosen, "no max_shard_size gives 3 shards"
    d = LAYOUTS / "hf-sharded"
    save_pretrained(model, d, max_shard_size=chosen)
    assert sorted(p.name for p in d.glob("*.safetensors")) == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert_same_tensors(load_dir(d), hf_sd, "hf-sharded")
    assert torch.equal(reload_logits(d), ref["logits"])
    idx = json.loads((d / "model.safetensors.index.json").read_text())
    lay["hf-sharded"] = {"max_shard_size": chosen, "index_metadata": idx["metadata"],
                         "shards": {p.name: p.stat().st_size for p in sorted(d.glob("model-*.safetensors"))}}

    # hf-fused ---------------------------------------------------------------
    d = LAYOUTS / "hf-fused"
    save_pretrained(model, d, save_original_format=False)
    fused = load_dir(d)
    assert any(k.endswith("mlp.experts.gate_up_proj") for k in fused), "save_original_format=False did not fuse"
    sd = model.state_dict()
    assert_same_tensors(fused, {k: v.contiguous() for k, v in sd.items()}, "hf-fused == in-memory state_dict")
    assert_same_tensors(hf_from_fused(fused, D), hf_sd, "hf-fused -> hf")
    assert torch.equal(reload_logits(d), ref["logits"])
    lay["hf-fused"] = {"save_original_format": "exists in transformers 5.23.0 (PreTrainedModel.save_pretrained)"}

    # mistral ----------------------------------------------------------------
    d = fresh_dir(LAYOUTS / "mistral")
    mis = mistral_from_hf(hf_sd, D)
    write_json(d / "params.json", mistral_params(D))
    save_st(mis, d / "consolidated.safetensors", {"format": "pt"})
    back = load_st(d / "consolidated.safetensors")
    assert_same_tensors(back, mis, "mistral file")
    assert_same_tensors(hf_from_mistral(back, D), hf_sd, "mistral -> hf")
    # the permutation is not the identity (the check would be vacuous otherwise)
    assert not torch.equal(back["layers.0.attention.wq.weight"], hf_sd["model.layers.0.self_attn.q_proj.weight"])
    assert not torch.equal(back["layers.0.attention.wk.weight"], hf_sd["model.layers.0.self_attn.k_proj.weight"])

    # gguf -------------------------------------------------------------------
    d = fresh_dir(LAYOUTS / "gguf")
    g = gguf_from_hf(hf_sd, D)
    md = gguf_metadata(D)
    save_st({k: torch.from_numpy(v) for k, v in g.items()}, d / "model.safetensors", md)
    with safetensors.safe_open(str(d / "model.safetensors"), "pt") as f:
        assert f.metadata() == md
    gback = load_st(d / "model.safetensors")
    assert_same_tensors(hf_from_gguf(gback, D), hf_sd, "gguf -> hf")
    for l in range(D.L):  # GGUF q/k rows == Mistral wq/wk rows
        assert torch.equal(gback[f"blk.{l}.attn_q.weight"], back[f"layers.{l}.attention.wq.weight"])
        assert torch.equal(gback[f"blk.{l}.attn_k.weight"], back[f"layers.{l}.attention.wk.weight"])
    lay["gguf"] = {"metadata": md}

    # mlx --------------------------------------------------------------------
    d = fresh_dir(LAYOUTS / "mlx")
    mlx = mlx_from_hf(hf_sd, D)
    save_st(mlx, d / "model.safetensors", {"format": "mlx"})
    shutil.copy(tiny / "config.json", d / "config.json")
    mback = load_st(d / "model.safetensors")
    assert_same_tensors(mback, mlx, "mlx file")
    assert_same_tensors(hf_from_mlx(mback, D), hf_sd, "mlx -> hf")
    for l in range(D.L):
        p = f"model.layers.{l}.block_sparse_moe.switch_mlp."
        assert mback[p + "gate_proj.weight"].shape == (D.E, D.I, D.H)
        assert mback[p + "up_proj.weight"].shape == (D.E, D.I, D.H)
        assert mback[p + "down_proj.weight"].shape == (D.E, D.H, D.I)

    # every layout file holds only float32 tensors
    for p in LAYOUTS.rglob("*.safetensors"):
        assert all(dt == "F32" for _, dt, _ in tensor_table(p)), p
    OBS["layouts"] = lay


# ---------------------------------------------------------------------------
# d) READMEs
# ---------------------------------------------------------------------------

def fmt_table(path: Path, descr: dict[str, str] | None = None) -> str:
    rows = ["| tensor | dtype | shape | meaning |", "| --- | --- | --- | --- |"]
    for n, dt, sh in sorted(tensor_table(path)):
        m = ""
        if descr:
            descr = {KEY_NAMES.get(k, k): v for k, v in descr.items()}
            m = descr.get(n) or next((v for k, v in descr.items() if k.endswith("*") and n.startswith(k[:-1])), "")
        rows.append(f"| `{n}` | {dt} | {sh} | {m} |")
    return "\n".join(rows)


def names_block(path: Path) -> str:
    return "\n".join(f"    {n} {dt} {sh}" for n, dt, sh in tensor_table(path))


def versions() -> str:
    import importlib.metadata as md
    import transformers
    return (f"torch {torch.__version__}, safetensors {safetensors.__version__}, transformers "
            f"{transformers.__version__}, numpy {np.__version__}, gguf {md.version('gguf')}, "
            f"Python {platform.python_version()}")


MIXTRAL_REF_DESCR = {
    "input_ids": f"token ids, `check_layout_logits.make_input_ids(vocab, shape)` = `torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed({INPUT_IDS_SEED}))`",
    "logits": "`model(input_ids).logits` (float32, eager attention, no attention mask, positions 0..seq-1)",
    "router_logits.*": "layer l's router logits from the forward with `output_router_logits=True`: `F.linear(h, gate.weight)` over the flattened tokens [batch*seq, experts], before softmax",
    "aux_loss": "`load_balancing_loss_func(router_logits, num_experts, top_k)` == `outputs.aux_loss` (raw, no coefficient; scalar)",
    "hidden_states.*": "`output_hidden_states=True`: 0 the embeddings, 1..L-1 decoder layer outputs, L the final-norm output",
    "router_z_loss": "ST-MoE router z-loss over all layers: `(logsumexp(cat(router_logits), -1) ** 2).mean()`",
}


def write_readmes() -> None:
    sw = OBS["switch"]
    mha = OBS["mha_fastpath_vs_slow"]
    seed_sections = []
    for name, doc in SEED_DOCS.items():
        d = OUT / name
        cfg = json.loads((d / "config.json").read_text())
        seed_sections.append(f"""### `{name}/`

`{doc['class']}` from `scripts/seed_modules.py`, `torch.manual_seed({doc['seed']})` before construction,
input drawn right after.  `config.json`: `{json.dumps(cfg)}`.

`expected.safetensors`:

{fmt_table(d / 'expected.safetensors', doc['tensors'])}

`model.safetensors` (the module's `state_dict()`):

```
{names_block(d / 'model.safetensors')}
```
""")
    tiny_cfg_note = "identical (bytes) to `fixtures/safetensors/tiny-mixtral/config.json` and `model.safetensors`"
    var_cfg = OBS["variant_config"]
    text = f"""# Reference MoE models

Generated by `scripts/make_model_fixtures.py` ({versions()}).  Deterministic:
two runs give byte-identical files.  Every `expected.safetensors` was
computed in float32 with `module.eval()` under `torch.no_grad()` and saved with
`safetensors.torch.save_file(..., metadata={{"format": "pt"}})`; every
`model.safetensors` of a seed module is `save_file(module.state_dict(), ...,
metadata={{"format": "pt"}})`.

Layouts of `tiny-mixtral`'s weights (HF, sharded, fused, Mistral, GGUF-named,
MLX) are in `layouts/` (see `layouts/README.md`).

## Seed modules

The PyTorch classes are in `scripts/seed_modules.py` (re-indented copies of
the two seed files, plus `SharedExpertSparseMOE`).  `config.json` is
`{{"model_type": T, <constructor arguments>}}`; for the sparse models the
arguments are `MOEConfig`'s.  Notes for re-implementations:

* `MixtureOfExperts` (also inside `MixtralBlock`): softmax over all experts,
  top-k, renormalised gates; outputs are accumulated per expert in index
  order (`out[t] = 0 + g_a*y_a + g_b*y_b` with expert a < b).  `Expert` is
  `w2(relu(w1(x)))` with biases (dropout is off in eval).  `aux_loss` =
  `sum_e (f_e - 1/E)^2` where `f = softmax(router(x)).sum(tokens) / total`.
* `SwitchTransformer`: argmax routing, `capacity = int(capacity_factor *
  seq_len / num_experts)` = {sw['capacity']} here, but tokens are counted over
  the whole batch (all {2 * 8} tokens), so experts received
  {sw['routed_per_expert']} tokens and {sw['dropped']} tokens were dropped
  (all-zero output rows; {sw['kept']} kept).  When an expert is over capacity
  it keeps the `capacity` tokens with the highest router probability
  (`topk`).  The seed does NOT scale kept outputs by the router probability;
  `switch_transformer_scaled/` holds the paper's variant (config
  `scale_by_router_probability: true`), computed by `switch_forward_prob_scaled`
  in the generator (same weights, input and kept/dropped tokens).
  The first input drawn already made an expert exceed capacity (attempt
  {sw['input_attempts']}; with batch 2 this always happens).
* `MixtralBlock`: `nn.MultiheadAttention(d_model, n_heads, batch_first=True)`
  (state `attn.in_proj_weight` [3*d, d] = q, k, v rows, `attn.in_proj_bias`,
  `attn.out_proj.*`; no mask, scale 1/sqrt(d/n_heads)), then
  `ln1(x + attn)`, then `ln2(x + moe)` with `nn.LayerNorm` (eps 1e-5); the MoE
  has d_ff = 4*d_model = 64.  In eval + no_grad torch takes MHA's fused fast
  path (`torch._native_multi_head_attention`); the stored output is that one.
  With the fast path disabled the output is {'identical' if mha['equal'] else 'different'}
  (max abs diff {mha['max_abs_diff']:.3g}).
* `BasicMOE`: dense softmax gate over all experts (`output = softmax(gate(x))
  @ [expert_i(x)]`).
* `SparseMOE`: softmax (dim=1) over the router logits of the flattened tokens,
  top-k, renormalised; accumulated per expert in index order with
  `index_add_`.  `router_logits` are the pre-softmax gate outputs.
  `SharedExpertSparseMOE` (`sparse_moe_shared/`, same `model_type`,
  `shared_experts_number` 2) adds `shared_0(x) + shared_1(x)` (summed in that
  order first) to the sparse output; `router_logits` unchanged.

{chr(10).join(seed_sections)}
## transformers Mixtral

`MixtralForCausalLM(MixtralConfig(..., attn_implementation="eager"))` in
float32, `torch.manual_seed({SEEDS['mixtral']})` right before construction,
saved with `save_pretrained` (default: `model.safetensors` with classic
per-expert names, `config.json`, `generation_config.json`).  Logits of a
reload with `from_pretrained(..., attn_implementation="eager",
torch_dtype=torch.float32)` are asserted identical to the stored ones.

`expected.safetensors` (all three directories):

{fmt_table(OUT / 'tiny-mixtral' / 'expected.safetensors', MIXTRAL_REF_DESCR)}

(`tiny-mixtral-variant` has input_ids [1, 16], logits [1, 16, 48],
router_logits.l [16, 3].)

`aux_loss`: transformers {OBS.get('transformers_version')} returns
`outputs.aux_loss = load_balancing_loss_func(outputs.router_logits,
num_local_experts, num_experts_per_tok, attention_mask)` **without** the
coefficient; `router_aux_loss_coef` ({OBS['aux_loss_coef']}) is only applied
inside `outputs.loss = CE + coef * aux_loss`, and only when `labels` are
given (asserted).  The function concatenates all layers' rows (N = layers *
tokens) and returns `E * sum_e (c_e / N) * (P_e / N)` where `c_e` counts how
often expert e is among a row's top-k (histc, so `sum_e c_e / N = top_k`)
and `P_e` sums the softmax probabilities of e over the rows (no mask here).
The stored value is that raw value (asserted equal to `outputs.aux_loss`
and to a float64 re-implementation within 1e-6 relative).
Values: tiny-mixtral {OBS['aux_loss[tiny-mixtral]']:.9g}, variant
{OBS['aux_loss[tiny-mixtral-variant]']:.9g}, bf16 {OBS['aux_loss[tiny-mixtral-bf16]']:.9g}.

### `tiny-mixtral/`

Config as `scripts/make_fixtures.py` builds it (vocab 64, hidden 16,
intermediate 32, 2 layers, 4 heads, 2 kv heads, head_dim null -> 4, 4 experts,
top-2, rope_theta 1e6, max_position_embeddings 64, rms_norm_eps 1e-5, untied
lm_head); {tiny_cfg_note}.

### `tiny-mixtral-variant/`

Every config feature at once: vocab 48, hidden 16, intermediate 32, 2 layers,
4 heads with explicit `head_dim` 8 (q_proj [32, 16], o_proj [16, 32]:
heads*head_dim != hidden), `num_key_value_heads` 1, `sliding_window` 4,
`tie_word_embeddings` true (no `lm_head.weight` in the file; the output
projection is `model.embed_tokens.weight`), rms_norm_eps 1e-6, rope_theta
10000, 3 experts, top-2.  The sliding window is transformers'
`kv_idx > q_idx - sliding_window` on top of the causal mask: query i sees keys
i-3..i (4 tokens including itself).  With input length 16 it matters:
disabling it changes the logits by up to {OBS['variant_sliding_window_effect']:.3g} (asserted > 1e-4).
`config.json`:

```
{json.dumps({k: var_cfg[k] for k in ('head_dim', 'num_key_value_heads', 'sliding_window', 'tie_word_embeddings', 'rms_norm_eps', 'rope_parameters', 'num_local_experts', 'num_experts_per_tok', 'vocab_size')}, indent=1)}
```

### `tiny-mixtral-bf16/`

`tiny-mixtral`'s model `.to(torch.bfloat16)` then `save_pretrained`
(`config.json` `"dtype": "bfloat16"`, every tensor BF16 = the float32 weights
rounded by torch's `.to(bfloat16)`, asserted).  The reference was computed by
running the model in **float32 on the bf16-rounded weights**: every parameter
replaced by `p.to(torch.bfloat16).to(torch.float32)`, then forward, i.e.
exactly what `from_pretrained(..., torch_dtype=torch.float32)` of this
directory computes (asserted identical); same `input_ids` as `tiny-mixtral`.
Caveat: the literal `model.to(torch.bfloat16).to(torch.float32)` also rounds
the rotary embedding's non-persistent `inv_freq` buffer (not stored in any
checkpoint) to bf16 (max abs change {OBS['bf16_literal_recipe']['inv_freq_max_abs_diff']:.3g}), which
changes the logits by up to {OBS['bf16_literal_recipe']['logits_max_abs_diff']:.3g}; the stored
logits keep inv_freq in float32 (computed from rope_theta as usual).  Max abs logit
difference to `tiny-mixtral`: {OBS['bf16_vs_f32_logits_max_abs_diff']:.3g}.

## Regenerating

```sh
/work/venv/bin/python scripts/make_model_fixtures.py
```
"""
    (OUT / "README.md").write_text(text)
    write_layouts_readme()


def write_layouts_readme() -> None:
    lay = OBS["layouts"]
    sh = lay["hf-sharded"]
    shards = ", ".join(f"`{k}` ({v} B)" for k, v in sh["shards"].items())
    md = lay["gguf"]["metadata"]
    md_lines = "\n".join(f"    {k} = {v!r}" for k, v in sorted(md.items()))

    def blk(rel: str) -> str:
        return names_block(LAYOUTS / rel)

    text = f"""# Layouts of one tiny Mixtral

All directories hold the SAME weights: `../tiny-mixtral/model.safetensors`
(`MixtralForCausalLM`, vocab 64, hidden H=16, intermediate I=32, L=2 layers,
4 heads, 2 kv heads, head_dim 4, E=4 experts, top-2, rope_theta 1e6, rms eps
1e-5, float32).  Generated by `scripts/make_model_fixtures.py` ({versions()}).
Every file was read back and mapped back to the HF tensors (names, dtype,
shape, bytes: `torch.equal`) by an inverse written separately from the forward
mapping; the generator fails on any mismatch.  The HF directories were also
reloaded with `from_pretrained` and give exactly `../tiny-mixtral`'s reference
logits.  Notation below: `hf[...]` = the classic HF tensor, `n_heads`=4,
`n_kv`=2, `hd`=4, `dim`=16.

| directory | files | how |
| --- | --- | --- |
| `hf/` | `model.safetensors`, `config.json`, `generation_config.json` | `save_pretrained` default (byte-identical to `../tiny-mixtral/model.safetensors`) |
| `hf-sharded/` | 3 shards + `model.safetensors.index.json` + configs | `save_pretrained(max_shard_size="{sh['max_shard_size']}")` (smallest size giving 3 shards) |
| `hf-fused/` | `model.safetensors` + configs | `save_pretrained(save_original_format=False)` |
| `mistral/` | `consolidated.safetensors`, `params.json` | built from `hf[...]` (below) |
| `gguf/` | `model.safetensors` (no config.json) | built from `hf[...]` with gguf-py's name map (below) |
| `mlx/` | `model.safetensors`, `config.json` | built from `hf[...]` as mlx-lm's `sanitize` (below) |

## `hf/`

transformers 5.23.0 keeps the experts fused in memory but `save_pretrained`
writes the classic per-expert Hub names by default:

```
{blk('hf/model.safetensors')}
```

## `hf-sharded/`

Same tensors, split into {shards}.  Index metadata `{json.dumps(sh['index_metadata'])}`.

## `hf-fused/`

`save_original_format` exists in transformers 5.23.0
(`PreTrainedModel.save_pretrained(..., save_original_format=True)` by
default); with `False` the in-memory (fused) names are written (asserted equal
to `model.state_dict()`), and `from_pretrained` reads them back:

* `model.layers.N.mlp.gate.weight` [E, H] = `hf[model.layers.N.block_sparse_moe.gate.weight]`
* `model.layers.N.mlp.experts.gate_up_proj` [E, 2I, H]: `[e, 0:I]` = `hf[...experts.e.w1.weight]`, `[e, I:2I]` = `hf[...experts.e.w3.weight]`
* `model.layers.N.mlp.experts.down_proj` [E, H, I]: `[e]` = `hf[...experts.e.w2.weight]`

Note: no `.weight` suffix on the two expert tensors.

```
{blk('hf-fused/model.safetensors')}
```

## `mistral/`

Mistral's native (mistral-inference `consolidated.safetensors`) names:
`tok_embeddings` = embed_tokens, `layers.N.attention.{{wq,wk,wv,wo}}` =
q/k/v/o_proj, `attention_norm` = input_layernorm, `ffn_norm` =
post_attention_layernorm, `feed_forward.gate` = block_sparse_moe.gate,
`feed_forward.experts.E.{{w1,w2,w3}}` = the same HF per-expert tensors (no
transpose), `norm` = model.norm, `output` = lm_head.  `params.json`:
`{json.dumps(json.loads((LAYOUTS / 'mistral' / 'params.json').read_text()))}`.
File metadata `{{"format": "pt"}}`.

wq/wk rows are in Mistral's interleaved rotary order.  transformers'
`src/transformers/models/mixtral/convert_mixtral_weights_to_hf.py` (not
shipped in the 5.23.0 wheel; quoted from huggingface/transformers @ ae19f01)
converts Mistral -> HF with

```python
# permute for sliced rotary
def permute(w, n_heads=n_heads, dim1=dim, dim2=dim):
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)
```

(called with `(num_key_value_heads, key_value_dim, dim)` for wk).  The files
here use its exact inverse:

```python
wq = hf_q.view(n_heads, 2, hd // 2, dim).transpose(1, 2).reshape(n_heads * hd, dim)
wk = hf_k.view(n_kv,    2, hd // 2, dim).transpose(1, 2).reshape(n_kv * hd, dim)
```

i.e. within each head, HF row `j` (first half: `j < hd/2`, second half: `j =
hd/2 + i`) goes to Mistral row `2j` / `2i + 1`.  Verified: `permute(wq) ==
hf_q` and `permute(wk, n_kv, n_kv*hd, dim) == hf_k` for every layer (and wq
differs from hf_q).  Note: that conversion script reads the original 8x7B
release (`consolidated.NN.pt`, experts concatenated as
`layers.N.block_sparse_moe.w1` etc., w2 transposed); the per-expert
`feed_forward.experts.E.*` names here are mistral-inference's MoE module
names (as in the later `consolidated.safetensors` releases).

```
{blk('mistral/consolidated.safetensors')}
```

## `gguf/`

Tensor names as llama.cpp's `convert_hf_to_gguf.py` writes them for
`MixtralForCausalLM` (registered to `LlamaModel`, arch `llama`), obtained from
gguf-py's map (`gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2).get_name(...)`;
the stacked expert tensors via the name the converter gives them,
`layers.N.feed_forward.experts.{{w1,w2,w3}}.weight`), then checked against the
expected list.  Shapes are numpy order (GGUF's own `ne` would be reversed):

* `blk.N.ffn_gate_exps.weight` [E, I, H] = `stack(hf[...experts.e.w1.weight] for e)`
* `blk.N.ffn_up_exps.weight` [E, I, H] = `stack(... w3 ...)`
* `blk.N.ffn_down_exps.weight` [E, H, I] = `stack(... w2 ...)`
* `blk.N.ffn_gate_inp.weight` [E, H] = router; `token_embd`, `output_norm`, `output` = embed_tokens, model.norm, lm_head
* `blk.N.attn_q.weight` = `LlamaModel.permute(hf_q, n_head, n_head)`, `blk.N.attn_k.weight` = `LlamaModel.permute(hf_k, n_head, n_head_kv)`, quoted from convert_hf_to_gguf.py (ggml-org/llama.cpp @ 0024aa7):

```python
@staticmethod
def permute(weights: Tensor, n_head: int, n_head_kv: int | None):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))
```

This is the same formula as the Mistral inverse above, so `attn_q`/`attn_k`
are byte-identical to `mistral/`'s `wq`/`wk` (asserted); transformers'
`permute` maps them back to HF (asserted).  The file was written with
`safetensors.torch.save_file`; its `__metadata__` holds the GGUF key/values
as strings (Python `str()`: ints as `"16"`, floats as `"1000000.0"`,
`"1e-05"`) plus `format`.  The safetensors library writes `__metadata__` keys
in random (HashMap) order, so the generator re-serialises the header with
the keys sorted (same length, same tensor entries, otherwise the library's
bytes):

```
{md_lines}
```

```
{blk('gguf/model.safetensors')}
```

## `mlx/`

mlx-lm's Mixtral layout: its `Model.sanitize` stacks the per-expert tensors,
`(w1, w2, w3) -> (gate_proj, down_proj, up_proj)`:
`model.layers.N.block_sparse_moe.switch_mlp.gate_proj.weight` [E, I, H] =
`stack(w1)`, `up_proj` [E, I, H] = `stack(w3)`, `down_proj` [E, H, I] =
`stack(w2)`; the router stays `model.layers.N.block_sparse_moe.gate.weight`;
all other names as HF.  `config.json` is the HF one.  Metadata `{{"format":
"mlx"}}` (what `mx.save_safetensors` gets from mlx-lm).  Built with
numpy/torch: mlx itself was not run (mlx-lm would also write a
`model.safetensors.index.json`, omitted here).

```
{blk('mlx/model.safetensors')}
```

## Comparing logits

`scripts/check_layout_logits.py ORIGINAL CONVERTED` loads two transformers
checkpoints (classic, sharded or fused names) and checks `torch.equal` on the
logits for the same seeded input_ids, e.g.
`scripts/check_layout_logits.py fixtures/models/layouts/hf fixtures/models/layouts/hf-sharded`.
"""
    (LAYOUTS / "README.md").write_text(text)


# ---------------------------------------------------------------------------

def main() -> int:
    import transformers
    os.chdir(ROOT)
    OBS["transformers_version"] = transformers.__version__
    log(f"writing model fixtures under {OUT}")
    fresh_dir(OUT)
    make_mixture_of_experts()
    make_switch_transformer()
    make_mixtral_block()
    make_basic_moe()
    make_sparse("sparse_moe", 0)
    make_sparse("sparse_moe_shared", 2)
    log("seed modules done")
    mx = make_mixtrals()
    log("mixtral done")
    make_layouts(mx["model"], mx["ids"], mx["ref"])
    for d in sorted(p for p in LAYOUTS.iterdir() if p.is_dir()):
        shutil.copyfile(OUT / "tiny-mixtral" / EXPECTED, d / EXPECTED)
    log("layouts done")
    write_readmes()
    for p in OUT.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    print(json.dumps({k: v for k, v in OBS.items() if k not in ("variant_config", "layouts")}, indent=1, default=str))
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    log(f"total size of fixtures/models: {total} bytes")
    assert total < MAX_TOTAL_BYTES, "fixtures/models too large"
    return 0


if __name__ == "__main__":
    sys.exit(main())
