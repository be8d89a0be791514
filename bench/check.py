#!/usr/bin/env python3
"""`bench/run.sh --check`: compares a run's ratios with the reference block
in docs/benchmarks.md and says, row by row, ok / regressed / improved.

    python3 bench/check.py [bench/out/results.json [docs/benchmarks.md]]

The reference block is the first fenced block after the heading
"Reference ratios for --check"; each line is `ID DIRECTION VALUE`
(DIRECTION: higher or lower is better; `#` starts a comment). A row
regressed when it is worse than its reference by more than the tolerance
(BENCH_TOLERANCE, default 0.10 = 10%; "15%" also works). Exits 1 when a
row regressed or a referenced row has no figure, 2 on unusable input.
Standard library only.
"""

import json
import os
import re
import sys

HEADING = "Reference ratios for --check"


def die(msg):
    print(f"--check: {msg}", file=sys.stderr)
    sys.exit(2)


def tolerance():
    raw = os.environ.get("BENCH_TOLERANCE", "0.10").strip()
    try:
        t = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        die(f"BENCH_TOLERANCE={raw!r} is not a number (0.10 or 10%)")
    if t >= 1:  # "10" meant 10%
        t /= 100
    if not 0 <= t < 1:
        die(f"BENCH_TOLERANCE={raw!r} must be between 0 and 1 (or 0% and 100%)")
    return t


def reference(doc_path):
    with open(doc_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.lstrip("#").strip() == HEADING and l.startswith("#"))
    except StopIteration:
        die(f"{doc_path}: no heading {HEADING!r}")
    i = start + 1
    while i < len(lines) and not lines[i].startswith("```"):
        if lines[i].startswith("#"):
            die(f"{doc_path}: no fenced block under {HEADING!r}")
        i += 1
    refs = {}
    for n, line in enumerate(lines[i + 1:], start=i + 2):
        if line.startswith("```"):
            return refs
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"(\S+)\s+(higher|lower)\s+([0-9.eE+-]+)", line)
        if not m:
            die(f"{doc_path}:{n}: expected `ID higher|lower VALUE`, got {line!r}")
        refs[m.group(1)] = (m.group(2), float(m.group(3)))
    die(f"{doc_path}: the block under {HEADING!r} is not closed")


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else "bench/out/results.json"
    doc = sys.argv[2] if len(sys.argv) > 2 else "docs/benchmarks.md"
    tol = tolerance()
    try:
        with open(results, encoding="utf-8") as f:
            got = json.load(f)["check"]
    except (OSError, ValueError, KeyError) as e:
        print(f"cannot read {results}: {e}", file=sys.stderr)
        return 2
    refs = reference(doc)
    bad = 0
    print(f"--check against {doc} (tolerance {tol:.0%}):")
    print(f"  {'row':<20} {'better':<7} {'reference':>10} {'this run':>10} {'change':>8}  verdict")
    for rid, (better, ref) in refs.items():
        entry = got.get(rid)
        value = entry.get("value") if entry else None
        if value is None:
            print(f"  {rid:<20} {better:<7} {ref:>10.3f} {'-':>10} {'':>8}  MISSING (no figure in this run)")
            bad += 1
            continue
        if entry.get("better") and entry["better"] != better:
            print(f"  {rid:<20} the reference says {better} is better, the run says {entry['better']}")
            bad += 1
            continue
        change = (value - ref) / ref if ref else 0.0
        worse = -change if better == "higher" else change
        if worse > tol:
            verdict = "REGRESSED"
            bad += 1
        elif worse < -tol:
            verdict = "improved"
        else:
            verdict = "ok"
        print(f"  {rid:<20} {better:<7} {ref:>10.3f} {value:>10.3f} {change:>+8.1%}  {verdict}")
    for rid in sorted(set(got) - set(refs)):
        v = got[rid].get("value")
        print(f"  {rid:<20} no reference (this run: {'-' if v is None else f'{v:.3f}'})")
    print(f"--check: {'FAILED, ' + str(bad) + ' row(s) regressed or missing' if bad else 'ok'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
