"""The cost of the worst text members and pages can send, at growing sizes: linear or not?

    python bench/hostile_text.py

Each input path that reads member or page text, fed what is worst for its algorithm, at sizes
growing 4x a step: if the work is linear, each step costs about 4x the one before. CPU time of
one call (the best of 3), in this process. Prints figures; asserts nothing.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.articles.summarize import split_sentences, summarize  # noqa: E402
from bot.markdown import escape  # noqa: E402
from bot.polls.validation import PollInputError, parse_options  # noqa: E402


def cpu(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def mr(n: int) -> str:
    return "Opening words here. " + "Mr. " * n + "Closing sentence ends here."


def paragraph(n: int) -> str:
    return " ".join(f"Sentence number {i} says something quite ordinary about the topic." for i in range(n))


def dense(n: int) -> str:
    """n sentences drawn from one small vocabulary: every pair of sentences shares words."""
    rng = random.Random(2)
    vocab = ["".join(p) for p in itertools.product("bcdfghjklmnpqrstvwxz", repeat=2)][:500]
    return "\n\n".join("Alpha " + " ".join(rng.sample(vocab, 80)) + f" qq{k}." for k in range(n))


def options(n: int) -> str:
    """25 answers (the most a poll has) of n characters each, full-width and zero-width
    characters throughout, the last two the same after normalisation: every answer is
    normalised before the duplicate is refused. Discord caps the option at 6,000 characters."""
    answers = [f"{i:02d}" + "Ｙｅｓ\u200b" * ((n - 2) // 4) for i in range(24)]
    return "|".join([*answers, answers[-1].replace("\u200b", "")])


def attempt_options(text: str) -> None:
    try:
        parse_options(text)
    except PollInputError:
        pass


CASES: list[tuple[str, Callable[[int], str], Callable[[str], object], list[int]]] = [
    ('summarize: "Mr. " x n', mr, lambda t: summarize(t, title="T"), [1_000, 4_000, 16_000, 64_000]),
    ("split_sentences: n sentences ending in '.'", paragraph, split_sentences, [1_875, 7_500, 30_000]),
    ("split_sentences: a run of n full stops", lambda n: "Start here now. " + "." * n + "x", split_sentences,
     [22_500, 90_000, 360_000]),
    ("summarize: n sentences ending in '.'", paragraph, lambda t: summarize(t, title="T"), [1_875, 7_500, 30_000]),
    ("summarize: n sentences sharing every word", dense, lambda t: summarize(t, title="T"), [25, 100, 400, 1_600]),
    ("escape: n markdown characters", lambda n: "*[<@#>_`|~\\" * (n // 11), escape, [11_000, 44_000, 176_000]),
    ("parse_options: 25 answers of n look-alike chars", options, attempt_options, [50, 200]),
]


def main() -> int:
    print(f"{'input':<45} {'size':>10} {'chars':>11} {'CPU ms':>9} {'x prev':>7}")
    for name, make, run, sizes in CASES:
        previous = None
        for size in sizes:
            text = make(size)
            seconds = cpu(lambda text=text, run=run: run(text))
            ratio = f"{seconds / previous:.1f}" if previous else ""
            print(f"{name:<45} {size:>10,} {len(text):>11,} {seconds * 1000:>9.1f} {ratio:>7}")
            previous = seconds or 1e-9
    return 0


if __name__ == "__main__":
    sys.exit(main())
