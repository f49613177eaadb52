"""Synthetic worlds the package builds offline (TOFU-style authors, MUSE-style news), and the
word-level tokenizer plumbing they share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # transformers is imported lazily: generating a world needs no ML stack
    from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")  # ids 0..3, then the vocabulary


def word_level_tokenizer(texts: Iterable[str], pre_tokenizer, *, decoder, normalizer=None,
                         model_max_length: int) -> "PreTrainedTokenizerFast":
    """A word-level tokenizer whose vocabulary is every piece ``pre_tokenizer`` cuts from
    ``texts`` (sorted, after the special tokens), so no world text needs ``<unk>``.
    ``encode`` adds no special tokens: callers add ``<bos>``/``<eos>`` themselves."""
    from tokenizers import AddedToken, Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    pieces: set[str] = set()
    for text in texts:
        pieces.update(p for p, _ in pre_tokenizer.pre_tokenize_str(text))
    pieces.difference_update(SPECIAL_TOKENS)
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *sorted(pieces)])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizer
    if normalizer is not None:
        backend.normalizer = normalizer
    backend.decoder = decoder
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>",
                                   eos_token="<eos>", clean_up_tokenization_spaces=False,
                                   model_max_length=model_max_length)


def build_world_model(out, train, rows, seed: int, tokenizer, *, description: str) -> None:
    """Train one of a world's models (``train(rows, seed)``, a synthetic world's recipe) inside
    :func:`~unlearnbench.reproducible.reproducible_build` and save it in hub layout under
    ``out``, with its tokenizer and its weights' fingerprint."""
    from unlearnbench.cache import building
    from unlearnbench.reproducible import reproducible_build, write_fingerprint

    with reproducible_build():
        model = train(rows, seed, description=description)
    with building(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_fingerprint(tmp)
