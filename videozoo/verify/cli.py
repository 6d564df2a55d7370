"""Command line of ``python -m videozoo.verify`` (see the package docstring)."""

from __future__ import annotations

import argparse
import sys

from videozoo.registry import get_spec, list_names
from videozoo.verify import ALL_CHECKS, FAST_CHECKS, compare, verify_model


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds expects comma-separated integers, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds needs at least one seed")
    return seeds


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m videozoo.verify",
                                description="Verify registered videozoo models and write their reproduction records.")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="registered names: paper keys, aliases or variants (default: every registered name)")
    p.add_argument("--out", default="data/reproduction", help="folder of <name>.json records")
    p.add_argument("--checks", default=",".join(ALL_CHECKS), help=f"comma-separated subset of {','.join(ALL_CHECKS)}")
    p.add_argument("--fast", action="store_true", help="skip the training checks (motion and the other slow kinds)")
    p.add_argument("--motion-steps", type=int, default=None,
                   help="step budget of the motion check (default: the model's own, else 600)")
    p.add_argument("--seeds", type=_seeds, default=None, metavar="S,S,...",
                   help="seeds of the motion check (default: the model's own, else 0,1,2)")
    p.add_argument("--compare", metavar="DIR",
                   help="CI mode: re-run the fast checks (builds, runs, reference, inflation), exit 1 on any difference")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 0 when every check ran passed or was not run, else 1."""
    args = _parse(argv)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        names = [get_spec(n).alias for n in args.models] if args.models else list_names()
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.compare:
        diffs = compare(names, args.compare, log=log)
        for d in diffs:
            print(f"DIFF {d}")
        print(f"{len(names)} registered names compared with {args.compare}: {len(diffs)} difference(s)")
        return 1 if diffs else 0
    checks = [c.strip() for c in args.checks.split(",") if c.strip()]
    unknown = set(checks) - set(ALL_CHECKS)
    if unknown:
        print(f"unknown check(s) {sorted(unknown)}; choose from {', '.join(ALL_CHECKS)}", file=sys.stderr)
        return 2
    if args.fast:
        checks = [c for c in checks if c in FAST_CHECKS]
    failed = 0
    for name in names:
        record = verify_model(name, checks, out=args.out, motion_steps=args.motion_steps, log=log,
                              motion_seeds=args.seeds)
        statuses = {c["name"]: c["status"] for c in record["checks"] if c["name"] in checks}
        failed += sum(s == "failed" for s in statuses.values())
        print(f"{record['model']:<14} " + "  ".join(f"{k}={v}" for k, v in statuses.items()))
    return 1 if failed else 0

