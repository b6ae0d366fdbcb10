"""Summaries against human references: ROUGE on CNN/DailyMail and BBC News, and how often a summary
sentence leans on one that was not picked ("He said…", "But…").

    python bench/summaries.py [--pairs 1000] [--data ../shared/eval/summaries]

Reads the samples from `../shared/eval/summaries/` (see its SOURCE.md) at run time; a clone
without it says so and exits. ROUGE is Google's `rouge-score` (stemming; R-Lsum over sentences
one per line), not a Quorum dependency: `pip install rouge-score` (without it, only the other
figures are printed). Systems: Quorum's `summarize` as posted, and LEAD-3 (the first three
sentences by the same splitter), side by side on the same pairs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import machine_lines, table  # noqa: E402

from bot.articles.summarize import leans_back, split_sentences, summarize  # noqa: E402

DATA = ROOT.parent / "shared" / "eval" / "summaries"
FILES = {"CNN/DailyMail": "cnndm_validation_1000.jsonl", "BBC News": "bbc_news_summary_1000.jsonl"}


def dangling(summary: list[str], text: str) -> int:
    """Sentences of `summary` that open leaning back on a sentence the summary does not hold."""
    sentences = split_sentences(text)
    position = {s: i for i, s in reversed(list(enumerate(sentences)))}
    picked = set(summary)
    count = 0
    for sentence in summary:
        i = position.get(sentence)
        if leans_back(sentence) and not (i and sentences[i - 1] in picked):
            count += 1
    return count


def evaluate(pairs: list[dict], scorer) -> dict[str, dict[str, float]]:
    systems = {
        "quorum": lambda p: summarize(p["article"], title=p.get("title")),
        "lead-3": lambda p: split_sentences(p["article"])[:3],
    }
    results: dict[str, dict[str, float]] = {}
    for name, system in systems.items():
        scores = {"r1": [], "r2": [], "rlsum": []}
        sentences, leaning, cpu = 0, 0, 0.0
        for pair in pairs:
            started = time.process_time()
            summary = system(pair)
            cpu += time.process_time() - started
            sentences += len(summary)
            leaning += dangling(summary, pair["article"])
            if scorer is not None:
                s = scorer.score(pair["reference"], "\n".join(summary))
                scores["r1"].append(s["rouge1"].fmeasure)
                scores["r2"].append(s["rouge2"].fmeasure)
                scores["rlsum"].append(s["rougeLsum"].fmeasure)
        results[name] = {
            **{k: 100 * statistics.fmean(v) for k, v in scores.items() if v},
            "sentences": sentences / len(pairs),
            "dangling": 100 * leaning / max(1, sentences),
            "ms": 1000 * cpu / len(pairs),
        }
    return results


def load(path: Path, limit: int) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for _, line in zip(range(limit), lines, strict=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if not all((args.data / name).is_file() for name in FILES.values()):
        print(f"no benchmark data at {args.data} (it lives outside the repository, see bench/summaries.py)")
        return 0
    try:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    except ImportError:
        print("rouge-score is not installed (pip install rouge-score): ROUGE left out")
        scorer = None
    print("\n".join(machine_lines()))
    for label, name in FILES.items():
        pairs = load(args.data / name, args.pairs)
        results = evaluate(pairs, scorer)
        print(f"\n{label}: {len(pairs)} pairs")
        print(table(
            ["system", "R-1", "R-2", "R-Lsum", "sentences", "leaning back %", "ms/article"],
            [[system, *(f"{r[k]:.2f}" if k in r else "-" for k in ("r1", "r2", "rlsum")),
              f"{r['sentences']:.2f}", f"{r['dangling']:.1f}", f"{r['ms']:.1f}"] for system, r in results.items()],
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
