"""Summaries of an article's body: extractive and offline by default, optionally from a chat model.

`summarize` picks 3–5 of the article's own sentences, copied verbatim, shown in article order. Plain
TextRank/LexRank (graph centrality) scores below simply taking the lead sentences on news (CNN/DailyMail
ROUGE-1 ≈ 33–36 against ≈ 40), because news front-loads its point; taking only the lead misses the rest.
So the ranking combines the two:

1. LexRank-style centrality: TF-IDF cosine between sentences, a personalised PageRank by power
   iteration whose teleport distribution is the position prior (a random reader who restarts jumps
   back to the top of the article more often than to its end).
2. The position prior again, added to the score, decaying with the sentence's place in the article
   (and a small bonus for opening a paragraph), plus a small bonus for sharing words with the title.
3. Redundancy control (MMR): each next pick is penalised by its similarity to what is already picked,
   and a near-repeat of a picked sentence is skipped outright.

Pure Python, no model, no data files, deterministic (ties go to the earlier sentence).

`llm_summary` asks any OpenAI-compatible chat endpoint instead; it raises SummaryError on any failure,
and the caller falls back to `summarize`.
"""

from __future__ import annotations

import asyncio
import json
import math
import re

import aiohttp
import numpy as np

from .scripts import CJK, has_cjk, word_count

# --- sentence splitting -------------------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    """
    mr mrs ms mx dr prof sr jr st mt ft rev hon gen col lt sgt capt cmdr adm gov sen rep pres supt inc ltd
    co corp llc plc bros dept univ assn vs etc cf approx jan feb apr jun jul aug sep sept oct nov dec
    mon tue tues wed thu thur thurs fri
    """.split()  # noqa: SIM905 - a word list reads better as text
)
# Abbreviations only before a number ("No. 5", "Fig. 2", "pp. 10"): elsewhere they are words.
_NUMBER_ABBREVIATIONS = frozenset(
    "no nos fig figs vol vols pp art sec ch para op mar".split()  # noqa: SIM905
)
# Marks that end a sentence when a space follows: full stop, question and exclamation marks and
# the ellipsis (Latin, Cyrillic, Greek), the Arabic question mark, the Devanagari danda.
_SPACED_ENDS = ".!?…؟।॥"
# Marks that end a sentence with or without a space after them: the ideographic and full-width
# full stop, question and exclamation marks (Chinese, Japanese; Korean uses either kind).
_UNSPACED_ENDS = "。．！？｡"
_CLOSERS = "”’\"')\\]»」』）】〉》"
# A run of ending marks, then closing quotes/brackets. The lookbehinds start a match only at the
# first mark of a run: without them, each position in a run of 90,000 dots re-scanned the rest
# of the run (quadratic: 17 s for 40,000).
# Greek asks with ";" (or U+037E, which normalises to it): a question mark only after Greek.
_GREEK = "\u0370-\u03ff\u1f00-\u1fff"
_BOUNDARY = re.compile(
    f"(?:(?<![{_SPACED_ENDS}])[{_SPACED_ENDS}]+|(?<=[{_GREEK}])[;\u037e])[{_CLOSERS}]*(?=\\s)"
    f"|(?P<unspaced>(?<![{_UNSPACED_ENDS}])[{_UNSPACED_ENDS}]+[{_CLOSERS}]*)"
)
# The space and opening quotes or brackets between a mark and what may start the next sentence.
_STARTER = re.compile(r"""\s+[“‘"'(\[«„¿¡「『（【]*""")
_TOKEN_BEFORE = re.compile(r"([\w.]+)\.[”’\"')\]]*$")
_END_PUNCT = re.compile(f"(?:[{_SPACED_ENDS}{_UNSPACED_ENDS}]|(?<=[{_GREEK}])[;\u037e])[{_CLOSERS}]*$")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_CJK_RUN = re.compile(f"[{CJK}]+")
_OPENERS = "“‘\"'([«„¿¡「『（【"

MIN_WORDS = 6


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, each an exact slice of it (stripped), in order; paragraphs never merge."""
    return [sentence for sentence, _ in _split(text)]


def _split(text: str) -> list[tuple[str, bool]]:
    """(sentence, whether it opens its paragraph) for each sentence of `text`.

    Linear in the text: every full stop looks only at a bounded window before it and at the one
    character after the following space (slicing the paragraph up to or after each full stop
    made a page of "Mr. Mr. Mr. …" quadratic: 62 s for 64 KB).
    """
    sentences: list[tuple[str, bool]] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        start, first = 0, True
        for match in _BOUNDARY.finditer(paragraph):
            end = match.end()
            if match.group("unspaced") is not None:
                before = paragraph[match.start() - 1 : match.start()]
                if not _ends_unspaced(match.group(0), before, paragraph[end : end + 1]):
                    continue  # 「…。」と言った, ３．５, Ｕ．Ｓ．, Yahoo！Japan: the sentence goes on
                sentence = paragraph[start:end].strip()  # 。！？ end a sentence, with no space needed
                if sentence:
                    sentences.append((sentence, first))
                    first = False
                start = end
                continue
            starter = _STARTER.match(paragraph, end)
            if starter is None or not _may_start(paragraph[starter.end() : starter.end() + 1]):
                continue  # "... e.g. the", "3.5", "U.S. officials said" followed by lower case
            mark = match.group(0)
            if mark.startswith(".") and not mark.startswith(".."):
                window = max(start, end - _ABBREVIATION_WINDOW)
                following = paragraph[starter.end() : starter.end() + 1]
                if _is_abbreviation(paragraph[window:end], following, cut=window > start):
                    continue
            sentence = paragraph[start:end].strip()
            if sentence:
                sentences.append((sentence, first))
                first = False
            start = end
        rest = paragraph[start:].strip()
        if rest:
            sentences.append((rest, first))
    return sentences


_LATIN_OR_DIGIT = re.compile(r"[0-9A-Za-z０-９Ａ-Ｚａ-ｚ]")


def _ends_unspaced(mark: str, before: str, following: str) -> bool:
    """Whether an ideographic or full-width mark (run) ends the sentence, given the characters
    around it. Not after a closing quote the sentence goes on from (「こんにちは。」と彼は言った。);
    a full-width ．！？ (not 。) also not between Latin letters or digits (３．５, Ｕ．Ｓ．, Yahoo！Japan)."""
    if not following:
        return True
    if mark[-1] in _CLOSERS and not (following.isspace() or following in _OPENERS):
        return False
    if "。" in mark or "｡" in mark:
        return True
    if _LATIN_OR_DIGIT.match(following):
        return False
    return not (mark[0] == "．" and before and _LATIN_OR_DIGIT.match(before))


def _may_start(character: str) -> bool:
    """Whether a sentence may begin with `character`: a digit, or a letter that is not lower
    case (a capital in Latin, Cyrillic or Greek; any letter of a script without case, such as
    Arabic, Hebrew, Devanagari or Han)."""
    return character.isdigit() or (character.isalpha() and not character.islower())


# The longest word before a full stop worth checking as an abbreviation ("J.R.R.", "Sept.").
_ABBREVIATION_WINDOW = 40


def _is_abbreviation(candidate: str, following: str, *, cut: bool = False) -> bool:
    """Whether the full stop ending `candidate` belongs to an abbreviation rather than ending a sentence.

    `cut`: `candidate` is the tail of a longer text, so a word reaching its start may be longer.
    """
    match = _TOKEN_BEFORE.search(candidate)
    if not match or (cut and match.start() == 0):
        return False
    original = match.group(1)
    token = original.lower()
    if token in _ABBREVIATIONS:
        return True
    if token in _NUMBER_ABBREVIATIONS:
        return following.isdigit()
    parts = token.split(".")
    if len(parts) > 1 and all(part.isalpha() and len(part) <= 2 for part in parts):
        return True  # U.S., e.g., Ph.D., J.R.R.
    # A lone initial ("John F. Kennedy"), but not the word "I" or "A" ending a sentence.
    return len(original) == 1 and original.isupper() and original not in ("I", "A")


# Words that open a sentence leaning on the one before it: pronouns and determiners pointing
# back, and connectives continuing an argument ("He said…", "But that…"). Such a sentence read
# alone in a summary misleads, so it is picked only together with the sentence before it.
_LEANING = frozenset(
    """
    he she they it its his her hers their theirs him them this that these those such
    but however also and or so yet still though although nevertheless nonetheless moreover
    furthermore besides instead meanwhile then thus hence therefore consequently likewise
    similarly otherwise indeed anyway
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_FIRST_WORD = re.compile(r"""[“‘"'(\[]*([^\W\d_]+)""")


def leans_back(sentence: str) -> bool:
    """Whether `sentence` opens with a word that points back to an earlier sentence."""
    match = _FIRST_WORD.match(sentence)
    return bool(match) and match.group(1).casefold() in _LEANING


# --- ranking ------------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
    during each even few for from further get gets got had hadn't has hasn't have haven't having he he'd
    he'll he's her here here's hers herself him himself his how how's however i i'd i'll i'm i've if in into
    is isn't it it's its itself just let's like made make many may me more most much must mustn't my myself
    no nor not now of off on once one only or other ought our ours ourselves out over own really right said
    same say says see seen she she'd she'll she's should shouldn't so some still such than that that's the
    their theirs them themselves then there there's these they they'd they'll they're they've thing things
    think this those through to too two under until up upon us very was wasn't way we we'd we'll we're we've
    well were weren't what what's when when's where where's which while who who's whom why why's will with
    won't would wouldn't yes yet you you'd you'll you're you've your yours yourself yourselves also just
    back new first last year years time
    """.split()  # noqa: SIM905 - a word list reads better as text
)

MAX_NODES = 400  # sentences ranked at most (the first ones); keeps a 1 MB page well inside the CPU budget
# The ranker reads at most this much of the article (its start: news puts its point first). With the
# two caps below it bounds the ranking's cost whatever the page holds.
MAX_TEXT_CHARS = 100_000
# A term in more sentences than this links them all pairwise (quadratic work) while saying little
# about any of them, like a stop word: it is left out of the similarity graph. No effect on
# articles of up to this many sentences.
MAX_POSTINGS = 64
# Strongest neighbours per sentence that PageRank follows; bounds each iteration at n·K edges.
MAX_NEIGHBOURS = 32
DAMPING = 0.85
CENTRALITY_WEIGHT = 0.55
POSITION_WEIGHT = 0.35
TITLE_WEIGHT = 0.10
# How many sentences a summary has, chosen on both benchmarks (bench/summaries.py, 1,000 pairs
# each, docs/performance.md): 3 is the only length that beats LEAD-3 on ROUGE-1, -2 and -Lsum on
# both CNN/DailyMail (short references: 2 scores higher there, 4 falls below LEAD-3) and BBC
# News (long references: 2 falls below LEAD-3). Three sentences also read well in an embed.
POSTED_SENTENCES = 3
MMR_LAMBDA = 0.7  # relevance against novelty
REDUNDANT = 0.5  # a candidate this similar (cosine) to a picked sentence is skipped
TITLE_LIKE = 0.8  # a sentence this similar to the title is the title again (or a caption of it)


def summarize(
    text: str,
    *,
    title: str | None = None,
    min_sentences: int = POSTED_SENTENCES,
    max_sentences: int = POSTED_SENTENCES,
    max_chars: int = 3800,
) -> list[str]:
    """`POSTED_SENTENCES` sentences of `text` (or between min and max, more for longer texts),
    verbatim, in article order, together (joined by spaces) within max_chars.

    Fewer when the text has fewer usable sentences; [] for an empty text.
    """
    split = _split(_bounded(text, MAX_TEXT_CHARS))
    sentences = [sentence for sentence, _ in split]
    if not sentences:
        return []
    title_vector_tokens = _tokens(title) if title else []
    title_key = _norm(title) if title else None

    strict = [i for i, s in enumerate(sentences) if len(s) <= max_chars and _eligible(s, title_key)]
    candidates = strict or [
        i for i, s in enumerate(sentences)
        if _WORD.search(s) and len(s) <= max_chars and _norm(s) != title_key and not s.startswith("|")
    ]  # ("| … |" is a table row: kept in the article, never a summary sentence)
    if not candidates:
        return []
    candidates = candidates[:MAX_NODES]

    tokens = [_tokens(sentences[i]) for i in candidates]
    vectors, idf = _tfidf(tokens)
    title_vector = _vector(title_vector_tokens, idf) if title_vector_tokens else {}

    n = len(candidates)
    prior = [_position_prior(i, len(sentences), split[i][1]) for i in candidates]
    similarity = _similarities(vectors)
    centrality = _pagerank(similarity, prior)

    scores = []
    top_centrality = max(centrality) or 1.0
    top_prior = max(prior) or 1.0
    for k in range(n):
        title_sim = _cosine(vectors[k], title_vector) if title_vector else 0.0
        scores.append(
            CENTRALITY_WEIGHT * centrality[k] / top_centrality
            + POSITION_WEIGHT * prior[k] / top_prior
            + TITLE_WEIGHT * min(title_sim / TITLE_LIKE, 1.0)
        )
        if title_sim >= TITLE_LIKE:
            scores[-1] = -math.inf  # the title (or its caption) repeated in the body

    target = max(min_sentences, min(max_sentences, math.ceil(n / 6)))
    target = min(target, max_sentences, n)
    # A sentence leaning back ("He said…") waits for the sentence before it, when that one could
    # be picked at all (the first sentence, or one after a heading, leans on nothing we have).
    candidate_set = set(candidates)
    leaning = [leans_back(sentences[i]) and i - 1 in candidate_set for i in candidates]
    picked = _pick(sentences, candidates, scores, similarity, leaning, target, max_chars)
    if len(picked) < min(target, n):  # the rule left too few: a summary, even an imperfect one
        picked = _pick(sentences, candidates, scores, similarity, [False] * n, target, max_chars)
    return [sentences[candidates[k]] for k in sorted(picked)]


def _pick(
    sentences: list[str],
    candidates: list[int],
    scores: list[float],
    similarity: list[dict[int, float]],
    leaning: list[bool],
    target: int,
    max_chars: int,
) -> list[int]:
    """Maximal marginal relevance: the best-scoring sentences that don't repeat each other."""
    picked: list[int] = []
    picked_sentences: set[int] = set()
    used = 0
    remaining = [k for k in range(len(candidates)) if scores[k] != -math.inf]
    while remaining and len(picked) < target:
        best, best_value = None, -math.inf
        for k in remaining:
            if leaning[k] and candidates[k] - 1 not in picked_sentences:
                continue  # "He said…" without the sentence it leans on: not yet, maybe after it
            overlap = max((similarity[k].get(p, 0.0) for p in picked), default=0.0)
            if overlap >= REDUNDANT:
                continue
            value = MMR_LAMBDA * scores[k] - (1 - MMR_LAMBDA) * overlap
            if value > best_value:  # strict: ties keep the earlier sentence
                best, best_value = k, value
        if best is None:
            break
        remaining.remove(best)
        cost = len(sentences[candidates[best]]) + (1 if picked else 0)
        if used + cost > max_chars:
            continue  # too long to fit what is left; a shorter one may still
        picked.append(best)
        picked_sentences.add(candidates[best])
        used += cost
    return picked


def _bounded(text: str, limit: int) -> str:
    """The start of `text` up to `limit` characters, cut after a whole paragraph where there is one."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = head.rfind("\n\n")
    return head[:cut] if cut > limit // 2 else head


def _eligible(sentence: str, title_key: str | None) -> bool:
    if word_count(sentence) < MIN_WORDS:
        return False
    if title_key is not None and _norm(sentence) == title_key:
        return False
    if not _END_PUNCT.search(sentence):
        return False  # headings, list items, captions and credits rarely end like a sentence
    if not (_may_start(sentence[0]) or sentence[0] in _OPENERS):
        return False  # starts mid-thought: the tail of a split quotation or a broken line
    return not _quote_fragment(sentence)


def _quote_fragment(sentence: str) -> bool:
    """A piece of a multi-sentence quotation: an opening quote never closed or a closing one never opened."""
    for opening, closing in (("“", "”"), ("「", "」"), ("『", "』"), ("«", "»")):
        if sentence.count(opening) != sentence.count(closing):
            return True
    if sentence.count('"') % 2:
        return True
    # Quoted text making up almost all of the sentence with no attribution reads as a fragment too.
    quoted = sum(len(m) for m in re.findall(r"“[^”]*”|\"[^\"]*\"", sentence))
    return quoted > 0.9 * len(sentence) and len(sentence) - quoted < 3 and sentence[-1] not in '”"'


def _norm(text: str) -> str:
    return " ".join(w.casefold() for w in _WORD.findall(text))


def _tokens(text: str) -> list[str]:
    out = []
    for word in _WORD.findall(text):
        if has_cjk(word):  # no spaces between words: pairs of characters stand in for words
            for run in _CJK_RUN.findall(word):
                out.extend(run[i : i + 2] for i in range(max(1, len(run) - 1)))
            continue
        word = word.casefold().replace("’", "'")
        if word in _STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        out.append(_stem(word))
    return out


def _stem(word: str) -> str:
    """A light suffix stripper: enough to match 'communities'/'community', 'growing'/'growth' no."""
    if word.endswith("'s"):
        word = word[:-2]
    for suffix, replacement in (("ies", "y"), ("sses", "ss"), ("ness", ""), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + replacement
    return word


def _tfidf(documents: list[list[str]]) -> tuple[list[dict[str, float]], dict[str, float]]:
    df: dict[str, int] = {}
    for tokens in documents:
        for term in dict.fromkeys(tokens):
            df[term] = df.get(term, 0) + 1
    n = len(documents)
    idf = {term: math.log((1 + n) / (1 + count)) + 1.0 for term, count in df.items()}
    return [_vector(tokens, idf) for tokens in documents], idf


def _vector(tokens: list[str], idf: dict[str, float]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for term in tokens:
        counts[term] = counts.get(term, 0) + 1
    vector = {term: (1.0 + math.log(c)) * idf.get(term, 1.0) for term, c in counts.items()}
    norm = math.sqrt(sum(v * v for v in vector.values()))
    return {term: v / norm for term, v in vector.items()} if norm else {}


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(term, 0.0) for term, v in a.items())


def _similarities(vectors: list[dict[str, float]]) -> list[dict[int, float]]:
    """Sparse cosine matrix through an inverted index: only pairs that share a term are touched."""
    postings: dict[str, list[tuple[int, float]]] = {}
    for k, vector in enumerate(vectors):
        for term, weight in vector.items():
            postings.setdefault(term, []).append((k, weight))
    rows: list[dict[int, float]] = [{} for _ in vectors]
    for entries in postings.values():
        if len(entries) > MAX_POSTINGS:
            continue
        for x in range(len(entries)):
            i, wi = entries[x]
            row = rows[i]
            for y in range(x + 1, len(entries)):
                j, wj = entries[y]
                row[j] = row.get(j, 0.0) + wi * wj
    for i, row in enumerate(rows):  # mirror the upper triangle
        for j, value in list(row.items()):
            if j > i:
                rows[j][i] = value
    return rows


def _pagerank(similarity: list[dict[int, float]], prior: list[float], iterations: int = 100) -> list[float]:
    """Weighted PageRank over the similarity graph, teleporting by the position prior.

    As a matrix product (numpy): the same iteration as a loop over edges, which spent 56 of a
    100 KB page's 100 ms in Python; at most MAX_NODES² (400² = 160,000) weights."""
    n = len(similarity)
    total_prior = sum(prior) or 1.0
    teleport = np.array(prior, dtype=float) / total_prior
    # transition[j, i]: the share of i's rank that flows to j (i's edges, weighted, normalised).
    transition = np.zeros((n, n))
    has_edges = np.zeros(n, dtype=bool)
    for i, row in enumerate(similarity):
        edges = row.items() if len(row) <= MAX_NEIGHBOURS else _strongest(row, MAX_NEIGHBOURS)
        total = sum(w for _, w in edges)
        if total == 0.0:
            continue
        has_edges[i] = True
        for j, weight in edges:
            transition[j, i] = weight / total
    rank = teleport.copy()
    for _ in range(iterations):
        dangling = rank[~has_edges].sum()
        new = (1 - DAMPING + DAMPING * dangling) * teleport + DAMPING * (transition @ rank)
        delta = float(np.abs(new - rank).sum())
        rank = new
        if delta < 1e-10:
            break
    return rank.tolist()


def _strongest(row: dict[int, float], k: int) -> list[tuple[int, float]]:
    """The `k` heaviest edges of a row (ties to the earlier sentence)."""
    return sorted(row.items(), key=lambda edge: (-edge[1], edge[0]))[:k]


def _position_prior(index: int, total: int, opens_paragraph: bool) -> float:
    """News puts its point first: weight falls off with the sentence's place, gently, never to zero."""
    relative = index / max(total - 1, 1)
    value = 1.0 / (1.0 + index / 3.0) ** 0.7 + 0.15 * (1.0 - relative)
    return value * (1.15 if opens_paragraph else 1.0)


# --- a chat model's summary ---------------------------------------------------------------------

SYSTEM_PROMPT = (
    "You summarise news and blog articles for a community chat. Write a neutral, factual summary of the "
    "article in 3 to 5 sentences of plain prose: no headings, no bullet points, no opinions of your own, "
    "nothing that is not in the article. Answer with the summary only."
)
MAX_PROMPT_CHARS = 16_000  # the start of a long article is enough, and keeps the request small
MAX_RESPONSE_BYTES = 1_000_000


class SummaryError(Exception):
    """The chat model gave no usable summary; the caller falls back to the extractive one."""


async def llm_summary(
    text: str,
    *,
    title: str | None,
    api_url: str,
    api_key: str | None,
    model: str,
    timeout: float = 20.0,
    max_chars: int = 3800,
) -> str:
    """A 3–5 sentence summary from the OpenAI-compatible endpoint at `api_url` (…/v1 for most servers)."""
    endpoint = api_url.rstrip("/") + "/chat/completions"
    article = text[:MAX_PROMPT_CHARS]
    user = f"Title: {title}\n\n{article}" if title else article
    payload = {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}],
        "temperature": 0.2,
        "max_tokens": 400,
        "stream": False,
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        async with (
            asyncio.timeout(timeout),
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(endpoint, json=payload, headers=headers) as response,
        ):
            if response.status != 200:
                raise SummaryError(f"the summary API answered HTTP {response.status}")
            body = await _read_capped(response)
    except TimeoutError:
        raise SummaryError(f"the summary API did not answer within {timeout:g} s") from None
    except aiohttp.ClientError as error:
        raise SummaryError(f"the summary API could not be reached ({type(error).__name__})") from None
    try:
        data = json.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise SummaryError("the summary API's answer was not the expected JSON") from None
    if not isinstance(content, str):
        raise SummaryError("the summary API's answer had no text")
    summary = re.sub(r"<think>.*?</think>", "", content, flags=re.DOTALL).strip()
    summary = re.sub(r"\s+", " ", summary)
    if not summary:
        raise SummaryError("the summary API answered with an empty summary")
    if len(summary) > max_chars:
        summary = summary[: max_chars - 1].rsplit(" ", 1)[0] + "…"
    return summary


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise SummaryError("the summary API's answer was too large")
        chunks.append(chunk)
    return b"".join(chunks)
