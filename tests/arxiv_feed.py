"""Build Atom feeds in the arXiv API's format (namespaces, opensearch header, entries).

Used by the tests' local HTTP server in place of export.arxiv.org. The element layout follows
the API user manual's "Details of Atom Results Returned".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr


@dataclass
class FeedEntry:
    arxiv_id: str
    title: str
    authors: list[str]
    published: str = "2018-11-20T18:59:00Z"
    updated: str = "2019-08-22T05:00:00Z"
    version: int = 1
    summary: str = "An abstract written for the tests."
    primary_category: str = "cs.CV"
    categories: list[str] = field(default_factory=lambda: ["cs.CV"])
    doi: str | None = None
    journal_ref: str | None = None
    comment: str | None = None

    def xml(self) -> str:
        vid = f"{self.arxiv_id}v{self.version}"
        parts = [
            "  <entry>",
            f"    <id>http://arxiv.org/abs/{vid}</id>",
            f"    <updated>{self.updated}</updated>",
            f"    <published>{self.published}</published>",
            f"    <title>{escape(self.title)}</title>",
            f"    <summary>  {escape(self.summary)}\n</summary>",
        ]
        parts += [f"    <author>\n      <name>{escape(a)}</name>\n    </author>" for a in self.authors]
        if self.doi:
            parts.append(f"    <arxiv:doi>{escape(self.doi)}</arxiv:doi>")
            parts.append(f'    <link title="doi" href="http://dx.doi.org/{escape(self.doi)}" rel="related"/>')
        if self.comment:
            parts.append(f"    <arxiv:comment>{escape(self.comment)}</arxiv:comment>")
        if self.journal_ref:
            parts.append(f"    <arxiv:journal_ref>{escape(self.journal_ref)}</arxiv:journal_ref>")
        parts += [
            f'    <link href="http://arxiv.org/abs/{vid}" rel="alternate" type="text/html"/>',
            f'    <link title="pdf" href="http://arxiv.org/pdf/{vid}" rel="related" type="application/pdf"/>',
            f'    <arxiv:primary_category term={quoteattr(self.primary_category)} scheme="http://arxiv.org/schemas/atom"/>',
        ]
        parts += [f'    <category term={quoteattr(c)} scheme="http://arxiv.org/schemas/atom"/>' for c in self.categories]
        parts.append("  </entry>")
        return "\n".join(parts)


def feed(entries: list[FeedEntry], query: str = "id_list=") -> bytes:
    """A whole API response holding ``entries`` (in the given order)."""
    head = f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <id>https://arxiv.org/api/testfeed</id>
  <title>arXiv Query: {escape(query)}</title>
  <updated>2026-11-22T00:00:00Z</updated>
  <link href="https://arxiv.org/api/query?{escape(query)}" type="application/atom+xml"/>
  <opensearch:itemsPerPage>{len(entries)}</opensearch:itemsPerPage>
  <opensearch:totalResults>{len(entries)}</opensearch:totalResults>
  <opensearch:startIndex>0</opensearch:startIndex>
"""
    return (head + "\n".join(e.xml() for e in entries) + "\n</feed>\n").encode("utf-8")
