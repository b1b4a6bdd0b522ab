"""Unit tests: the rehearsal tokenizer, deterministic KV bytes, page bookkeeping."""

from __future__ import annotations

import asyncio

import pytest
from transformers import PreTrainedTokenizerFast

from pd_rehearsal.kv import PagePool, PoolExhausted, contiguous_runs, kv_bytes, pages_needed
from pd_rehearsal.model import EOS_ID, build_tokenizer, load_model, write_model_dir


def test_tokenizer_round_trips_generated_words() -> None:
    tok = build_tokenizer()
    text = "bada kefo. lumi, zoru 7 + 3 = 9"
    ids = tok.encode(text, add_special_tokens=False).ids
    assert 0 not in ids  # no [UNK]: every piece is in the vocabulary
    assert tok.decode(ids) == text


def test_unknown_words_count_as_one_token_each_and_numbers_per_digit() -> None:
    tok = build_tokenizer()
    assert tok.encode("Natalia sold clips", add_special_tokens=False).ids == [0, 0, 0]
    assert tok.decode(tok.encode("72", add_special_tokens=False).ids) == "7 2"


def test_model_dir_loads_in_transformers_offline(tmp_path) -> None:
    path = write_model_dir(tmp_path / "m", "m", kv_bytes_per_token=256)
    hf = PreTrainedTokenizerFast.from_pretrained(str(path))
    model = load_model(str(path), None, 0)
    text = "soko lane. tiva"
    assert hf.encode(text, add_special_tokens=False) == model.encode(text)
    assert model.kv_bytes_per_token == 256
    assert hf.eos_token_id == EOS_ID


def test_model_dir_is_idempotent(tmp_path) -> None:
    path = write_model_dir(tmp_path / "m")
    before = {p.name: p.stat().st_mtime_ns for p in path.iterdir()}
    write_model_dir(tmp_path / "m")
    assert {p.name: p.stat().st_mtime_ns for p in path.iterdir()} == before


def test_flag_overrides_model_kv_figure_and_rejects_nonsense(tmp_path) -> None:
    path = write_model_dir(tmp_path / "m", kv_bytes_per_token=256)
    assert load_model(str(path), None, 4096).kv_bytes_per_token == 4096
    with pytest.raises(ValueError, match="must be > 0"):
        load_model(str(write_model_dir(tmp_path / "z", kv_bytes_per_token=-1)), None, 0)


def test_non_local_model_path_uses_builtin_tokenizer() -> None:
    model = load_model("meta-llama/Llama-3.1-8B-Instruct", "llama", 0)
    assert model.served_name == "llama"
    assert model.decode(model.encode("bada kefo")) == "bada kefo"


def test_kv_bytes_are_deterministic_and_prompt_specific() -> None:
    a = kv_bytes([5, 6, 7], 64, seed=1)
    assert len(a) == 3 * 64
    assert a == kv_bytes([5, 6, 7], 64, seed=1)
    assert a != kv_bytes([5, 6, 8], 64, seed=1)  # other token
    assert a != kv_bytes([5, 6, 7], 64, seed=2)  # other model
    assert a[:128] == kv_bytes([5, 6, 9], 64, seed=1)[:128]  # same prefix, same KV prefix


@pytest.mark.parametrize(
    ("tokens", "page_bytes", "bpt", "pages"),
    [(1, 1024, 64, 1), (16, 1024, 64, 1), (17, 1024, 64, 2), (1000, 16384, 1024, 63)],
)
def test_pages_needed(tokens: int, page_bytes: int, bpt: int, pages: int) -> None:
    assert pages_needed(tokens, page_bytes, bpt) == pages


@pytest.mark.parametrize(
    ("indices", "runs"),
    [([], []), ([3], [(3, 1)]), ([0, 1, 2, 5, 6, 9], [(0, 3), (5, 2), (9, 1)])],
)
def test_contiguous_runs(indices: list[int], runs: list[tuple[int, int]]) -> None:
    assert contiguous_runs(indices) == runs


async def test_page_pool_waits_for_memory_instead_of_failing() -> None:
    pool = PagePool(4)
    first = await pool.alloc(3)
    waiter = asyncio.create_task(pool.alloc(2))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # 1 page free, 2 needed: queued like SGLang's prealloc queue
    await pool.free(first)
    assert len(await asyncio.wait_for(waiter, 1)) == 2
    with pytest.raises(PoolExhausted, match="raise --rehearsal-kv-pool-mb"):
        await pool.alloc(5)
