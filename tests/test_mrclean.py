"""mrclean.py: one test per cleaning quirk on hand-written lines (exact output), idempotence of every cleaner on messy
text, dispatch on the 2023 and 2024 source names, and the authors' style on fixtures whose expected outputs were
worked out by hand from reading the authors' mrclean.py."""

import pytest

import mrclean
from mrclean import AUTHORS, CLEANERS, STYLES, source_of


def clean(source: str, text: str) -> str:
    return CLEANERS[source](text)


# ----------------------------------------------------------------------------------------------------------------------
# shared normalisation


@pytest.mark.parametrize("source", sorted(CLEANERS))
def test_whitespace_and_punctuation_spacing(source):
    assert clean(source, "Well  ,\tyes .  Really ?!\n") == "Well, yes. Really?!\n"


def test_normalize_keeps_spaces_that_are_not_before_a_mark():
    assert mrclean.normalize("it costs .5 dollars ( about )") == "it costs .5 dollars (about)"


def test_lines_are_never_merged_and_empty_or_junk_lines_dropped():
    assert clean("children_stories", "One.\n\n   \n. . .\nTwo.\r\n") == "One.\nTwo.\n"
    assert clean("children_stories", "") == ""


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("source", sorted(CLEANERS))
def test_crlf_and_cr_line_endings_are_unified_first(style, source):
    unix = "kee .\nSo  it goes .\nThe End\n"
    clean = STYLES[style][source]
    assert "\r" not in clean(unix.replace("\n", "\r\n")) and "\r" not in clean(unix.replace("\n", "\r"))
    assert clean(unix.replace("\n", "\r\n")) == clean(unix.replace("\n", "\r")) == clean(unix)
    assert clean(unix).count("\n") >= 2  # a lone \r is a line break, not a space: 3 lines stay (about) 3


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("source", sorted(CLEANERS))
def test_control_and_invisible_format_characters_never_reach_the_output(style, source):
    """Cc but tab and newline -> a space (an ANSI escape sequence as a whole), invisible Cf (soft hyphen, zero-width,
    direction marks, BOM) out, in both styles; a count of what goes for the manifest."""
    import unicodedata

    text = "the\x00dog\x07sees \x1b[1;31mred\x1b[0m\x7fballs\x9b; so\u00adft\u200b,\u200ela\u2066b\ufeff\n"
    out = STYLES[style][source](text)
    assert not [ch for ch in out if unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t\n"]
    for word in ("dog sees", "red", "balls", "soft", "lab"):  # authors' wikipedia drops the first character
        assert word in out.lower(), (word, out)
    assert "[1;31m" not in out and "[0m" not in out
    assert mrclean.count_not_text(text) == 11 and mrclean.count_not_text(out) == 0


def test_line_breaks_inside_lines_are_not_split():
    # U+2028 and \x0b would split under str.splitlines(); here they are whitespace inside one line
    assert clean("switchboard", "a\u2028b\x0bc\n") == "a b c\n"


# ----------------------------------------------------------------------------------------------------------------------
# aochildes / childes


def test_aochildes_rejoins_clitics_and_final_punctuation():
    assert clean("aochildes", "kee .\ndo n't touch it .\nit 's mine !\nwe 're done ?\n") == \
        "kee.\ndon't touch it.\nit's mine!\nwe're done?\n"


def test_aochildes_keeps_apostrophe_words_apart():
    assert clean("aochildes", "get 'em .\n") == "get 'em.\n"


# ----------------------------------------------------------------------------------------------------------------------
# cbt


def test_cbt_drops_book_title_lines():
    text = "_BOOK_TITLE_ : Andrew_Lang___The_Grey_Fairy_Book.txt.out\nDONKEY SKIN There was once a king .\n"
    assert clean("cbt", text) == "DONKEY SKIN There was once a king.\n"


def test_cbt_double_quotes():
    assert clean("cbt", "`` Ah , '' said he , `` that 's the hitch . ''\n") == '"Ah," said he, "that\'s the hitch."\n'


def test_cbt_single_quotes_and_possessive():
    assert clean("cbt", "` Why do you look sad ? ' she asked .\n") == "'Why do you look sad?' she asked.\n"
    assert clean("cbt", "It was only boys ' play .\n") == "It was only boys' play.\n"
    assert clean("cbt", "she called out : ' I know !\n") == "she called out: 'I know!\n"
    assert clean("cbt", "' I do n't see it .\n") == "'I don't see it.\n"


def test_cbt_nested_quotes():
    assert clean("cbt", "`` You must swear , ` Down with the King . ' ''\n") == \
        "\"You must swear, 'Down with the King.'\"\n"


def test_cbt_brackets():
    assert clean("cbt", "a boatman -LRB- an honest fellow -RRB- , and -LSB- so -RSB- on .\n") == \
        "a boatman (an honest fellow), and [so] on.\n"


def test_cbt_illustrations_and_section_breaks():
    text = ("-LSB- Illustration : SHE · SPENT · THE · DAY -RSB- ` Alas ! '\n"
            "-LSB- Illustration : The Maiden creeps out . -RSB-\n"
            "* * * * * Katharine felt tired .\n")
    assert clean("cbt", text) == "'Alas!'\nKatharine felt tired.\n"


# ----------------------------------------------------------------------------------------------------------------------
# children_stories and gutenberg


def test_children_stories_footnote_marks_and_breaks():
    assert clean("children_stories", "Sing Glory hallelujah.\"[3]\n  * * * * * *\n151* The Servants \n") == \
        "Sing Glory hallelujah.\"\n151* The Servants\n"


def test_gutenberg_markers_illustrations_italics_headings():
    text = ("*** START OF THIS PROJECT GUTENBERG EBOOK ALICE ***\n"
            "[Illustration: The White Rabbit]\n"
            "She was _very_ cross, said __the Queen__.\n"
            "= = = Chapter I = = =\n"
            "End of the Project Gutenberg EBook of Alice\n")
    assert clean("gutenberg", text) == "She was very cross, said the Queen.\nChapter I\n"


# ----------------------------------------------------------------------------------------------------------------------
# wikipedia / simple_wikipedia / simple_wiki


def test_wikipedia_headings_become_title_lines():
    assert clean("wikipedia", " = Valkyria Chronicles = \n = = = Early life = = = \n= = =\n") == \
        "Valkyria Chronicles\nEarly life\n"


def test_wikipedia_wikitext_joins_quotes_html_clitics():
    text = "The game 's story @-@ line sold 1 @,@ 000 copies ( 3 @.@ 5 % ) .\nHe said \" hi there \" and <b>left</b> .\n"
    assert clean("wikipedia", text) == "The game's story-line sold 1,000 copies (3.5 %).\nHe said \"hi there\" and left.\n"


def test_simple_wiki_2024_name_uses_the_same_cleaner():
    assert clean("simple_wiki", "= = April = =\nApril is a month .\n") == "April\nApril is a month.\n"


# ----------------------------------------------------------------------------------------------------------------------
# speech: switchboard, bnc_spoken


def test_switchboard_transcriber_marks():
    text = ("it wasn't pollution <laughter>.\n"
            "<Laughter> That's neat,\n"
            "so it is very (( )) good.\n"
            "Uh-huh. child_talking\n"
            "Too tired to exercise. *slash error I did.\n"
            "<laughter>\n")
    assert clean("switchboard", text) == \
        "it wasn't pollution.\nThat's neat,\nso it is very good.\nUh-huh.\nToo tired to exercise.\n"


def test_switchboard_2024_speaker_labels():
    assert clean("switchboard", "A:\tUh-huh.\nB:\tYeah,  <laughter> I know .\nA:\t<laughter>\n") == \
        "A: Uh-huh.\nB: Yeah, I know.\n"


def test_bnc_spoken():
    assert clean("bnc_spoken", "It 's raining &amp; cold .\n") == "It's raining & cold.\n"


# ----------------------------------------------------------------------------------------------------------------------
# subtitles: open_subtitles, qed


def test_open_subtitles_credit_lines_dropped():
    text = ("Subtitles by DramaFever\n"
            "Synced and corrected by Elderfel\n"
            "www.addic7ed.com\n"
            "-= www.OpenSubtitles.org =-\n"
            "Support us and become VIP member to remove all ads\n"
            "I love you.\n")
    assert clean("open_subtitles", text) == "I love you.\n"


def test_open_subtitles_non_verbal_cues_and_tags():
    text = ("- [laughs] Come here .\n"
            "(music)\n"
            "♪ la la la ♪\n"
            "He said (quietly) no.\n"
            "<i>I told you so.</i>\n"
            "{\\an8}Hey!\n")
    assert clean("open_subtitles", text) == "- Come here.\nHe said no.\nI told you so.\nHey!\n"


def test_qed_ocr_l_for_i_and_sentence_case():
    assert clean("qed", "lT lS A GOOD DAY.\n") == "It is a good day.\n"
    assert clean("qed", "&gt;&gt; WELL, l THlNK SO. lT'S FlNE!\n") == "Well, I think so. It's fine!\n"


def test_qed_leaves_mixed_case_lines_alone():
    assert clean("qed", "&gt;&gt; Let's look at Lima, the capital.\n[MUSIC]\nI.\n") == \
        "Let's look at Lima, the capital.\nI.\n"


# ----------------------------------------------------------------------------------------------------------------------
# idempotence and dispatch

MESSY = (
    "  kee .  do n't  it 's  we 're n't\n"
    "_BOOK_TITLE_ : x.txt\n"
    "`` Ah , '' said he , ` so ' . ` ' '' -LRB- x -RRB- -LSB- Illustration : A · B -RSB-\n"
    "* * * * * `` Hi . ''\n"
    "= = = Early life = = =\n"
    "a @-@ b @,@ c \" q w \" \" e\n"
    "<i>Hi</i> &amp;lt;b&amp;gt; &gt;&gt; [ Door closes ] (SIGHS) ♪ la ♪ ♫ {\\an8} ((x))\n"
    "lT lS A GOOD DAY. l AM HERE\n"
    "A:\tUh-huh. <laughter> child_talking *listen; x\n"
    "B:\t<laughter>\n"
    "Subtitles by someone\n"
    "_very_ __two words__ _a _b_ c_ [3] x[12]\n"
    "( ( x ) ) . , ; : ! ? ... -- - 'em 'cause boys ' toys\n"
    "\t\u00a0\u200b\r\n"
    "the\x00dog\x07 \x1b[31mred\x1b[0m\x7f so\u00adft\ufeff \x85x\x9by\n"
    "end\n"
)


@pytest.mark.parametrize("source", sorted(CLEANERS))
def test_every_cleaner_is_idempotent_on_messy_text(source):
    once = clean(source, MESSY)
    assert clean(source, once) == once
    assert once.endswith("\n") and "\n\n" not in once


@pytest.mark.parametrize("source", sorted(CLEANERS))
def test_every_cleaner_is_idempotent_line_by_line(source):
    for line in MESSY.split("\n"):
        once = clean(source, line)
        assert clean(source, once) == once, (source, line)


def test_every_source_name_of_both_years_is_known():
    names_2023 = {"aochildes", "bnc_spoken", "cbt", "children_stories", "gutenberg", "open_subtitles", "qed",
                  "simple_wikipedia", "switchboard", "wikipedia"}
    names_2024 = {"bnc_spoken", "childes", "gutenberg", "open_subtitles", "simple_wiki", "switchboard"}
    assert set(CLEANERS) == names_2023 | names_2024
    assert CLEANERS["childes"] is CLEANERS["aochildes"]
    assert CLEANERS["simple_wiki"] is CLEANERS["simple_wikipedia"]


@pytest.mark.parametrize("filename, source", [
    ("aochildes.train", "aochildes"), ("childes.train", "childes"), ("simple_wiki.dev", "simple_wiki"),
    ("simple_wikipedia.test", "simple_wikipedia"), ("data/babylm_10M/bnc_spoken.train", "bnc_spoken"),
    ("open_subtitles.dev", "open_subtitles"), ("switchboard", "switchboard"),
    ("notes.txt", None), ("aochildes_extra.train", None), ("README.md", None),
])
def test_source_of(filename, source):
    assert source_of(filename) == source


# ----------------------------------------------------------------------------------------------------------------------
# the authors' style: expected outputs worked out by hand from the authors' mrclean.py (start/end/pad tokens empty)

AUTHORS_FIXTURES = {
    # spaces/tabs/NBSP runs -> one space, then one space before . , ; ! ? goes (even in `costs .5`); `:` keeps its
    # space, `do n't` stays apart, blank lines and edge spaces stay
    "aochildes": ("kee .\ndo n't  touch\tit !\n\nit costs .5 , ok ?\u00a0\n  hi :  there\n",
                  "kee.\ndo n't touch it!\n\nit costs.5, ok? \n hi : there\n"),
    # as aochildes, then `queen 's` -> `queen's` (the match takes both letters: `a 'b 'c` -> `a'b 'c`); quotes,
    # -LRB-, _BOOK_TITLE_ and `do n't` stay
    "cbt": ("_BOOK_TITLE_ : Andrew_Lang___The_Grey_Fairy_Book.txt.out\n`` Ah , '' said he , `` that 's the hitch . ''\n"
            "she called out : ' I know !\nthe queen 's  head -LRB- a 'b 'c -RRB- , do n't it ’s\n",
            "_BOOK_TITLE_ : Andrew_Lang___The_Grey_Fairy_Book.txt.out\n`` Ah, '' said he, `` that's the hitch. ''\n"
            "she called out : ' I know!\nthe queen's head -LRB- a'b 'c -RRB-, do n't it’s\n"),
    # unchanged: blank lines between stories, trailing and double spaces, footnote marks, transcriber marks
    "children_stories": ("Once upon a time.  \n\n\u201cHi,\u201d she said .[3]\n  * * * * * *\nThe End \n",) * 2,
    "switchboard": ("but  you know <laughter> unread ...\nA:\tUh-huh. *listen\n\n",) * 2,
    "gutenberg": ("*** START OF THIS PROJECT GUTENBERG EBOOK ***\n[Illustration]\n_very_  cross\n",) * 2,
    # as aochildes, then every \n\n goes: the lines around it are glued
    "bnc_spoken": ("It 's  raining .\n\nYes , it is .\n\n\nNo\n", "It 's raining.Yes, it is.\nNo\n"),
    "simple_wikipedia": ("= = = April = = =\nApril is a month .\n\nMay\n",
                         "= = = April = = =\nApril is a month .May\n"),
    # `= = = T = = =\n` -> `T` glued to the next line; lines stripped; first character and every \n\n dropped
    "wikipedia": (" = Valkyria = \n= = = Early life = = =\nHe was born .\n\n = = Career = = \nText\n",
                  " Valkyria =\nEarly lifeHe was born .= = Career = =\nText"),
    # lines containing `subtitle` go with their newline; a last line without one stays
    "open_subtitles": ("Subtitles by DramaFever\nI love you.\nwww.addic7ed.com\n- [laughs] SUBTITLE END\nBye\n"
                       "subtitles, no newline", "I love you.\nwww.addic7ed.com\nBye\nsubtitles, no newline"),
    # at least half upper case (not counting ( ... ) and . ! ?): l -> I, each sentence capitalize()d (`I` -> `i`
    # inside one); lines stripped; blank lines stay; no final newline
    "qed": ("lT lS A GOOD DAY. SO lT lS!\nMixed Case line.\n\n  (MUSIC)  \nHELLO l (x)\n",
            "It is a good day. So it is!\nMixed Case line.\n\n(MUSIC)\nHello i (x)"),
}


@pytest.mark.parametrize("source", sorted(AUTHORS_FIXTURES))
def test_authors_style_reproduces_the_authors_output(source):
    text, expected = AUTHORS_FIXTURES[source]
    assert AUTHORS[source](text) == expected
    assert AUTHORS[source](text.replace("\n", "\r\n")) == expected  # their read_text() unified line endings too


@pytest.mark.parametrize("source", ["aochildes", "cbt", "children_stories", "switchboard"])
def test_authors_style_differs_from_ours_where_the_readme_says(source):
    ours, authors = CLEANERS[source](AUTHORS_FIXTURES[source][0]), AUTHORS_FIXTURES[source][1]
    assert ours != authors
    if source == "children_stories":
        assert "\n\n" in authors and "\n\n" not in ours  # blank lines (story boundaries) dropped by ours
    if source == "switchboard":
        assert "but  you" in authors and "but you" in ours  # double spaces collapsed by ours
    if source == "cbt":
        assert '"Ah," said he' in ours and "`` Ah, ''" in authors  # quotes re-joined to their words by ours


def test_authors_style_survives_lines_their_code_divides_by_zero_on():
    assert AUTHORS["qed"]("(music)\n...\nOK.\n") == "(music)\n...\nOk."


def test_both_styles_know_every_source_name():
    assert set(STYLES) == {"ours", "authors"} and STYLES["ours"] is CLEANERS
    assert set(AUTHORS) == set(CLEANERS)
    assert AUTHORS["childes"] is AUTHORS["aochildes"] and AUTHORS["simple_wiki"] is AUTHORS["simple_wikipedia"]
