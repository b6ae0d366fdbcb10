"""Sentences, word counts and summaries in every script a community may write in: each summary
sentence is one sentence of the text, verbatim, in Russian, Greek, Japanese, Chinese, Korean,
Arabic, Hebrew and Hindi as in English."""

from __future__ import annotations

import pytest

from bot.articles.scripts import word_count
from bot.articles.summarize import split_sentences, summarize

# Each text as its sentences; joined with a space, or with nothing where the script writes
# sentences without spaces between them (Chinese, Japanese).
TEXTS = {
    "russian": (" ", [
        "Городской совет утвердил новый план развития общественного транспорта.",
        "По словам мэра, первые автобусы на электрической тяге выйдут на маршруты уже весной.",
        "Жители северных районов давно жаловались на редкие рейсы и переполненные остановки.",
        "Теперь интервал движения сократится вдвое!",
        "Проект обойдётся городскому бюджету примерно в 2,5 млрд рублей, то есть т. е. недёшево.",
        "Что думают об этом независимые эксперты?",
        "Они считают, что объявленные сроки выглядят слишком оптимистично.",
    ]),
    "greek": (" ", [
        "Το δημοτικό συμβούλιο ενέκρινε χθες το νέο σχέδιο για τις δημόσιες συγκοινωνίες.",
        "Σύμφωνα με τον δήμαρχο, τα πρώτα ηλεκτρικά λεωφορεία θα κυκλοφορήσουν την άνοιξη.",
        "Οι κάτοικοι των βόρειων συνοικιών παραπονιούνταν εδώ και χρόνια για τα αραιά δρομολόγια.",
        "Πόσο θα κοστίσει τελικά όλο αυτό το μεγάλο έργο;",
        "Ο προϋπολογισμός του έργου φτάνει συνολικά τα 40 εκατομμύρια ευρώ.",
    ]),
    "japanese": ("", [
        "東京都は来年度から、すべての公立小学校で給食を無償化すると発表した。",
        "対象となる児童は約六十万人にのぼる。",
        "都の担当者は「子育て世帯の負担を少しでも減らしたい」と話している。",
        "財源については、都の予算から約三百億円を充てる見込みだ。",
        "一方で、私立学校に通う子どもへの支援はどうなるのか？",
        "保護者からは不安の声も上がっている。",
    ]),
    "chinese": ("", [
        "市政府昨天宣布，明年起全市公交车将全部更换为电动车。",
        "这项计划预计耗资约二十亿元。",
        "市民对此反应不一，有人担心票价会因此上涨。",
        "交通局表示，票价在三年内不会调整！",
        "专家认为，这一举措将显著改善城市的空气质量。",
    ]),
    "korean": (" ", [
        "서울시는 내년부터 모든 시내버스를 전기버스로 교체한다고 어제 공식적으로 밝혔다.",
        "이 사업에는 약 2조 원의 예산이 들 것으로 보인다.",
        "시민들의 반응은 지역과 세대에 따라 크게 엇갈리고 있다.",
        "요금이 오르는 것은 아닐까?",
        "시는 앞으로 3년 동안 버스 요금을 동결하겠다고 약속했다.",
    ]),
    "arabic": (" ", [
        "أعلن مجلس المدينة أمس عن خطة جديدة لتطوير النقل العام في جميع الأحياء.",
        "وقال رئيس البلدية إن الحافلات الكهربائية الأولى ستبدأ العمل في الربيع المقبل.",
        "هل ستنخفض أسعار التذاكر بعد تشغيل الحافلات الجديدة؟",
        "لم يقدم المسؤولون إجابة واضحة عن هذا السؤال حتى الآن.",
        "ويرى الخبراء أن المشروع سيحسن جودة الهواء في المدينة بشكل ملحوظ.",
    ]),
    "hebrew": (" ", [
        "מועצת העיר אישרה אתמול תוכנית חדשה ומקיפה לתחבורה הציבורית בעיר.",
        "לדברי ראש העיר, האוטובוסים החשמליים הראשונים ייצאו לדרך כבר באביב הקרוב.",
        "האם מחיר הכרטיס לנסיעה יעלה בעקבות השינוי?",
        "בעירייה הבטיחו שהמחיר יישאר כפי שהוא לפחות שלוש שנים.",
    ]),
    "hindi": (" ", [
        "नगर निगम ने कल सार्वजनिक परिवहन के लिए एक नई योजना की घोषणा की।",
        "महापौर के अनुसार पहली इलेक्ट्रिक बसें अगले वसंत में सड़कों पर उतरेंगी।",
        "उत्तरी इलाकों के निवासी लंबे समय से कम बसों की शिकायत कर रहे थे।",
        "क्या इस योजना के बाद किराया बढ़ेगा?",
        "अधिकारियों ने कहा कि तीन साल तक किराया नहीं बढ़ाया जाएगा।",
    ]),
}


def _text(name: str, paragraphs: int = 1) -> str:
    joiner, sentences = TEXTS[name]
    return "\n\n".join(joiner.join(sentences) for _ in range(paragraphs))


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_each_script_splits_into_its_sentences(name):
    assert split_sentences(_text(name)) == TEXTS[name][1]


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_each_summary_sentence_is_one_sentence_of_the_text_verbatim(name):
    text = _text(name)
    summary = summarize(text, min_sentences=2, max_sentences=3)
    assert len(summary) >= 2, summary
    for sentence in summary:
        assert sentence in TEXTS[name][1], sentence
        assert sentence in text


@pytest.mark.parametrize("name", ["japanese", "chinese"])
def test_a_language_without_spaces_counts_its_characters_as_words(name):
    text = _text(name)
    assert len(text.split()) <= 1  # one "word" to str.split
    assert word_count(text) > 80


def test_word_counts_of_spaced_scripts_are_their_words():
    assert word_count(TEXTS["russian"][1][0]) == 8
    assert word_count("Tokyo 東京 is big") == 5  # three words and two characters
    assert word_count("") == 0


def test_a_greek_question_mark_ends_a_sentence_but_a_latin_semicolon_does_not():
    assert split_sentences("Τι ώρα είναι; Είναι αργά.") == ["Τι ώρα είναι;", "Είναι αργά."]
    assert split_sentences("It was late; Anna left.") == ["It was late; Anna left."]


def test_lower_case_after_a_full_stop_still_joins_in_cyrillic():
    """"т. е." and "г." are abbreviations when the next word is lower case."""
    assert split_sentences("Это было в 1990 г. и потом, т. е. давно. Потом всё изменилось.") == [
        "Это было в 1990 г. и потом, т. е. давно.",
        "Потом всё изменилось.",
    ]


def test_a_long_run_of_ideographic_full_stops_splits_in_linear_time():
    text = "。" * 200_000 + "東京都は発表した。"
    import time

    started = time.process_time()
    split_sentences(text)
    assert time.process_time() - started < 2.0  # a guard against quadratic work (it takes ms)


def _page(title: str, paragraphs: list[str], lang: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<html lang="{lang}"><head><title>{title}</title><meta charset="utf-8"></head>'
        f"<body><nav><a href='/'>ホーム</a></nav><article><h1>{title}</h1>{body}</article></body></html>"
    )


@pytest.mark.parametrize(("name", "lang"), [("japanese", "ja"), ("chinese", "zh")])
def test_an_article_without_spaces_is_extracted_not_refused_and_timed_by_characters(name, lang):
    """The 25-word minimum once counted str.split(): a Chinese or Japanese article was one
    "word" and refused outright. Now its characters count, and so does its reading time."""
    from bot.articles.extract import extract_article

    joiner, sentences = TEXTS[name]
    paragraphs = [joiner.join(sentences)] * 6
    article = extract_article(_page(sentences[0][:12], paragraphs, lang), "https://example.jp/news/1")
    assert article.word_count >= 80  # its characters; str.split() saw a "word" per paragraph
    assert article.reading_minutes == max(1, round(article.word_count / 230))
    summary = summarize(article.text, title=article.title)
    assert summary and all(sentence in sentences for sentence in summary)


STANDINGS = """<html lang="pt"><head><title>Classificação NASCAR</title><meta charset="utf-8"></head><body>
<article><h1>Classificação NASCAR</h1>
<p>Nesta página você terá sempre a classificação atualizada da NASCAR até a última corrida do campeonato!</p>
<p>Classificação final da Monster Energy NASCAR Cup Series em 2019 após 36 etapas:</p>
<table><tr><th>Pos.</th><th>Piloto</th><th>Pontos</th></tr>
<tr><td>1</td><td>Kyle Busch</td><td>5040</td></tr><tr><td>2</td><td>Martin Truex Jr.</td><td>5035</td></tr>
<tr><td>3</td><td>Kevin Harvick</td><td>5033</td></tr><tr><td>4</td><td>Denny Hamlin</td><td>5027</td></tr></table>
<p>ATENÇÃO: Comentários com textos ininteligíveis ou que faltem com respeito ao usuário
não serão aprovados pelo moderador.</p>
<p>Tags</p>
</article></body></html>"""


def test_a_table_that_is_the_article_is_kept_and_never_summarised():
    """The standings page of the extraction benchmark: the table is its content (kept), its
    cells and the comment-moderation notice are never summary sentences."""
    from bot.articles.extract import extract_article

    article = extract_article(STANDINGS, "http://www.autoracing.com.br/classificacao-nascar/")
    assert "Kyle Busch" in article.text and "Denny Hamlin" in article.text
    assert "moderador" not in article.text and "\n\nTags" not in article.text
    summary = summarize(article.text, title=article.title)
    assert summary and not any("|" in s or "moderador" in s for s in summary), summary


def test_a_comment_policy_notice_is_furniture_in_several_languages():
    from bot.articles.extract import _is_furniture

    for notice in (
        "ATENÇÃO: Comentários com textos ininteligíveis não serão aprovados pelo moderador.",
        "Comments that are offensive will not be approved by our moderators.",
        "Les commentaires sont soumis à nos règles de modération.",
    ):
        assert _is_furniture(notice), notice
    assert not _is_furniture("The council approved the plan after a long debate on Monday evening.")


def test_the_extraction_benchmark_scorer_on_a_tiny_sample(tmp_path, capsys):
    """bench/extraction.py's metric on texts small enough to check by hand, and without data."""
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    sys.path.insert(0, str(root / "bench"))
    spec = importlib.util.spec_from_file_location("extraction_bench", root / "bench" / "extraction.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    truth = "one two three four five"  # shingles: (1-4), (2-5)
    assert bench.match(truth, truth) == (1.0, 0.0, 0.0)
    assert bench.match(truth, "one two three four") == (0.5, 0.0, 0.5)
    result = bench.score({"a": truth, "b": truth}, {"a": truth, "b": ""})
    assert result["precision"] == 1.0 and result["recall"] == 0.5  # an empty output counts in recall only
    assert bench.main(["--data", str(tmp_path)]) == 0
    assert "no benchmark data" in capsys.readouterr().out


def test_a_quotation_closed_mid_sentence_and_full_width_numbers_do_not_split():
    said = "「こんにちは。」と彼は言った。"
    assert split_sentences(said + "次の文です。") == [said, "次の文です。"]
    assert split_sentences("“你好。”他说。然后他走了。") == ["“你好。”他说。", "然后他走了。"]
    prices, us = "物価は３．５％上がった。", "Ｕ．Ｓ．の話だ。"
    assert split_sentences(prices + us) == [prices, us]
    assert split_sentences("Yahoo！Japanが発表した。") == ["Yahoo！Japanが発表した。"]


@pytest.mark.parametrize(
    "text",
    [
        "He was born in Leeds in 1950 and grew up near the sea. He studied history at Oxford for three years. "
        "His first novel was published when he was thirty years old. It was a great success in many countries.",
        "Budget 2025\n\nThis year's budget raises spending on schools by a tenth. But it cuts the money for roads "
        "by almost as much. That leaves the councils with hard choices to make.",
    ],
)
def test_a_text_of_leaning_sentences_still_gets_a_summary(text):
    """The first sentence, or one after a heading, leans on nothing that could be picked."""
    summary = summarize(text)
    assert summary and all(sentence in text for sentence in summary)


def test_article_lines_that_mention_comments_are_not_furniture():
    from bot.articles.extract import _is_furniture

    for line in (
        "The company did not immediately respond to a request for comment on the new policy.",
        "Officials declined to comment on whether the plan had been approved.",
        "Her comments were widely respected across the party.",
    ):
        assert not _is_furniture(line), line


def test_a_huge_page_description_is_cut():
    from bot.articles.extract import MAX_DESCRIPTION_CHARS, extract_article

    page = f'<html><head><meta property="og:description" content="{"word " * 400_000}"></head><body></body></html>'
    article = extract_article(page, "https://video.example/watch/3")
    assert article.described and len(article.text) <= MAX_DESCRIPTION_CHARS


def test_a_page_that_is_all_table_rows_is_posted_as_it_describes_itself_or_refused():
    """Table rows count as text but are never summary sentences: with no sentence to post, the
    page's own description stands in; without one, the page is refused, never posted empty."""
    from bot.articles.worker import process_page

    rows = "".join(f"<tr><td>{i}</td><td>Driver number {i}</td><td>{5000 - i}</td></tr>" for i in range(30))
    table = f"<table><tr><th>Pos.</th><th>Driver</th><th>Points</th></tr>{rows}</table>"
    meta = '<meta property="og:description" content="The final standings of the 2019 season, driver by driver.">'
    with_description = (
        f"<html><head><title>Standings</title>{meta}</head><body><article>{table}</article></body></html>"
    )
    reply = process_page(with_description.encode(), "utf-8", "https://racing.example/standings")
    assert reply["ok"] and reply["article"]["described"], reply
    assert reply["sentences"] == ["The final standings of the 2019 season, driver by driver."]
    bare = f"<html><head><title>Standings</title></head><body><article>{table}</article></body></html>"
    reply = process_page(bare.encode(), "utf-8", "https://racing.example/standings")
    assert not reply["ok"] and reply["kind"] == "extract"
