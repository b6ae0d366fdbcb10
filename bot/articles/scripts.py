"""What differs between writing systems, for counting and splitting text: Chinese and Japanese
write without spaces, so their characters are counted where other scripts count words."""

from __future__ import annotations

import re

# Han ideographs (with extension A and compatibility forms), hiragana, katakana and half-width
# katakana: scripts written without spaces between words. (Korean puts spaces between words.)
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_CJK_CHAR = re.compile(f"[{CJK}]")
# A word as the summariser has always counted one: letters and digits, with inner apostrophes.
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def word_count(text: str) -> int:
    """Words, counting each Chinese or Japanese character as one (their reading speed per
    character is close to English's per word, about 250 a minute). Linear, and counted
    without building a list (a 5 MB page of Han would otherwise hold millions of strings)."""
    rest = _CJK_CHAR.sub(" ", text)
    return (len(text) - len(_CJK_CHAR.sub("", text))) + sum(1 for _ in _WORD.finditer(rest))


def has_cjk(text: str) -> bool:
    return _CJK_CHAR.search(text) is not None
