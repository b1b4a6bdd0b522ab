"""An offline prompt source for ``bench_serving --dataset-name random``.

bench_serving's ``random`` dataset samples token ids from ShareGPT conversations and downloads
ShareGPT (~640 MB) unless ``--dataset-path`` names a valid JSON file. This writes a small
ShareGPT-format file (``[{"conversations": [{"from": "human", "value": ...}, {"from": "gpt",
"value": ...}]}, ...]``) from a fixed word list and a seeded generator, so a benchmark needs no
network and the same arguments always give the same bytes.

bench_serving takes one conversation per prompt and stops when the file runs out, so the file
must hold at least as many conversations as the largest ``--num-prompts`` of the sweep (the
``benchmark`` role sizes it from its plan; a short file shows up as failed requests).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = (
    "the of and to in is was for on are with as at by from that this it be have one two three "
    "four five six seven eight nine ten time year people way day man thing woman life child "
    "world school state family student group country problem hand part place case week company "
    "system program question work government number night point home water room mother area "
    "money story fact month lot right study book eye job word business issue side kind head "
    "house service friend father power hour game line end member law car city community name "
    "president team minute idea kid body information back parent face others level office door "
    "health person art war history party result change morning reason research girl guy moment "
    "air teacher force education light river stone cloud paper window garden market train bridge"
).split()


def conversations(count: int, seed: int = 0, min_words: int = 24, max_words: int = 96) -> list:
    """``count`` ShareGPT-style conversations of made-up sentences."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = random.Random(seed)

    def text() -> str:
        n = rng.randint(min_words, max_words)
        return " ".join(rng.choice(WORDS) for _word in range(n)) + "."

    return [
        {
            "id": f"pdbench-{i}",
            "conversations": [{"from": "human", "value": text()}, {"from": "gpt", "value": text()}],
        }
        for i in range(count)
    ]


def write(path: Path, count: int, seed: int = 0) -> bool:
    """Write the file; False when it already holds exactly these bytes (nothing changed)."""
    data = json.dumps(conversations(count, seed), separators=(",", ":")) + "\n"
    if path.is_file() and path.read_text() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(data)
    tmp.replace(path)
    return True
