"""Catalog -> BibTeX / BibLaTeX through bibtexparser's v2 model and writer.

Entry types follow the venue: ``@inproceedings`` (``booktitle``) for conference and workshop
papers, ``@article`` (``journal``, ``volume``, ``number``, ``pages``) for journals, and for
arXiv-only preprints ``@misc`` (BibTeX) or ``@online`` (BibLaTeX) with ``eprint``,
``archivePrefix = {arXiv}`` and ``primaryClass``. Every entry has ``url`` and ``year``, and
``doi``/``month`` when known.

Citation keys are the papers' catalog keys (``lin2019tsm``), or the key a paper pins with
``citation_key``: they never change when other entries are added.

Every text field is LaTeX-encoded with pylatexenc (the encoder bibtexparser uses): in BibTeX
mode non-ASCII letters become commands (``Lu\\v{c}i\\'c``); in BibLaTeX mode they stay UTF-8; in
both, ``& % _ # $`` are escaped, ``{ } \\ ^ ~ < > |`` become brace-balanced text commands
(``\\textbraceleft``, ``\\textasciicircum`` ...) so that no value can unbalance an entry, newlines
are folded, and capitals of acronyms and mixed-case words are protected with braces (``{TSM}``,
``{3D}``, ``{ViViT}``). Organisations written as authors are braced whole
(``{Google Research and DeepMind}``). URLs (and DOIs in BibLaTeX, where ``doi`` is a verbatim
field) are written as they are, with braces, backslashes, quotes and spaces percent-encoded.
"""

from __future__ import annotations

import functools
import re

import bibtexparser
from bibtexparser.library import Library
from bibtexparser.middlewares.names import parse_single_name_into_parts
from bibtexparser.middlewares.parsestack import default_unparse_stack
from bibtexparser.model import Entry, Field
from bibtexparser.writer import BibtexFormat
from pylatexenc.latexencode import (
    RULE_DICT,
    UnicodeToLatexConversionRule,
    UnicodeToLatexEncoder,
    get_builtin_conversion_rules,
)

from papers_kb.catalog import Catalog
from papers_kb.render import GENERATED, Page, PageSpec
from papers_kb.schema import Paper

# Full booktitles of the conferences the catalog uses (short name -> booktitle).
BOOKTITLES = {
    "CVPR": "Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)",
    "ICCV": "Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)",
    "ECCV": "Proceedings of the European Conference on Computer Vision (ECCV)",
    "NeurIPS": "Advances in Neural Information Processing Systems (NeurIPS)",
    "ICLR": "International Conference on Learning Representations (ICLR)",
    "ICML": "Proceedings of the International Conference on Machine Learning (ICML)",
    "AAAI": "Proceedings of the AAAI Conference on Artificial Intelligence (AAAI)",
    "ACL": "Proceedings of the Annual Meeting of the Association for Computational Linguistics (ACL)",
    "ACM MM": "Proceedings of the ACM International Conference on Multimedia (ACM MM)",
    "ICIP": "Proceedings of the IEEE International Conference on Image Processing (ICIP)",
    "ICPR": "Proceedings of the International Conference on Pattern Recognition (ICPR)",
    "ACCV": "Proceedings of the Asian Conference on Computer Vision (ACCV)",
    "BMVC": "Proceedings of the British Machine Vision Conference (BMVC)",
    "WACV": "Proceedings of the IEEE/CVF Winter Conference on Applications of Computer Vision (WACV)",
    "ICASSP": "Proceedings of the IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)",
    "ICME": "Proceedings of the IEEE International Conference on Multimedia and Expo (ICME)",
}
JOURNALS = {
    "TPAMI": "IEEE Transactions on Pattern Analysis and Machine Intelligence",
    "IJCV": "International Journal of Computer Vision",
    "TIP": "IEEE Transactions on Image Processing",
    "TMM": "IEEE Transactions on Multimedia",
    "TCSVT": "IEEE Transactions on Circuits and Systems for Video Technology",
}

# ASCII characters LaTeX or BibTeX treat specially, as brace-balanced text macros: BibTeX
# counts every brace, escaped or not, so "\\{" would leave a field unbalanced and swallow the
# next entry; "\\textbraceleft" does not. "<", ">" and "|" print other glyphs in the OT1
# font encoding.
_SPECIALS = {ord("&"): r"\&", ord("%"): r"\%", ord("_"): r"\_", ord("#"): r"\#", ord("$"): r"\$",
             ord("{"): r"\textbraceleft", ord("}"): r"\textbraceright", ord("\\"): r"\textbackslash",
             ord("^"): r"\textasciicircum", ord("~"): r"\textasciitilde", ord("<"): r"\textless",
             ord(">"): r"\textgreater", ord("|"): r"\textbar"}
_BIBLATEX_ENCODER = UnicodeToLatexEncoder(
    conversion_rules=[UnicodeToLatexConversionRule(RULE_DICT, _SPECIALS)], unknown_char_policy="keep",
    unknown_char_warning=False, replacement_latex_protection="braces-after-macro",
)
_BIBTEX_ENCODER = UnicodeToLatexEncoder(
    conversion_rules=[UnicodeToLatexConversionRule(RULE_DICT, _SPECIALS), "defaults"],
    unknown_char_policy="keep", unknown_char_warning=False, replacement_latex_protection="braces-almost-all",
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Words that make a name an organisation's ("corporate author"): written in braces so that
# BibTeX neither splits it at "and" nor reorders it as "Family, Given".
_CORPORATE = re.compile(r"\b(and|AI|Research|Team|Lab|Labs|Laboratory|Laboratories|Inc|Ltd|LLC|Corporation|Corp|"
                        r"Company|Institute|University|Universit\w*|Group|Consortium|Collaboration|Foundation|"
                        r"Project|Committee|Association|Society|Council|Center|Centre|DeepMind|OpenAI)\b\.?")


def _kept_chars(enc: UnicodeToLatexEncoder) -> frozenset[str]:
    """Printable ASCII characters ``enc`` leaves as they are, when all its rules map single
    characters (a string of such characters then encodes to itself); empty otherwise."""
    rules = [r for name in enc.conversion_rules
             for r in (get_builtin_conversion_rules(name) if isinstance(name, str) else [name])]
    if any(r.rule_type != RULE_DICT for r in rules):
        return frozenset()
    return frozenset(c for c in map(chr, range(32, 127)) if enc.unicode_to_latex(c) == c)


_KEPT = {id(enc): _kept_chars(enc) for enc in (_BIBTEX_ENCODER, _BIBLATEX_ENCODER)}


def encode(text: str, biblatex: bool = False) -> str:
    """LaTeX-encode text for a BibTeX field value (see module docstring).

    Whitespace (newlines included) is folded into single spaces and control characters are
    dropped; every special character becomes a brace-balanced command, so the result never
    unbalances a field.
    """
    enc = _BIBLATEX_ENCODER if biblatex else _BIBTEX_ENCODER
    text = re.sub(r"\s+", " ", _CONTROL.sub(" ", str(text))).strip()
    if _KEPT[id(enc)].issuperset(text):  # plain ASCII the encoder keeps: skip its per-character pass
        return text
    return enc.unicode_to_latex(text)


def verbatim(text: str) -> str:
    """A URL (or DOI in BibLaTeX, a verbatim field) as BibTeX can hold it: no whitespace, and
    braces, backslashes and double quotes percent-encoded (they cannot be escaped there)."""
    return re.sub(r'[\s{}\\"]', lambda m: "%{:02X}".format(ord(m.group())), str(text))


def _needs_protection(word: str) -> bool:
    core = re.sub(r"\\[a-zA-Z]+|[{}\\'`^\"~=.]", "", word)  # ignore LaTeX accents
    letters = re.sub(r"[^A-Za-z0-9]", "", core)
    if not letters:
        return False
    if any(c.isdigit() for c in letters) and any(c.isalpha() for c in letters):
        return True  # 3D, R(2+1)D, 16x16, V2
    return any(c.isupper() for c in letters[1:])  # TSM, CLIP, ViViT, TimeSformer


def _one_group(word: str) -> bool:
    """True when ``word`` is a single brace group ``{...}`` (its first brace closes at the end)."""
    if not (word.startswith("{") and word.endswith("}")):
        return False
    depth = 0
    for i, c in enumerate(word):
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth == 0:
            return i == len(word) - 1
    return False


def protect_capitals(encoded_title: str) -> str:
    """Brace-protect acronyms and mixed-case words of an already encoded title."""
    out = []
    for word in encoded_title.split(" "):
        m = re.match(r"^([(\[\"']*)(.*?)([)\]:;,.?!\"']*)$", word)
        pre, core, post = m.groups() if m else ("", word, "")
        if core and _needs_protection(core) and not _one_group(core):
            core = "{" + core + "}"
        out.append(pre + core + post)
    return " ".join(out)


def is_corporate(name: str) -> bool:
    """True for an organisation written as an author ("Google Research and DeepMind", "Meta AI")."""
    return bool(_CORPORATE.search(name))


def bib_name(name: str, biblatex: bool) -> str:
    """``"Mario Lučić"`` -> ``"Lu\\v{c}i\\'c, Mario"`` (BibTeX) or ``"Lučić, Mario"`` (BibLaTeX);
    an organisation (see :func:`is_corporate`) or a name with a brace -> ``"{...}"`` whole."""
    name = re.sub(r"\s+", " ", name).strip()
    if is_corporate(name) or any(c in name for c in "{}\\"):
        return "{" + encode(name, biblatex) + "}"
    parts = parse_single_name_into_parts(name)
    return encode(parts.merge_last_name_first, biblatex)


def citation_key(p: Paper) -> str:
    """The citation key of a paper: its pinned ``citation_key`` or its catalog key."""
    return p.citation_key or p.key


def entry_type(p: Paper, biblatex: bool = False) -> str:
    """BibTeX entry type of a paper from its venue type (see module docstring)."""
    if not p.authors:
        # authors not confirmed: @inproceedings/@article would be invalid without them, and
        # guessing is worse; @misc is valid without an author.
        return "misc"
    vt = p.venue_type
    if vt is None:
        vt = "preprint" if p.arxiv_id and (p.venue in (None, "arXiv")) else ("conference" if p.venue else None)
    if vt in ("conference", "workshop") and p.venue:
        return "inproceedings"
    if vt == "journal" and p.venue:
        return "article"
    if vt == "preprint" and p.arxiv_id:
        return "online" if biblatex else "misc"
    if vt == "techreport":
        return "misc"
    return "online" if biblatex and p.url and not p.arxiv_id else "misc"


def paper_entry(p: Paper, biblatex: bool = False) -> Entry:
    """One bibtexparser :class:`Entry` for a paper."""
    etype = entry_type(p, biblatex)
    fields: list[Field] = []

    def add(key: str, value: str | int | None) -> None:
        if value not in (None, ""):
            fields.append(Field(key, str(value)))

    def text(value: str | None) -> str | None:
        return encode(value, biblatex) if value else None

    add("author", " and ".join(bib_name(a, biblatex) for a in p.authors))
    add("title", protect_capitals(encode(p.title, biblatex)))
    if etype == "inproceedings":
        add("booktitle", encode(BOOKTITLES.get(p.venue or "", p.venue or ""), biblatex))
    elif etype == "article":
        add("journal", encode(JOURNALS.get(p.venue or "", p.venue or ""), biblatex))
        add("volume", text(p.volume))
        add("number", text(p.number))
    elif etype == "misc" and p.venue_type not in (None, "preprint") and p.venue and p.venue != "arXiv":
        add("howpublished", encode(f"{p.venue} {p.year}" if p.year else p.venue, biblatex))
    if not p.authors:
        add("note", "Authors not confirmed")
    if etype in ("inproceedings", "article"):
        add("pages", text(re.sub(r"-+", "--", p.pages)) if p.pages else None)
    year = p.year or (p.arxiv.published.year if p.arxiv and p.arxiv.published else None)
    add("year", year)
    month = p.month or (p.arxiv.published.month if etype in ("misc", "online") and p.arxiv and p.arxiv.published else None)
    if month:
        add("month", ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"][month - 1])
    add("doi", (verbatim(p.doi) if biblatex else text(p.doi)) if p.doi else None)  # verbatim in BibLaTeX
    if p.arxiv_id:
        add("eprint", verbatim(p.arxiv_id))
        add("archivePrefix", "arXiv")
        add("primaryClass", text(p.arxiv.primary_category) if p.arxiv else None)
    url = (p.url or (f"https://arxiv.org/abs/{p.arxiv_id}" if p.arxiv_id else None) or p.pdf
           or (f"https://doi.org/{p.doi}" if p.doi else None))
    add("url", verbatim(url) if url else None)
    entry = Entry(etype, citation_key(p), fields)
    return entry


def _format() -> BibtexFormat:
    fmt = BibtexFormat()
    fmt.indent = "  "
    fmt.block_separator = "\n"
    return fmt


def _month_macros(text: str) -> str:
    # Months are BibTeX macros (jan, feb ...): bibtexparser encloses every value in braces,
    # which would make them literal strings; write them bare as the styles expect.
    return re.sub(r"(\n\s*month = )\{([a-z]{3})\}", r"\1\2", text)


def library_for(papers: list[Paper], biblatex: bool = False) -> Library:
    """A bibtexparser :class:`Library` with one entry per paper (in the given order)."""
    lib = Library()
    for p in papers:
        lib.add(paper_entry(p, biblatex))
    if lib.failed_blocks:
        raise ValueError(f"bibtexparser rejected entries: {[b.error for b in lib.failed_blocks]}")
    return lib


def write(papers: list[Paper], biblatex: bool = False) -> str:
    """BibTeX text of ``papers``, written by bibtexparser."""
    if not papers:
        return ""
    # The library is ours and fresh: let the unparse middleware work in place (no deep copy).
    text = bibtexparser.write_string(library_for(papers, biblatex), bibtex_format=_format(),
                                     unparse_stack=default_unparse_stack(allow_inplace_modification=True))
    return _month_macros(text).strip() + "\n"


class UnknownSelection(ValueError):
    """``--key``/``--tag`` names that are not in the catalog (one-line message)."""


def select(cat: Catalog, stage: int | None = None, tags: list[str] | None = None,
           keys: list[str] | None = None) -> list[Paper]:
    """Papers matching every given selector, sorted by citation key.

    Raises:
        UnknownSelection: naming the keys and tags that are not in the catalog.
    """
    bad_keys = [k for k in keys or [] if k not in cat.papers]
    bad_tags = [t for t in tags or [] if t not in cat.tags]
    if bad_keys or bad_tags:
        parts = ([f"unknown paper key(s) for --key: {', '.join(bad_keys)}"] if bad_keys else []) + \
                ([f"unknown tag(s) for --tag: {', '.join(bad_tags)}"] if bad_tags else [])
        raise UnknownSelection("; ".join(parts))
    out = []
    for p in cat.papers.values():
        if stage is not None and (cat.stage_item(p.key) or (None,))[0] != stage:
            continue
        if tags and not all(t in p.tags for t in tags):
            continue
        if keys and p.key not in keys:
            continue
        out.append(p)
    return sorted(out, key=citation_key)


def export_bibtex(cat: Catalog, stage: int | None = None, tags: list[str] | None = None,
                  keys: list[str] | None = None, biblatex: bool = False) -> str:
    """``papers-kb export --bibtex``: the selected papers as one BibTeX (or BibLaTeX) file."""
    return write(select(cat, stage, tags, keys), biblatex)


def entry_text(p: Paper) -> str:
    """The BibTeX of one paper (for the "Cite" block of its page)."""
    return write([p]).strip()


def catalog_entry_text(cat: Catalog, p: Paper) -> str:
    """:func:`entry_text` of a paper of ``cat``, written once per catalog (kept in ``cat.memo``):
    the paper's page and the downloads share it."""
    texts = cat.memo.setdefault("bibtex.entry_text", {})
    if p.key not in texts:
        texts[p.key] = entry_text(p)
    return texts[p.key]


def join_entries(texts: list[str]) -> str:
    """One BibTeX file of entries written by :func:`entry_text`: the text :func:`write` gives
    for their papers (bibtexparser writes each entry on its own, one blank line between)."""
    return "\n\n".join(texts) + "\n" if texts else ""


def bib_downloads(cat: Catalog) -> list[Page]:
    """Downloadable ``generated/bib/all.bib`` and ``stage-N.bib`` files for the site."""
    return [spec.page() for spec in bib_download_specs(cat)]


PAGE_ONLY_FIELDS = frozenset({"short_name", "aliases", "authors_note", "year_note", "links", "tags", "summary",
                              "notes", "related", "confirmed", "sources"})
"""Paper fields that :func:`paper_entry` never reads (shown on pages only): left out of the
inputs of the BibTeX downloads, so that editing them does not write the downloads again."""


def bib_download_specs(cat: Catalog) -> list[PageSpec]:
    """:func:`bib_downloads` as page specs whose inputs are the papers each file holds (their
    fields but :data:`PAGE_ONLY_FIELDS`)."""
    dumps = {k: p.model_dump(mode="json", exclude_none=True, exclude=set(PAGE_ONLY_FIELDS))
             for k, p in cat.papers.items()}
    specs = []
    for name, stage in [("all", None), *((f"stage-{n}", n) for n in sorted(cat.stages))]:
        papers = select(cat, stage=stage)
        specs.append(PageSpec(f"{GENERATED}/bib/{name}.bib", functools.partial(_joined, cat, papers),
                              ["bib", [dumps[p.key] for p in papers]]))
    return specs


def _joined(cat: Catalog, papers: list[Paper]) -> str:
    return join_entries([catalog_entry_text(cat, p) for p in papers])
