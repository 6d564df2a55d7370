"""An offline word-level tokenizer for the tiny language models of Stage 4.

The papers' LLMs use LLaMA's 32000-piece SentencePiece vocabulary, which would have to be
downloaded.  The tiny models trained here only need the words of videozoo's own tasks and of
the conversation templates, so :func:`build_word_tokenizer` makes a word-level tokenizer with
the Hugging Face ``tokenizers`` library (a ``WordLevel`` model, lower-casing, split on
whitespace and punctuation) and wraps it in ``transformers.PreTrainedTokenizerFast``, so it
has the usual ``__call__`` / ``decode`` / ``pad`` interface.  Words outside the vocabulary
become ``<unk>``.  The vocabulary is a deterministic function of the texts given (sorted), so
a model rebuilt from its config gets the same token ids and can load its saved weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["build_word_tokenizer", "BASE_SPECIAL_TOKENS", "CHAT_WORDS"]

BASE_SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")
"""Padding, unknown word, begin and end of sequence: ids 0-3 in this order."""

CHAT_WORDS = (
    "a an the this that these those it its is are was were be do does did what which who whom whose where when "
    "why how many much some any all each every no not yes and or but if then than so to of in on at by for from "
    "with about into over under up down left right top bottom middle first last before after during while "
    "video clip frame frames scene object objects thing shape shapes colour color moves move moving motion "
    "happens happen see seen shown show appear appears describe tell me you i we they he she one two three four "
    "five six seven eight nine ten zero number count small large big fast slow start end begin finish way "
    "direction towards away please can could would will there here"
)
"""A few hundred common words, so that free-form chat questions are not all ``<unk>``."""


def build_word_tokenizer(texts: Iterable[str], special_tokens: Iterable[str] = ()) -> "PreTrainedTokenizerFast":
    """Word-level tokenizer over the words of ``texts``.

    Args:
        texts: Text whose words (after lower-casing and splitting on whitespace and runs of
            punctuation, ``tokenizers.pre_tokenizers.Whitespace``) make the vocabulary.
        special_tokens: Extra tokens kept whole wherever they appear (template markers such
            as ``"<video>"``, ``"###"``); they follow :data:`BASE_SPECIAL_TOKENS` in id order.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``pad_token="<pad>"`` (id 0), ``unk_token``,
        ``bos_token="<s>"``, ``eos_token="</s>"``; ids: special tokens first, then the words
        sorted.  ``decode`` joins tokens with spaces.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys([*BASE_SPECIAL_TOKENS, *special_tokens]))
    pre = pre_tokenizers.Whitespace()
    words: set[str] = set()
    for text in texts:
        for s in specials:  # special tokens are matched before splitting; keep their pieces out
            text = text.replace(s, " ")
        words.update(w.lower() for w, _ in pre.pre_tokenize_str(text))
    vocab = {s: i for i, s in enumerate(specials)}
    for w in sorted(words):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", extra_special_tokens=specials[len(BASE_SPECIAL_TOKENS):])
