#!/usr/bin/env python3
"""Write fixtures/tokenizers/: tiny models with real tokenizers, converted by llama.cpp's own
converter, for the tests of moeckpt's tokenizer.json <-> tokenizer.ggml.* mapping.

Each case is a tiny random model saved by transformers with a small tokenizer trained by the
`tokenizers` library and saved by transformers (tokenizer.json, tokenizer_config.json,
chat_template.jinja):

- `llama-bpe/`: a Mixtral with a SentencePiece-style BPE (byte fallback, `▁` for spaces, no
  tokenizer.model), which llama.cpp's converter maps with `LlamaHfVocab` (`tokenizer.ggml.model`
  `llama`, scores, byte tokens);
- `byte-level/`: a Qwen3-MoE with a byte-level BPE using Qwen2's pre-tokenizer regex, added
  control tokens and a user-defined `<think>`, and a vocabulary smaller than the model's (the
  converter pads it with `[PADn]`), mapped with `_set_vocab_gpt2` (`gpt2`, merges);
- `sentencepiece/`: a Mixtral with a real SentencePiece model (`tokenizer.model`, BPE with byte
  fallback, trained by `sentencepiece`) beside the tokenizer.json transformers converts it to,
  which the converter reads first (`_set_vocab_sentencepiece`: the pieces' own scores).

Beside each model:
- `converter.gguf`: the model as llama.cpp's `convert_hf_to_gguf.py --outtype f32` writes it. The
  converter names a byte-level pre-tokenizer by hashing the ids of a test string, which only
  published tokenizers match; for this tiny one the script sets the name its regex has in
  llama.cpp (`qwen2`), as `convert_hf_to_gguf_update.py` would after registering it.
- `from-gguf/`: the tokenizer transformers rebuilds from `converter.gguf`
  (`AutoTokenizer.from_pretrained(..., gguf_file=...)`, then `save_pretrained`): what a GGUF -> HF
  conversion should give back.
- `encodings.json`: token ids of a few strings by the original tokenizer and by the rebuilt one.

llama.cpp's converter comes from the llama-cpp-python 0.3.36 source distribution (its vendored
llama.cpp, with its own gguf-py):

    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 && tar xzf llama_cpp_python-0.3.36.tar.gz
    LLAMA_CPP=llama_cpp_python-0.3.36/vendor/llama.cpp /work/venv-fix/bin/python scripts/make_tokenizer_fixtures.py

Deterministic; packages pinned in requirements-fixtures.txt (tokenizers==0.23.3, sentencepiece==0.2.3).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast, MixtralConfig, MixtralForCausalLM, Qwen3MoeConfig
from transformers import Qwen3MoeForCausalLM

from fixture_util import fresh_dir, log

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "tokenizers"
LLAMA_CPP = Path(os.environ.get("LLAMA_CPP", "/tmp/lcp/llama_cpp_python-0.3.36/vendor/llama.cpp"))

CORPUS = [
    "The quick brown fox jumps over the lazy dog. Mixture-of-experts models route each token.",
    "Experts are chosen by a router; the top two experts of eight compute the output.",
    "Numbers 3 33 333 3333 and dates 2026-12-02 appear too, as does punctuation!? ...",
    "Ünïcödé wörds, 日本語のテキスト, and emoji 🦙 go through byte fallback or byte level.",
    "  Leading spaces,\ttabs\nand new lines\n\nmatter to a tokenizer.",
] * 20
SAMPLES = [
    "Hello world",
    "The experts route tokens, 33 of them.",
    "  two spaces and a 🦙",
    "<think>reasoning</think> done",
    "日本語 ünïcödé",
]
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CHAT_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def llama_bpe_tokenizer() -> tuple[PreTrainedTokenizerFast, int]:
    """A Mistral-style tokenizer.json: `<unk> <s> </s>`, the 256 byte tokens, then merges."""
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trained.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, show_progress=False))
    learned = json.loads(trained.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for token in sorted(learned["vocab"], key=learned["vocab"].get):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.add_special_tokens([AddedToken("<|im_start|>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("<think>", special=False, normalized=False)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        additional_special_tokens=["<|im_start|>"], add_bos_token=True, add_eos_token=False)
    fast.chat_template = CHAT_TEMPLATE
    return fast, tok.get_vocab_size(with_added_tokens=True)


def byte_level_tokenizer() -> tuple[PreTrainedTokenizerFast, int]:
    """A Qwen2-style tokenizer.json: byte-level BPE behind Qwen2's split regex."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=340, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")])
    tok.add_tokens([AddedToken("<think>", special=False, normalized=False),
                    AddedToken("</think>", special=False, normalized=False)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"], add_bos_token=False)
    fast.chat_template = CHAT_TEMPLATE
    return fast, 384


def sentencepiece_tokenizer() -> tuple[PreTrainedTokenizerFast, int, dict]:
    """A SentencePiece BPE model, and the tokenizer transformers converts it to."""
    import io
    import sentencepiece as spm
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=400, model_type="bpe", byte_fallback=True,
        user_defined_symbols=["<think>"], character_coverage=1.0, minloglevel=2)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "tokenizer.model").write_bytes(model.getvalue())
        Path(tmp, "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "LlamaTokenizer", "legacy": False, "bos_token": "<s>", "eos_token": "</s>",
            "unk_token": "<unk>", "add_bos_token": True}))
        tokenizer = AutoTokenizer.from_pretrained(tmp)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer, len(tokenizer), {"tokenizer.model": model.getvalue()}


def mixtral(vocab: int):
    config = MixtralConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=128,
        bos_token_id=1, eos_token_id=2)
    return MixtralForCausalLM(config)


def qwen3_moe(vocab: int):
    config = Qwen3MoeConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=48, moe_intermediate_size=24, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, num_experts=4, num_experts_per_tok=2,
        max_position_embeddings=128, norm_topk_prob=True, bos_token_id=None, eos_token_id=None)
    return Qwen3MoeForCausalLM(config)


CONVERTER = """
import sys
sys.path.insert(0, {root!r}); sys.path.insert(1, {root!r} + '/gguf-py')
import conversion.base
pre = {pre!r}
if pre is not None:
    conversion.base.TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
sys.argv = ['convert_hf_to_gguf.py', {model!r}, '--outfile', {out!r}, '--outtype', 'f32']
import convert_hf_to_gguf
convert_hf_to_gguf.main()
"""


def make(name: str, build_tokenizer, build_model, pre) -> None:
    out = fresh_dir(OUT / name)
    tokenizer, vocab, *extra = build_tokenizer()
    torch.manual_seed(0)
    model = build_model(vocab)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    for name, data in (extra[0] if extra else {}).items():
        (out / name).write_bytes(data)
    script = CONVERTER.format(root=str(LLAMA_CPP), pre=pre, model=str(out), out=str(out / "converter.gguf"))
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(os.environ, NO_LOCAL_GGUF=""))
    (out / "generation_config.json").unlink(missing_ok=True)

    with tempfile.TemporaryDirectory() as alone, tempfile.TemporaryDirectory() as tmp:
        # Alone in its directory, so that transformers reads the GGUF and not the tokenizer.json beside it.
        shutil.copy(out / "converter.gguf", alone)
        rebuilt = AutoTokenizer.from_pretrained(alone, gguf_file="converter.gguf")
        rebuilt.save_pretrained(tmp)
        fresh_dir(out / "from-gguf")
        for file in ("tokenizer.json", "tokenizer_config.json"):
            (out / "from-gguf" / file).write_text(Path(tmp, file).read_text())
    original = AutoTokenizer.from_pretrained(out)
    encodings = {
        "samples": SAMPLES,
        "original": [original.encode(s) for s in SAMPLES],
        "from_gguf": [rebuilt.encode(s) for s in SAMPLES],
    }
    (out / "encodings.json").write_text(json.dumps(encodings, indent=1, ensure_ascii=False) + "\n")
    log(f"{name}: {sorted(p.name for p in out.iterdir())}")


def main() -> None:
    assert (LLAMA_CPP / "convert_hf_to_gguf.py").is_file(), f"set LLAMA_CPP (not found: {LLAMA_CPP})"
    make("llama-bpe", llama_bpe_tokenizer, mixtral, None)
    make("byte-level", byte_level_tokenizer, qwen3_moe, "qwen2")
    make("sentencepiece", sentencepiece_tokenizer, mixtral, None)


if __name__ == "__main__":
    main()
