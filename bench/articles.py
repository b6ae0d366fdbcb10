"""Extraction + summary speed on realistic pages: pages/s and CPU ms per page.

    python bench/articles.py [--repeat N]

Pages: the Kubernetes fixture as it is, and pages built from it to about 100 KB and 1 MB
(more article paragraphs, comment threads, related-article sidebars and inline scripts, the
way big news pages grow). Prints figures; asserts nothing. Target: < 300 ms CPU for 100 KB.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.articles.extract import extract_article  # noqa: E402
from bot.articles.summarize import summarize  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "kubernetes_article.html"


def grow(html: str, target: int) -> str:
    """The fixture grown to about `target` bytes with article text and page furniture."""
    paragraphs = re.findall(r"<p>(?:(?!</p>).)*</p>", html, flags=re.S)
    body_extra: list[str] = []
    furniture: list[str] = []
    n = 0
    while len(html) + sum(map(len, body_extra)) + sum(map(len, furniture)) < target:
        n += 1
        body_extra.append(paragraphs[n % len(paragraphs)].replace("Kubernetes", f"Kubernetes ({n})"))
        furniture.append(
            f'<div class="comment"><span class="user">reader{n}</span><p>Comment {n}: great episode, '
            f"thanks for sharing!</p></div>"
            f'<li class="related"><a href="/related/{n}">Related story number {n} about cloud native</a></li>'
            f"<script>window.__data_{n} = {{'id': {n}, 'tags': ['k8s', 'oss']}};</script>"
        )
    html = html.replace("</article>", "".join(body_extra) + "</article>", 1)
    return html.replace("</body>", '<aside class="comments">' + "".join(furniture) + "</aside></body>", 1)


def measure(html: str, repeat: int) -> tuple[float, float, int]:
    cpu: list[float] = []
    wall: list[float] = []
    sentences = 0
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        article = extract_article(html, "https://example.org/article")
        sentences = len(summarize(article.text, title=article.title))
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu) * 1000, statistics.median(wall) * 1000, sentences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per page (median reported)")
    args = parser.parse_args()
    base = FIXTURE.read_text(encoding="utf-8")
    pages = {"fixture": base, "100 KB": grow(base, 100_000), "1 MB": grow(base, 1_000_000)}
    extract_article(base, "https://example.org/warm-up")  # imports and caches outside the timing
    print(f"{'page':<8} {'bytes':>10} {'CPU ms':>8} {'wall ms':>8} {'pages/s':>8} {'sentences':>9}")
    for name, html in pages.items():
        cpu, wall, sentences = measure(html, args.repeat)
        print(f"{name:<8} {len(html.encode()):>10,} {cpu:>8.1f} {wall:>8.1f} {1000 / wall:>8.1f} {sentences:>9}")
        if name == "100 KB":
            verdict = "met" if cpu < 300 else "NOT met"
            print(f"         target: < 300 ms CPU for a 100 KB page: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
