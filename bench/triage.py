"""Top-1 routing accuracy of `bot.triage` on the shared complaint datasets.

Run: ``.venv/bin/python bench/triage.py`` (``--city samarinda`` for the other profile).

* Bandung (SP4N-LAPOR!, 4 OPDs): predicted OPD vs the label's OPD.  Rows about street lights
  labelled PUPR also accept DISHUB (Bandung routed PJU to both agencies).
* Purbalingga (Lapor Mas Bup): only the 4 labels that map to an OPD; street-light rows
  labelled Infrastruktur also accept DISHUB.

A text for which triage suggests nothing (or only the fallback) counts as wrong.
Baselines, measured in the same run: (a) majority class, (b) raw keyword match (the same
profile keywords as lower-case substrings, no normalisation or stemming, most hits wins).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bot.triage import CategoryLike, Triage  # noqa: E402

OPD_CODES = {"dishub": "DISHUB", "satpol pp": "SATPOLPP", "disdukcapil": "DISDUKCAPIL"}
STREET_LIGHT = re.compile(r"\b(pju|lpju|lampu|penerangan)\b", re.IGNORECASE)


def complaints_dir() -> Path:
    """Resolve like tests/conftest.py: LAPOR_SHARED_DIR or <repo>/../shared."""
    base = Path(os.environ.get("LAPOR_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return base / "data" / "complaints"


def norm_opd(code: str) -> str:
    code = code.strip()
    return OPD_CODES.get(code.lower(), code.upper().replace(" ", ""))


@dataclass(frozen=True)
class Row:
    text: str
    gold: str  # OPD code
    also: frozenset[str]  # other OPD codes accepted for this row


def load_rows(folder: Path) -> dict[str, list[Row]]:
    """Both datasets as (text, gold OPD, also-accepted) rows, unmapped labels dropped."""
    mapping: dict[tuple[str, str], str] = {}
    with (folder / "label_to_opd.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["opd"].strip():
                mapping[(r["dataset"], r["label"])] = norm_opd(r["opd"])
    out: dict[str, list[Row]] = {}
    for name, label_col, light_label in (
        ("bandung_lapor_4opd", "label", "PUPR"),
        ("purbalingga_lapormasbup_sektor", "kategori", "PUPR"),
    ):
        rows: list[Row] = []
        with (folder / f"{name}.csv").open(encoding="utf-8") as f:
            for r in csv.DictReader(f):
                gold = mapping.get((name, r[label_col]))
                if gold is None:
                    continue
                also = (
                    {"DISHUB"} if gold == light_label and STREET_LIGHT.search(r["text"]) else set()
                )
                rows.append(Row(r["text"], gold, frozenset(also)))
        out[name] = rows
    return out


def constant(opd: str) -> Callable[[str], str | None]:
    """Baseline (a): always the majority class."""

    def predict(_text: str) -> str | None:
        return opd

    return predict


def raw_keyword_predictor(categories: Sequence[CategoryLike]) -> Callable[[str], str | None]:
    """Baseline (b): count raw keyword substrings in the lower-cased text."""
    cats = [(c.opd, [k.lower() for k in c.keywords if k.strip()]) for c in categories]

    def predict(text: str) -> str | None:
        low = text.lower()
        best, best_n = None, 0
        for opd, kws in cats:
            n = sum(low.count(k) for k in kws)
            if n > best_n:
                best, best_n = opd, n
        return best

    return predict


@dataclass
class Result:
    n: int
    correct: int
    confusion: Counter[tuple[str, str]]
    seconds: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


def evaluate(rows: Sequence[Row], predict: Callable[[str], str | None]) -> Result:
    confusion: Counter[tuple[str, str]] = Counter()
    correct = 0
    start = time.perf_counter()
    for row in rows:
        pred = predict(row.text) or "-"
        ok = pred == row.gold or pred in row.also
        correct += ok
        confusion[(row.gold, pred if not ok else row.gold)] += 1
    return Result(len(rows), correct, confusion, time.perf_counter() - start)


def print_confusion(res: Result) -> None:
    golds = sorted({g for g, _ in res.confusion})
    for gold in golds:
        total = sum(n for (g, _), n in res.confusion.items() if g == gold)
        wrong = sorted(
            ((p, n) for (g, p), n in res.confusion.items() if g == gold and p != gold),
            key=lambda x: -x[1],
        )
        right = res.confusion[(gold, gold)]
        errs = ", ".join(f"{p} {n}" for p, n in wrong[:5]) or "-"
        print(f"    {gold:<12} {right:>4}/{total:<4} ({right / total:.2f})  wrong → {errs}")


def load_categories(city: str) -> Sequence[CategoryLike]:
    from bot.city import load_city  # the city profile module (bot/city.py)

    return load_city(city).categories  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city", default="palu")
    parser.add_argument("--errors", type=int, default=0, help="print N misrouted texts")
    args = parser.parse_args(argv)

    categories = load_categories(args.city)
    t0 = time.perf_counter()
    triage = Triage(categories)
    print(
        f"triage built for {args.city}: {len(categories)} categories "
        f"in {time.perf_counter() - t0:.2f}s"
    )
    if triage.dropped_keywords:
        print(f"  keywords that normalise to nothing: {triage.dropped_keywords}")

    def ours(text: str) -> str | None:
        s = triage.best(text)
        return s.opd if s else None

    def ours_top(text: str) -> str | None:
        top = triage.suggest(text, k=1)
        return top[0].opd if top and top[0].confidence > 0 else None

    raw = raw_keyword_predictor(categories)
    for name, rows in load_rows(complaints_dir()).items():
        majority = Counter(r.gold for r in rows).most_common(1)[0][0]
        # Warm-up pass so that throughput measures the steady state (stem cache filled).
        cold = evaluate(rows, ours_top)
        res = evaluate(rows, ours_top)
        gated = evaluate(rows, ours)
        base_major = evaluate(rows, constant(majority))
        base_raw = evaluate(rows, raw)
        print(f"\n== {name}: n={res.n}")
        print(f"  ours (top-1 suggestion)      accuracy {res.accuracy:.3f}")
        print_confusion(res)
        print(f"  ours via best() (None=wrong) accuracy {gated.accuracy:.3f}")
        print(
            f"  baseline majority ({majority})  accuracy {base_major.accuracy:.3f}"
            f"  → ours/majority = {res.accuracy / max(base_major.accuracy, 1e-9):.2f}"
        )
        print(
            f"  baseline raw keywords        accuracy {base_raw.accuracy:.3f}"
            f"  → ours/raw = {res.accuracy / max(base_raw.accuracy, 1e-9):.2f}"
        )
        print(
            f"  throughput: {res.n / res.seconds:,.0f} texts/s warm "
            f"({res.seconds / res.n * 1e3:.3f} ms/text; cold pass {cold.seconds:.2f}s)"
        )
        if args.errors:
            shown = 0
            for row in rows:
                pred = ours_top(row.text)
                if pred != row.gold and pred not in row.also and shown < args.errors:
                    shown += 1
                    hits = ", ".join(f"{h.category}:{h.keyword}" for h in triage.explain(row.text))
                    print(f"    [{row.gold}→{pred}] {row.text[:150]!r}\n        {hits}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
