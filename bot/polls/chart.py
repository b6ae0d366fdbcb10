"""A bar chart of a poll's results as PNG bytes (matplotlib; call it off the event loop)."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Collection, Sequence

from .tally import Tally


def load_matplotlib() -> None:
    """Import what rendering needs (about 0.25 s). `results_chart` does it on first use; a
    long-running bot does it at startup, so the imported objects can be frozen with the rest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.figure


def results_chart(
    question: str,
    options: Sequence[str],
    tally: Tally,
    removed: Collection[int] = (),
    highlight: bool = True,
) -> bytes:
    """Answers removed by /poll edit are left out (the others keep their numbers); without
    `highlight` (a missed quorum) no bar is coloured as the winner's."""
    # Imported here: matplotlib takes a noticeable moment to import, and only closing needs it.
    load_matplotlib()
    from matplotlib.figure import Figure

    shown = [i for i in range(len(options)) if i not in removed]
    count = len(shown)
    labels = [textwrap.shorten(f"{i + 1}. {options[i]}", 48, placeholder="…") for i in shown]
    leaders = set(tally.leaders()) if highlight else set()
    colors = ["#57F287" if i in leaders else "#5865F2" for i in shown]
    every = tally.percentages()
    percentages = [every[i] for i in shown]
    counts = [tally.counts[i] for i in shown]

    # Figure (not pyplot): no global state, so concurrent renders in threads are safe.
    fig = Figure(figsize=(8, 1.2 + 0.42 * count), dpi=100)
    ax = fig.add_subplot()
    positions = list(range(count))[::-1]  # first answer on top
    ax.barh(positions, counts, color=colors, height=0.65)
    # parse_math=False everywhere: answers are member text, and "$…$" in it would otherwise be
    # read as TeX (a malformed formula raises at draw time and the announcement would fail).
    ax.set_yticks(positions, labels, fontsize=9, parse_math=False)
    top = max(counts, default=0) or 1
    ax.set_xlim(0, top * 1.22)
    for y, n, pct in zip(positions, counts, percentages, strict=True):
        ax.text(n + top * 0.01, y, f"{n} ({pct}%)", va="center", fontsize=9, parse_math=False)
    ax.set_title(textwrap.shorten(question, 90, placeholder="…"), fontsize=11, loc="left", parse_math=False)
    ax.spines[["top", "right"]].set_visible(False)
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
