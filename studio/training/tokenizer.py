"""The student's tokenizer: a byte-level BPE trained on the recipe's training text (the
``tokenizers`` library), or one the curator brings as a folder or a ``tokenizer.json``.

Byte-level means no text is ever out of vocabulary: any byte sequence round-trips.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

EOS = "<|endoftext|>"
FILE = "tokenizer.json"
MAX_RUN = 64
LONG_RUN = re.compile(r"\S{" + str(MAX_RUN + 1) + ",}")


class TokenizerError(Exception):
    """A tokenizer that cannot be found or used."""


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:  # -> tokenizers.Tokenizer
    """Long runs without a space (minified code, base64) are cut to ``MAX_RUN`` characters for
    training only: BPE training time grows with the square of the longest word (a 100k-character
    run alone took 7.6 s), and merges that long are of no use. Encoding is unaffected."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator((LONG_RUN.sub(_cut, t) for t in texts), trainer)
    return tokenizer


def _cut(match: re.Match[str]) -> str:
    return match.group(0)[:MAX_RUN]


def load_tokenizer(path: Path) -> Any:
    """A ``tokenizer.json``, or a folder holding one."""
    from tokenizers import Tokenizer

    file = path / FILE if path.is_dir() else path
    if not file.is_file():
        raise TokenizerError(f"no tokenizer at {path} (a tokenizer.json or a folder with one)")
    try:
        return Tokenizer.from_file(str(file))
    except Exception as exc:  # the library raises a bare Exception on a malformed file
        raise TokenizerError(f"cannot read the tokenizer {file}: {exc}") from exc


def eos_id(tokenizer: Any) -> int:
    """The end-of-text token between documents; a brought tokenizer may name it otherwise."""
    for name in (EOS, "</s>", "<eos>", "[SEP]"):
        token = tokenizer.token_to_id(name)
        if token is not None:
            return int(token)
    raise TokenizerError(f"the tokenizer has no end-of-text token ({EOS})")
