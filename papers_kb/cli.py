"""``papers-kb`` command line: argument parsing only; each command calls one function.

Exit status: 0 success, 1 validation/check failures, 2 usage errors or unreachable services.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from papers_kb.catalog import CatalogError, load_catalog
from papers_kb.files import atomic_write


def _root(args: argparse.Namespace) -> Path:
    return Path(args.root).resolve()


def _load(args: argparse.Namespace):
    return load_catalog(_root(args) / "data", root=_root(args))


def _output(text: str, out: str | None) -> None:
    if out:
        atomic_write(Path(out), text)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def cmd_validate(args: argparse.Namespace) -> int:
    cat = _load(args)
    for w in cat.warnings:
        print(w, file=sys.stderr)
    c = cat.counts()
    print(f"ok: {c['papers']} papers, {c['datasets']} datasets, {c['repos']} repos, {c['results']} results, "
          f"{c['resources']} resources, {c['stages']} stages, {c['tags']} tags, {c['reproduction']} reproduction records"
          f"{f', {len(cat.warnings)} warning(s)' if cat.warnings else ''}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from papers_kb.build import render_site

    rep = render_site(_root(args))
    print(f"{rep.pages} generated files: {_counts(rep.render)}; validate {rep.seconds['validate']:.2f} s, "
          f"render {rep.seconds['render']:.2f} s")
    return 0


def _counts(r) -> str:
    """``rendered / unchanged / removed`` counts of a render (and how many files changed)."""
    return (f"{len(r.rendered)} rendered ({len(r.written)} written), {r.unchanged} unchanged, "
            f"{len(r.removed)} removed")


def cmd_build(args: argparse.Namespace) -> int:
    from papers_kb.build import build_site

    try:
        rep = build_site(_root(args), args.site, strict=not args.no_strict)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    s = rep.seconds
    print(f"built {rep.site_dir} from {rep.pages} generated files ({_counts(rep.render)}): "
          f"validate {s['validate']:.2f} s, render {s['render']:.2f} s, mkdocs {s['mkdocs']:.2f} s")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from papers_kb.build import render_site
    from papers_kb.serve import serve

    render_site(_root(args))  # validation errors stop here, with every problem listed
    return serve(_root(args), args.addr)


def cmd_export(args: argparse.Namespace) -> int:
    cat = _load(args)
    if args.bibtex:
        from papers_kb.bibtex import UnknownSelection, export_bibtex

        try:
            text = export_bibtex(cat, stage=args.stage, tags=args.tag, keys=args.key, biblatex=args.biblatex)
        except UnknownSelection as exc:
            print(f"export: {exc}", file=sys.stderr)
            return 2
    else:
        text = json.dumps(cat.as_json(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    _output(text, args.output)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from papers_kb.schema import ENTRY_MODELS, SourceDoc, Stage, Tag

    models = {**{k[:-1]: m for k, m in ENTRY_MODELS.items()}, "stage": Stage, "tag": Tag, "source": SourceDoc}
    if args.output_dir:
        out = Path(args.output_dir)
        for name, model in sorted(models.items()):
            atomic_write(out / f"{name}.schema.json", json.dumps(model.model_json_schema(), indent=2) + "\n")
        print(f"wrote {len(models)} schemas to {out}", file=sys.stderr)
        return 0
    if args.kind not in models:
        print(f"unknown kind {args.kind!r}; one of {', '.join(sorted(models))}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(models[args.kind].model_json_schema(), indent=2) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="papers-kb", description="papers-kb: the video-understanding paper "
                                "knowledge base (validate, build the site, add and enrich from arXiv, export, check links)")
    p.add_argument("--root", default=".", help="project folder holding data/, site_src/, mkdocs.yml (default: .)")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("validate", help="validate data/ and report every problem").set_defaults(func=cmd_validate)
    sub.add_parser("render", help="validate and render Markdown into site_src/generated/").set_defaults(func=cmd_render)
    b = sub.add_parser("build", help="validate, render and mkdocs build --strict into site/")
    b.add_argument("--site", default=None, help="output folder (default: site/)")
    b.add_argument("--no-strict", action="store_true", help="do not fail on MkDocs warnings")
    b.set_defaults(func=cmd_build)
    s = sub.add_parser("serve", help="live preview: mkdocs serve, re-rendering the pages of edited data/ entries")
    s.add_argument("--addr", default="127.0.0.1:8000")
    s.set_defaults(func=cmd_serve)

    e = sub.add_parser("export", help="export the validated catalog")
    fmt = e.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--json", action="store_true", help="JSON with keys papers, datasets, repos, results, stages")
    fmt.add_argument("--bibtex", action="store_true", help="BibTeX of the papers")
    e.add_argument("-o", "--output", help="file to write (default: standard output)")
    e.add_argument("--stage", type=int, choices=[1, 2, 3, 4], help="BibTeX: only papers of this stage")
    e.add_argument("--tag", action="append", help="BibTeX: only papers with this tag (repeatable)")
    e.add_argument("--key", action="append", help="BibTeX: only these paper keys (repeatable)")
    e.add_argument("--biblatex", action="store_true", help="BibTeX: BibLaTeX flavour (@online, UTF-8)")
    e.set_defaults(func=cmd_export)

    sc = sub.add_parser("schema", help="JSON Schema of the entry files (for editor autocompletion)")
    sc.add_argument("--kind", default="paper", help="paper, dataset, repo, result, resource, stage, tag, source")
    sc.add_argument("-o", "--output-dir", help="write <kind>.schema.json for every kind into this folder")
    sc.set_defaults(func=cmd_schema)

    from papers_kb import arxiv_client, links

    arxiv_client.add_cli(sub)
    links.add_cli(sub)
    return p


def _recover(root: Path) -> None:
    """Finish a write to ``data/`` that a killed ``add``/``enrich`` left committed (or discard
    one it did not commit), so every command sees data/ whole. Needs the lock."""
    from papers_kb.files import data_lock, pending

    data = root / "data"
    if pending(data):
        with data_lock(data) as done:
            if done:
                print(f"completed an interrupted write of {', '.join(f'data/{d}' for d in done)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``papers-kb`` console script.

    Every error ends in one line (or, for validation, one line per problem) naming the file,
    URL or argument and the reason, and a non-zero exit status; never a traceback.
    """
    from papers_kb.files import WriteError
    from papers_kb.render import UnsafePath

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _recover(_root(args))
        return int(args.func(args) or 0)
    except CatalogError as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    except UnsafePath as exc:
        print(f"papers-kb: {exc}", file=sys.stderr)
        return 1
    except WriteError as exc:
        print(f"papers-kb: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # reading or writing a file the command was pointed at
        what = f"{exc.filename}: " if exc.filename else ""
        print(f"papers-kb: {what}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
