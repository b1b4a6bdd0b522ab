"""Rehearsal model directories: a config.json and an offline tokenizer, no weights.

A rehearsal "model" is what `--model-path` points at when the rehearsal engine stands in for
SGLang. It is a real Hugging Face-style directory (config.json, tokenizer.json,
tokenizer_config.json) so that SGLang's own bench client (`sglang.bench_serving`, which loads
the tokenizer with transformers) and the engine count tokens identically, fully offline.
It holds no weights and does no inference; `config.json` says so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

SPECIAL_TOKENS = ("[UNK]", "<s>", "</s>")
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
PUNCTUATION = (".", ",", "?", "!", ":", ";", "=", "+", "-", "*", "/", "$", "%", "(", ")")
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
DEFAULT_VOCAB_WORDS = 4900
DEFAULT_KV_BYTES_PER_TOKEN = 1024
CHAT_TEMPLATE = (
    "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<s> assistant : {% endif %}"
)


def vocabulary(words: int = DEFAULT_VOCAB_WORDS) -> list[str]:
    """Return the deterministic vocabulary: special tokens, digits, punctuation, syllable words."""
    syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
    generated = [a + b for a in syllables for b in syllables]
    if words > len(generated):
        raise ValueError(f"at most {len(generated)} generated words, asked for {words}")
    digits = [str(d) for d in range(10)]
    return [*SPECIAL_TOKENS, *digits, *PUNCTUATION, *generated[:words]]


def build_tokenizer(words: int = DEFAULT_VOCAB_WORDS) -> Tokenizer:
    """Build the word-level tokenizer used by rehearsal models (round-trips its own output)."""
    vocab = {tok: i for i, tok in enumerate(vocabulary(words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return tok


def write_model_dir(
    path: Path,
    name: str = "rehearsal-model",
    kv_bytes_per_token: int = DEFAULT_KV_BYTES_PER_TOKEN,
    context_length: int = 32768,
) -> Path:
    """Write a rehearsal model directory at ``path`` (idempotent: same inputs, same bytes)."""
    path.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    config = {
        "architectures": ["RehearsalForCausalLM"],
        "model_type": "rehearsal",
        "rehearsal": True,
        "rehearsal_note": (
            "No weights: served by the inferops.disagg rehearsal engine, not inference."
        ),
        "name_or_path": name,
        "vocab_size": tok.get_vocab_size(),
        "max_position_embeddings": context_length,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "rehearsal_kv_bytes_per_token": kv_bytes_per_token,
    }
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "[UNK]",
        "model_max_length": context_length,
        "clean_up_tokenization_spaces": True,
        "chat_template": CHAT_TEMPLATE,
    }
    _write_if_changed(path / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    _write_if_changed(path / "tokenizer.json", tok.to_str(pretty=True) + "\n")
    _write_if_changed(
        path / "tokenizer_config.json", json.dumps(tok_config, indent=2, sort_keys=True) + "\n"
    )
    return path


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


@dataclass(frozen=True)
class RehearsalModel:
    """What the engine knows about the model it pretends to serve."""

    path: str
    served_name: str
    tokenizer: Tokenizer
    context_length: int
    kv_bytes_per_token: int
    seed: int

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer knows."""
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """Tokenize text (no special tokens added)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        """Detokenize ids, skipping special tokens."""
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def load_model(model_path: str, served_name: str | None, kv_bytes_flag: int) -> RehearsalModel:
    """Load a rehearsal model directory, or build an in-memory one for a non-local path.

    A path that is not a local directory (e.g. a Hugging Face id such as
    ``meta-llama/Llama-3.1-8B-Instruct``) gets the built-in tokenizer and defaults, so the
    engine can rehearse any model name without downloading anything.
    """
    root = Path(model_path)
    config: dict = {}
    if (root / "config.json").is_file():
        config = json.loads((root / "config.json").read_text())
    if (root / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    else:
        tokenizer = build_tokenizer()
    kv_bytes = kv_bytes_flag or int(
        config.get("rehearsal_kv_bytes_per_token", DEFAULT_KV_BYTES_PER_TOKEN)
    )
    if kv_bytes <= 0:
        raise ValueError(f"KV bytes per token must be > 0, got {kv_bytes}")
    return RehearsalModel(
        path=model_path,
        served_name=served_name or model_path,
        tokenizer=tokenizer,
        context_length=int(config.get("max_position_embeddings", 32768)),
        kv_bytes_per_token=kv_bytes,
        seed=int.from_bytes(hashlib.sha256(model_path.encode()).digest()[:4], "little"),
    )


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m pd_rehearsal.model DIR [--name N] [--kv-bytes-per-token B]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pd_rehearsal.model", description=main.__doc__)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--name", default="rehearsal-model")
    ap.add_argument("--kv-bytes-per-token", type=int, default=DEFAULT_KV_BYTES_PER_TOKEN)
    ns = ap.parse_args(argv)
    print(write_model_dir(ns.dir, ns.name, ns.kv_bytes_per_token))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
