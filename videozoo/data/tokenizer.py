"""CLIP's byte-level BPE tokenizer, written here, reading the merges that open_clip ships.

Paper: Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021, arXiv 2103.00020, Sec. 2.4: the text is a "lower-cased byte pair
encoding (BPE) representation ... with a 49,152 vocab size", bracketed with start- and
end-of-text tokens, at most 76 tokens plus the end token (a context of 77 positions).

How a caption becomes ids (the scheme of Sennrich et al., arXiv 1508.07909, applied to
bytes as in GPT-2):

1. Clean: repair mojibake (``ftfy.fix_text``), unescape HTML entities twice, collapse runs of
   white space, lower-case.
2. Split into pre-tokens with one regular expression: the special-token strings, English
   contractions (``'s``, ``'t``, ...), runs of letters, single digits, runs of other
   non-space characters.
3. Each pre-token's UTF-8 bytes are written as printable characters (a fixed one-to-one
   table, :func:`byte_alphabet`); the last character is marked as the end of a word
   (``</w>``).
4. Merge adjacent symbols pair by pair, always the pair that came earliest in the merge
   list, until no listed pair is left; every resulting symbol is one id.
5. ``<start_of_text>`` (id 49406) + ids + ``<end_of_text>`` (id 49407), zero-padded to the
   context length. The end token has the largest id, which is how CLIP finds it
   (``argmax`` over the ids, :meth:`videozoo.models.clip.TextTransformer.forward`).

The merge list is the file ``bpe_simple_vocab_16e6.txt.gz`` inside the installed
``open_clip`` package (found with :mod:`importlib.resources`; nothing is downloaded): its
first 48,894 merges give, with the 256 byte symbols, their 256 end-of-word forms and the two
special tokens, the 49,408 ids of CLIP's token embedding.  The ids equal
``open_clip.tokenize``'s for every caption that fits the context (tested on a varied set).
Unlike ``open_clip.tokenize``, a caption too long for the context is an error naming the
caption and the limit, unless ``truncate=True`` asks for open_clip's behaviour (keep the
first ``context_length - 1`` tokens and end with ``<end_of_text>``).  As in open_clip, the
literal strings ``<start_of_text>`` / ``<end_of_text>`` inside a caption are read as the
special tokens.
"""

from __future__ import annotations

import gzip
import html
import importlib.resources
import os
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch

__all__ = ["BPETokenizer", "byte_alphabet", "default_merges_path", "get_tokenizer", "tokenize",
           "CONTEXT_LENGTH", "SOT_TOKEN", "EOT_TOKEN"]

CONTEXT_LENGTH = 77
"""CLIP's text context: 76 tokens + the end-of-text token (paper Sec. 2.4), with start token."""
SOT_TOKEN = "<start_of_text>"
EOT_TOKEN = "<end_of_text>"
_NUM_MERGES = 49152 - 256 - 2   # the paper's 49,152-entry vocabulary less bytes and specials


def default_merges_path():
    """The BPE merge list shipped inside the installed ``open_clip`` package.

    Returns:
        An :mod:`importlib.resources` traversable of ``bpe_simple_vocab_16e6.txt.gz``.

    Raises:
        ModuleNotFoundError: ``open_clip`` (PyPI ``open_clip_torch``) is not installed.
        FileNotFoundError: the installed package does not contain the file.
    """
    path = importlib.resources.files("open_clip") / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise FileNotFoundError(f"open_clip does not ship {path}; reinstall open_clip_torch")
    return path


@lru_cache(maxsize=1)
def byte_alphabet() -> dict[int, str]:
    """One printable character per byte value, so that BPE works on text without spaces or
    control characters.

    Bytes that are printable Latin-1 characters (``!``-``~``, ``¡``-``¬``, ``®``-``ÿ``) stand
    for themselves; the other 68 byte values are given the characters ``chr(256)``,
    ``chr(257)``, ... in increasing byte order.

    Returns:
        ``{byte value (0-255): character}``, a bijection, in vocabulary order: the printable
        bytes first, then the others (ids 0-255 of the vocabulary follow this order).
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = (b for b in range(256) if b not in table)
    table.update({b: chr(256 + i) for i, b in enumerate(extra)})
    return table


def _clean(text: str) -> str:
    """ftfy repair, HTML unescape (twice), white space collapsed, lower case."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).lower()


class BPETokenizer:
    """CLIP's byte-level BPE tokenizer (arXiv 2103.00020, Sec. 2.4; see the module docstring).

    Args:
        merges_path: A gzip file with one merge (two symbols separated by a space) per line
            after a header line; by default the one ``open_clip`` ships
            (:func:`default_merges_path`).
        context_length: Default context ``L`` of :meth:`__call__` (77 in CLIP).

    Attributes:
        vocab_size: 49,408 for the default merges.
        sot_id, eot_id: Ids of ``<start_of_text>`` and ``<end_of_text>`` (49406, 49407).

    Raises:
        ValueError: if ``context_length < 2``.
    """

    def __init__(self, merges_path: str | os.PathLike | None = None, context_length: int = CONTEXT_LENGTH) -> None:
        import regex

        if context_length < 2:
            raise ValueError(f"context_length must be >= 2 (start and end tokens), got {context_length}")
        source = default_merges_path() if merges_path is None else merges_path
        raw = (Path(source) if isinstance(source, (str, os.PathLike)) else source).read_bytes()
        lines = gzip.decompress(raw).decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1:_NUM_MERGES + 1]]
        byte_chars = list(byte_alphabet().values())
        symbols = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [SOT_TOKEN, EOT_TOKEN]
        self.encoder: dict[str, int] = {s: i for i, s in enumerate(symbols)}
        self.decoder: dict[int, str] = {i: s for s, i in self.encoder.items()}
        self.merge_rank: dict[tuple[str, str], int] = {m: r for r, m in enumerate(merges)}
        self.vocab_size = len(symbols)
        self.sot_id = self.encoder[SOT_TOKEN]
        self.eot_id = self.encoder[EOT_TOKEN]
        self.context_length = context_length
        self._byte_char = byte_alphabet()
        self._char_byte = {c: b for b, c in self._byte_char.items()}
        self._pattern = regex.compile(
            "|".join(regex.escape(t) for t in (SOT_TOKEN, EOT_TOKEN))
            + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE,
        )
        self._word_cache: dict[str, tuple[str, ...]] = {SOT_TOKEN: (SOT_TOKEN,), EOT_TOKEN: (EOT_TOKEN,)}

    # ------------------------------------------------------------------ BPE

    def _bpe(self, word: str) -> tuple[str, ...]:
        """Merge the characters of one byte-encoded pre-token into BPE symbols."""
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:
            ranked = [(self.merge_rank.get(p, _NUM_MERGES), p) for p in zip(symbols, symbols[1:])]
            rank, pair = min(ranked, key=lambda rp: rp[0])
            if rank == _NUM_MERGES:      # no listed pair left
                break
            merged: list[str] = []
            i = 0
            while i < len(symbols):      # merge every occurrence, left to right, without overlaps
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        out = tuple(symbols)
        self._word_cache[word] = out
        return out

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` without start and end tokens.

        Raises:
            TypeError: if ``text`` is not a string.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids: list[int] = []
        for piece in self._pattern.findall(_clean(text)):
            if piece in (SOT_TOKEN, EOT_TOKEN):
                ids.append(self.encoder[piece])
                continue
            word = "".join(self._byte_char[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[s] for s in self._bpe(word))
        return ids

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of ``ids``: a row of :meth:`__call__` (start token, ids, end token, padding) or
        the output of :meth:`encode`. Everything from the first end token on is dropped (the
        padding zeros after it; id 0 before it is the character ``!``), and so are start tokens.

        Raises:
            ValueError: an id outside ``[0, vocab_size)``.
        """
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if self.eot_id in ids:
            ids = ids[:ids.index(self.eot_id)]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids {bad[:5]} are outside the vocabulary [0, {self.vocab_size})")
        text = "".join(self.decoder[i] for i in ids if i != self.sot_id)
        raw = bytearray(self._char_byte[c] for c in text)
        return raw.decode("utf-8", errors="replace").replace("</w>", " ").strip()

    # ------------------------------------------------------------------ batches

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None,
                 truncate: bool = False) -> torch.Tensor:
        """Token ids of a batch of captions.

        Args:
            texts: One caption or a sequence of captions.
            context_length: ``L`` (default: the tokenizer's, 77).
            truncate: Cut a caption longer than ``L`` (start token + ``L - 2`` caption tokens +
                end token) instead of raising, as ``open_clip.tokenize`` always does.

        Returns:
            ``(N, L)`` long tensor: ``sot_id``, the caption's ids, ``eot_id``, zeros.

        Raises:
            ValueError: ``texts`` is empty, ``L < 2``, or (without ``truncate``) a caption
                needs more than ``L`` tokens; every such caption is named, with its length.
            TypeError: a caption is not a string.
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        L = self.context_length if context_length is None else int(context_length)
        if L < 2:
            raise ValueError(f"context_length must be >= 2 (start and end tokens), got {L}")
        if not texts:
            raise ValueError("texts is empty: need at least one caption")
        rows = [[self.sot_id, *self.encode(t), self.eot_id] for t in texts]
        too_long = [(i, t, len(r)) for i, (t, r) in enumerate(zip(texts, rows)) if len(r) > L]
        if too_long and not truncate:
            named = "; ".join(f"caption {i} ({t[:60]!r}{'...' if len(t) > 60 else ''}) needs {n} tokens"
                              for i, t, n in too_long)
            raise ValueError(f"{named}; the context length is {L} tokens including start and end "
                             f"(shorten the caption or pass truncate=True)")
        out = torch.zeros(len(rows), L, dtype=torch.long)
        for i, row in enumerate(rows):
            if len(row) > L:
                row = row[:L - 1] + [self.eot_id]
            out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return out


@lru_cache(maxsize=1)
def get_tokenizer() -> BPETokenizer:
    """The shared :class:`BPETokenizer` on open_clip's merges (built once, ~0.5 s)."""
    return BPETokenizer()


def tokenize(texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH, truncate: bool = False) -> torch.Tensor:
    """``(N, context_length)`` ids of ``texts`` with the shared tokenizer (see :meth:`BPETokenizer.__call__`)."""
    return get_tokenizer()(texts, context_length=context_length, truncate=truncate)
