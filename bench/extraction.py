"""Article extraction on the ScrapingHub/Zyte benchmark: Quorum's extractor against plain
trafilatura, with the benchmark's own metric, page by page.

    python bench/extraction.py [--data ../shared/eval/article-extraction] [--pages 181]

Reads the 181 pages and their ground truth from `../shared/eval/article-extraction/` at run time
(see its SOURCE.md); a clone without it says so and exits. The metric is upstream's: `\\w+`
tokens, multisets of 4-token shingles, TP/FP/FN scaled to 1 per page, precision and recall
averaged over pages (a page with no output counts in recall only), F1 of the two means. The
published trafilatura 2.0.0 output is scored too, to check that this scorer reproduces 0.958.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import machine_lines, table  # noqa: E402

DATA = ROOT.parent / "shared" / "eval" / "article-extraction"
_TOKEN = re.compile(r"\w+")


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n])


def match(true: str, pred: str) -> tuple[float, float, float]:
    """Upstream's `string_shingle_matching`: TP, FP, FN as shares of their sum."""
    t, p = shingles(true), shingles(pred)
    tp = sum((t & p).values())
    fp = sum((p - t).values())
    fn = sum((t - p).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def score(truth: dict[str, str], output: dict[str, str]) -> dict[str, float]:
    precisions, recalls = [], []
    for page, true in truth.items():
        pred = output.get(page, "")
        tp, fp, fn = match(true, pred)
        if pred:
            precisions.append(tp / (tp + fp) if tp + fp else 0.0)
        recalls.append(tp / (tp + fn) if tp + fn else 0.0)
    p = sum(precisions) / len(precisions) if precisions else 0.0
    r = sum(recalls) / len(recalls)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def page_f1(true: str, pred: str) -> float:
    tp, fp, fn = match(true, pred)
    if not pred or tp == 0:
        return 0.0
    p, r = tp / (tp + fp), tp / (tp + fn)
    return 2 * p * r / (p + r)


def quorum(html: str, url: str) -> str:
    from bot.articles.extract import extract_article
    from bot.articles.models import ExtractError

    try:
        return extract_article(html, url).text
    except ExtractError:
        return ""


def plain_trafilatura(html: str, url: str) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url) or ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--pages", type=int, default=181)
    parser.add_argument("--losses", type=int, default=15, help="pages listed where Quorum does worse or better")
    args = parser.parse_args(argv)
    truth_file = args.data / "ground-truth.json"
    if not truth_file.is_file():
        print(f"no benchmark data at {args.data} (it lives outside the repository, see bench/extraction.py)")
        return 0
    truth_all = json.loads(truth_file.read_text(encoding="utf-8"))
    pages = sorted(truth_all)[: args.pages]
    truth = {p: truth_all[p]["articleBody"] for p in pages}
    outputs: dict[str, dict[str, str]] = {"quorum": {}, "trafilatura (defaults)": {}}
    cpu = dict.fromkeys(outputs, 0.0)
    for page in pages:
        html = gzip.decompress((args.data / "html" / f"{page}.html.gz").read_bytes()).decode("utf-8", "replace")
        url = truth_all[page].get("url") or "https://example.org/"
        for name, system in (("quorum", quorum), ("trafilatura (defaults)", plain_trafilatura)):
            started = time.process_time()
            outputs[name][page] = system(html, url)
            cpu[name] += time.process_time() - started
    published = args.data / "published-output" / "trafilatura.json"
    if published.is_file():
        stored = json.loads(published.read_text(encoding="utf-8"))["output"]
        outputs["trafilatura 2.0.0 (published output)"] = {
            p: (stored.get(p) or {}).get("articleBody") or "" for p in pages
        }
    print("\n".join(machine_lines()))
    print(f"pages   : {len(pages)}")
    rows = []
    for name, output in outputs.items():
        s = score(truth, output)
        refused = sum(1 for p in pages if not output[p])
        rows.append([name, f"{s['f1']:.4f}", f"{s['precision']:.4f}", f"{s['recall']:.4f}", str(refused),
                     f"{1000 * cpu[name] / len(pages):.0f}" if name in cpu else "-"])
    print(table(["system", "F1", "precision", "recall", "no output", "ms/page"], rows))
    base = "trafilatura (defaults)"
    diffs = sorted(
        (page_f1(truth[p], outputs["quorum"][p]) - page_f1(truth[p], outputs[base][p]), p) for p in pages
    )
    better = sum(1 for d, _ in diffs if d > 0.005)
    worse = sum(1 for d, _ in diffs if d < -0.005)
    print(f"\nquorum against {base}, per page F1: better on {better}, worse on {worse}, the same on "
          f"{len(pages) - better - worse}")
    print(table(
        ["page", "quorum F1", "trafilatura F1", "difference", "url"],
        [[p[:12], f"{page_f1(truth[p], outputs['quorum'][p]):.2f}", f"{page_f1(truth[p], outputs[base][p]):.2f}",
          f"{d:+.2f}", (truth_all[p].get("url") or "")[:60]] for d, p in diffs[: args.losses] if d < -0.005],
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
