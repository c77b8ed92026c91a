"""Mr. Clean: one cleaning function per BabyLM source (Timiryasov & Tastet 2023, section 2).

    from mrclean import CLEANERS, source_of
    clean = CLEANERS[source_of("aochildes.train")]      # -> clean_aochildes
    text = clean(open("data/babylm_10M/aochildes.train").read())

Every cleaner in CLEANERS (clean.style: ours) maps a whole file's text to cleaned text, one document/utterance per
line as in the input: lines are cleaned one at a time, never merged or split; a line is only dropped when nothing but
junk is left of it (no letter or digit, a bare speaker label, a subtitle credit, a book-title marker). The output ends
with one newline.

Every cleaner is idempotent, clean(clean(x)) == clean(x): each rule's output no longer matches that rule or an
earlier one (a rule that could expose a new match, like nested brackets, repeats until nothing changes).

What is done, per source (2023 names; 2024 `childes` = aochildes, `simple_wiki` = simple_wikipedia):
  all             control and invisible format characters out (see below); whitespace runs (tabs, NBSP, ...) -> one
                  space; no space before , . ; : ! ? nor inside ( ) [ ]
  aochildes       rejoin clitics `do n't` -> `don't`, `it 's` -> `it's`; `kee .` -> `kee.` (text stays lower case)
  bnc_spoken      HTML tags; clitics
  cbt             drop `_BOOK_TITLE_ : <file>` markers (a line left without text goes); `` and '' -> "; ` -> '; -LRB- -RRB- -LSB- -RSB- -> ( ) [ ];
                  `[Illustration: ...]` and `* * *` breaks removed; clitics; a free-standing ' closes a quote
                  (attached to the left) except at a line start or after a colon, where it opens one
  children_stories  footnote marks `[3]` and `* * *` breaks removed
  gutenberg       Project Gutenberg START/END lines dropped; `[Illustration]`, footnote marks, `* * *` and _italic_
                  underscores removed; wiki-style `= = Title = =` headings -> `Title`
  open_subtitles  credit lines dropped (Subtitles by, Synced and corrected by, any URL such as www.addic7ed.com);
                  non-verbal cues removed: [laughs], (music), ♪ ... ♪, {\\an8}; HTML tags and entities
  qed             as open_subtitles, plus `>>` speaker marks; OCR'd upper-case lines get l -> I
                  (`lT lS A GOOD DAY` -> `It is a good day`) and sentence case (proper nouns are lower-cased too)
  simple_wikipedia, wikipedia  headings `= = = Title = = =` -> `Title` (kept as a line: the words are text);
                  wikitext `@-@ @,@ @.@` joins; spaced quotes `" x "` -> `"x"`; HTML tags; clitics
  switchboard     transcriber marks removed: <laughter>, (( )), child_talking, `*listen; ...` notes (from the `*`
                  to the end of the line); 2024 speaker labels `A:\\tWell` kept as `A: Well`

Line endings `\\r\\n` and `\\r` become `\\n` before anything else, in both styles (the authors' Path.read_text() did the
same), so an old-Mac file is not one long line. Then, in both styles, characters that are not text go (``plain_text``):
every control character (Unicode category Cc: NUL, BEL, DEL, the C1 block, ...) but tab and newline becomes a space,
an ANSI escape sequence (`ESC [ 31m`) a space as a whole; the invisible format characters (Cf) that turn up in
scraped English text are removed: soft hyphen, zero-width space and (non-)joiners, direction marks and embeddings,
word joiner and invisible operators, the BOM (U+FEFF). A space, not nothing, for the controls: one between two words
may have separated them. The other Cf characters (Arabic number signs, tag characters, ...) belong to their scripts
and stay. The authors' script kept all of these; the BabyLM 2023 10M and dev splits hold none, so their style's output
is unchanged there.

STYLES["authors"] (clean.style: authors) reproduces the output of the authors' mrclean.py (Timiryasov & Tastet's
BabyLlama repository), with its start/end/pad tokens empty as in their release, byte for byte:
  aochildes, bnc_spoken, cbt  runs of space/tab/NBSP -> one space; the one space before . , ; ! ? goes (also in
                  `costs .5`); blank lines, leading and trailing spaces stay. bnc_spoken: then every `\\n\\n` is
                  removed (the lines around it are glued). cbt: then `queen 's` -> `queen's` (word, space, quote,
                  letter), nothing else: `do n't`, `` '' ` quotes, -LRB- brackets, _BOOK_TITLE_ lines stay
  children_stories, gutenberg, switchboard  unchanged
  open_subtitles  lines containing `subtitle` (any case) dropped
  qed             a line whose characters, ( ... ) and . ! ? not counted, are at least half upper case gets l -> I and
                  each sentence capitalize()d; lines stripped; no final newline. A line with nothing left to count
                  stays as it is (their code divides by zero there)
  simple_wikipedia  every `\\n\\n` removed
  wikipedia       `= = = T = = =\\n` -> `T` glued to the next line; lines stripped; the first character of the file
                  dropped; every `\\n\\n` removed; no final newline
The authors' style is not idempotent (wikipedia drops a character each time) and keeps the quirks listed in the
README (deviations).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Callable

# ----------------------------------------------------------------------------------------------------------------------
# shared helpers


def _until_stable(fn: Callable[[str], str], s: str, limit: int = 20) -> str:
    """Repeat ``fn`` until the string stops changing (nested brackets, doubly escaped entities); ``limit`` is a guard."""
    for _ in range(limit):
        t = fn(s)
        if t == s:
            return t
        s = t
    return s


_WS = re.compile(r"\s+")  # tabs, CR, NBSP, U+2028, ... all become one space (\n never reaches here: lines are split)
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # an ANSI sequence, or Cc but \t \n
_FORMAT = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")  # invisible Cf
_OPEN_SPACE = re.compile(r"([(\[]) +")
_SPACE_CLOSE = re.compile(r" +([)\]])")
# a space before , . ; : ! ? goes only when the mark ends a word (then space, end, another mark, a quote or bracket):
# `costs .5` and `a :b` keep theirs.
_SPACE_PUNCT = re.compile(r" +([,.;:!?]+)(?=$|[\s,.;:!?'\"”’)\]])")
_HAS_CONTENT = re.compile(r"\w")  # a letter or digit (any script); lines without one are junk


def squeeze(line: str) -> str:
    """Whitespace only: every run of whitespace becomes one space, ends are stripped."""
    return _WS.sub(" ", line).strip()


def normalize(line: str) -> str:
    """The common whitespace/punctuation normalisation of one line: every cleaner ends with it."""
    line = squeeze(line)
    line = _OPEN_SPACE.sub(r"\1", line)
    line = _SPACE_CLOSE.sub(r"\1", line)
    return _SPACE_PUNCT.sub(r"\1", line)


def unix_newlines(text: str) -> str:
    """`\r\n` and a lone `\r` (old Mac) -> `\n`, as Python's universal newlines do; nothing else is a line break."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def plain_text(text: str) -> str:
    """Unix newlines; control characters (and ANSI escape sequences) -> a space; invisible format characters out."""
    return _FORMAT.sub("", _CONTROL.sub(" ", unix_newlines(text)))


def count_not_text(text: str) -> int:
    """How many control characters, ANSI escape sequences and invisible format characters ``plain_text`` takes out."""
    text = unix_newlines(text)
    return len(_CONTROL.findall(text)) + len(_FORMAT.findall(text))


def _by_line(fn: Callable[[str], str]) -> Callable[[str], str]:
    """Turn a one-line cleaner into a whole-file cleaner: clean each line, normalise, drop the ones left empty/junk.
    ``fn`` gets a squeezed line (single spaces, so its joining rules can look for exactly one space)."""
    def clean(text: str) -> str:
        out = []
        for line in plain_text(text).split("\n"):  # not splitlines(): it would split on U+2028 in a line
            line = normalize(fn(squeeze(line)))
            if line and _HAS_CONTENT.search(line):
                out.append(line)
        return "\n".join(out) + "\n" if out else ""
    clean.__name__ = fn.__name__
    clean.__doc__ = fn.__doc__
    return clean


# pre-tokenized text: `do n't` `ca n't` -> `don't` `can't`; `it 's` `we 're` `I 'd` -> `it's` `we're` `I'd`.
# `'em`, `'cause` stay apart (they are words); a quote ' followed by a longer word (`'sorry`) is left alone by the \b.
# Lookarounds, not groups, so `they 're n't` loses both spaces in one pass.
_CLITIC = re.compile(r"(?<=\w)\s+(?=(?:n't|N'T|'(?:s|re|ve|ll|d|m|S|RE|VE|LL|D|M))\b)")


def join_clitics(line: str) -> str:
    return _CLITIC.sub("", line)


_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")  # <i>, </font>, <br/>, <laughter>; not `x < y`


def strip_html(line: str) -> str:
    """Unescape entities (repeatedly: `&amp;lt;` is `<`), then drop tags, keeping the text between them."""
    line = _until_stable(html.unescape, line)
    return _until_stable(lambda s: _TAG.sub(" ", s), line)


_HEADING = re.compile(r"^\s*=(?:[\s=]*=)?\s+(.*?)\s+=(?:[\s=]*=)?\s*$")  # `= Title =`, `= = = Title = = =`


def heading(line: str) -> str:
    """Wiki heading `= = = Title = = =` -> `Title` (the heading words stay, on their own line)."""
    return _until_stable(lambda s: _HEADING.sub(r"\1", s), line)


_SECTION_BREAK = re.compile(r"(?:^|(?<=\s))\*(?:\s*\*)+(?=\s|$)")  # `* * * * *` (2 or more) between sections
_FOOTNOTE_MARK = re.compile(r"\[\d{1,3}\]")  # `hallelujah."[3]`
_ILLUSTRATION = re.compile(r"\[\s*Illustration\b[^\[\]]*\]", re.I)

# ----------------------------------------------------------------------------------------------------------------------
# child-directed speech and children's books


def _aochildes(line: str) -> str:
    """CHILDES utterances, lower case and tokenized: `kee .`, `do n't`."""
    return join_clitics(line)


_PTB_BRACKETS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
_PTB = re.compile("|".join(map(re.escape, _PTB_BRACKETS)))
_OPEN_DQ = re.compile(r"(?:^|(?<= ))``(?: |$)")   # `` word  -> "word
_CLOSE_DQ = re.compile(r"(?:^| )''(?= |$)")       # word ''  -> word"
# single quotes never attach to another quote: `' '` must not become `''`, which is a double quote to the next pass
_OPEN_SQ = re.compile(r"(?:^|(?<= ))`(?: (?=[^'`])|$)")  # ` word -> 'word
_LEAD_SQ = re.compile(r"^' (?=[^'`])")                    # ' word at a line start opens a quote
_COLON_SQ = re.compile(r"(?<=:) ' (?=[^'`])")             # said : ' I know  -> said : 'I know
_CLOSE_SQ = re.compile(r"(?<=[^'`]) '(?=[ \"]|$)")        # word ' -> word'  (also the plural possessive `boys ' toys`)


_BOOK_TITLE = re.compile(r"_BOOK_TITLE_\s*:?\s*\S*")  # `_BOOK_TITLE_ : Andrew_Lang___The_Grey_Fairy_Book.txt.out`


def _cbt(line: str) -> str:
    """Children's Book Test: Penn-Treebank tokens; `` '' for double quotes, ` ' for single ones."""
    # only the marker goes: a line holding text after it (a file of one long line) keeps that text
    line = _BOOK_TITLE.sub(" ", line)
    line = _PTB.sub(lambda m: _PTB_BRACKETS[m.group()], line)
    line = _until_stable(lambda s: _ILLUSTRATION.sub(" ", _SECTION_BREAK.sub(" ", s)), line)  # `[ Illustration : ...]`
    line = squeeze(line)  # the quote rules below look at single spaces
    line = _OPEN_DQ.sub('"', line)
    line = _CLOSE_DQ.sub('"', line)
    line = _OPEN_SQ.sub("'", line)
    line = _LEAD_SQ.sub("'", line)
    line = _COLON_SQ.sub(" '", line)
    line = _CLOSE_SQ.sub("'", line)
    return join_clitics(line)


def _children_stories(line: str) -> str:
    """Fairy tales and children's books, already plain text: footnote marks and section breaks only."""
    return _SECTION_BREAK.sub(" ", _FOOTNOTE_MARK.sub("", line))


# ----------------------------------------------------------------------------------------------------------------------
# books and encyclopedias

_GUTENBERG_JUNK = re.compile(r"^\W*(?:(?:START|END) OF (?:THE|THIS) PROJECT GUTENBERG|End of (?:the )?Project Gutenberg"
                             r"|Produced by\b)", re.I)
_ITALIC = re.compile(r"(?<!\w)_+([^_\s](?:[^_]*[^_\s])?)_+(?!\w)")  # _word_ / __two words__ -> the words


def _gutenberg(line: str) -> str:
    """Project Gutenberg books (one wrapped line per line): licence markers, illustrations, italics."""
    if _GUTENBERG_JUNK.match(line):
        return ""
    line = _until_stable(lambda s: _ILLUSTRATION.sub(" ", s), line)
    line = _until_stable(lambda s: _ITALIC.sub(r"\1", normalize(s)), line)  # `(( __x__` is not italic, `((__x__` is
    line = _SECTION_BREAK.sub(" ", _FOOTNOTE_MARK.sub("", line))
    return heading(line)


_WIKI_AT = re.compile(r" ?@([-,.])@ ?")  # wikitext: `state @-@ of` `1 @,@ 000` `3 @.@ 5`
_SPACED_QUOTES = re.compile(r'(?:^|(?<= ))" ([^"]*?[^" ]) "(?= |$)')  # `says " hello there " .` -> `says "hello there" .`


def _wikipedia(line: str) -> str:
    """Wikipedia (wikitext style): headings, @-@ joins, spaced quotes, stray HTML, tokenized clitics."""
    line = heading(strip_html(line))
    line = squeeze(_WIKI_AT.sub(r"\1", line))
    line = _SPACED_QUOTES.sub(r'"\1"', line)
    return join_clitics(line)


# ----------------------------------------------------------------------------------------------------------------------
# speech transcripts and subtitles


def _bnc_spoken(line: str) -> str:
    """British National Corpus, spoken part: mostly clean; stray markup and tokenized clitics."""
    return join_clitics(strip_html(line))


# transcriber notes: `<laughter>`, `(( ))`, `child_talking`, and `*listen; should be 'aa'` running to the line end
_SWB_UNCLEAR = re.compile(r"\(\s*\([^()]*\)\s*\)")
_SWB_NOISE = re.compile(r"\b[a-z]+_[a-z]+\b")
_SWB_NOTE = re.compile(r"(?:^|\s)\*.*$")
_SPEAKER = re.compile(r"^([AB]) ?:(?:\s+|$)")  # 2024: `A:\tWell, ...` (the tab was squeezed to a space)


def _switchboard(line: str) -> str:
    """Switchboard telephone conversations, one utterance per line (2024: with an `A:` / `B:` speaker label)."""
    line = squeeze(_until_stable(lambda s: _SWB_UNCLEAR.sub(" ", _TAG.sub(" ", _SWB_NOISE.sub(" ", s))), line))
    m = _SPEAKER.match(line)  # after the removals: `<laughter> A: ...` would hide the label
    label, line = (m.group(1) + ": ", line[m.end():]) if m else ("", line)
    line = normalize(_SWB_NOTE.sub("", line))  # last: a removal above may put the space before a `*`
    return label + line if line and _HAS_CONTENT.search(line) else ""  # `A:` with nothing said is dropped


# subtitle credits: the whole line goes
_CREDIT = re.compile(
    r"(?:https?://|www\.|\b[\w-]+\.(?:com|org|net|tv)\b|"
    r"\b(?:subtitles?|subs)\b.{0,40}\b(?:by|from)\b|\bcaptions?\b.{0,40}\bby\b|"
    r"\b(?:re-?)?sync(?:ed|hronized|hronised)?\b.{0,40}\bby\b|\bcorrected by\b|\btranscript by\b|"
    r"\bripped by\b|\bencoded by\b|advertise your product|become vip member|rate this subtitle)",
    re.I)
# non-verbal cues: [laughs], [ Door closes ], (music), (SIGHS), ♪ la la ♪, {\an8}
_CUE = re.compile(r"\[[^\[\]]*\]|\([^()]*\)|\{[^{}]*\}|[♪♫][^♪♫]*[♪♫]")
_NOTES = re.compile(r"[♪♫]+")  # a lone note left over (an unclosed song line keeps its words)


def _subtitle_line(line: str) -> str:
    """Markup and cues out (repeated: removing one can complete another, `<i♪>`), then credit lines dropped."""
    line = _until_stable(lambda s: _NOTES.sub(" ", _CUE.sub(" ", strip_html(s))), line)
    return "" if _CREDIT.search(line) else line


def _open_subtitles(line: str) -> str:
    """OpenSubtitles: movie and TV subtitles."""
    return _subtitle_line(line)  # `- [laughs]` leaves a bare dash: dropped as a line without a letter


_SPEAKER_CHANGE = re.compile(r">>+")  # QED: `>> Hello` marks a new speaker (also &gt;&gt; before unescaping)
_LETTERS = re.compile(r"[A-Za-z]")
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([-\"'(\[]*)([a-z])")  # a line start or after . ! ?, past quotes
_LOWER_I = re.compile(r"\bi\b")


def is_ocr_caps(line: str) -> bool:
    """An upper-case line (OCR'd captions). Lower-case letters other than l (which OCR reads for I) are at most 10% of
    the upper-case ones; at least 2 upper-case letters, so `I.` or `OK` alone are not re-cased."""
    letters = _LETTERS.findall(line)
    upper = sum(c.isupper() for c in letters)
    lower = sum(c.islower() and c != "l" for c in letters)
    return upper >= 2 and lower * 10 <= upper


def sentence_case(line: str) -> str:
    """Lower-case, then capitalise sentence starts and the pronoun I (`I`, `I'm`, `I'll`)."""
    line = _LOWER_I.sub("I", line.lower())
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2) + m.group(3).upper(), line)


def _qed(line: str) -> str:
    """QED: educational video captions, partly OCR'd in capitals (`lT lS A GOOD DAY`)."""
    line = _SPEAKER_CHANGE.sub(" ", _subtitle_line(line))
    line = normalize(line)
    if is_ocr_caps(line):
        line = sentence_case(line.replace("l", "I"))
    return line


# ----------------------------------------------------------------------------------------------------------------------
# the table: every source name of the 2023 and 2024 releases

clean_aochildes = _by_line(_aochildes)
clean_bnc_spoken = _by_line(_bnc_spoken)
clean_cbt = _by_line(_cbt)
clean_children_stories = _by_line(_children_stories)
clean_gutenberg = _by_line(_gutenberg)
clean_open_subtitles = _by_line(_open_subtitles)
clean_qed = _by_line(_qed)
clean_simple_wikipedia = _by_line(_wikipedia)
clean_switchboard = _by_line(_switchboard)
clean_wikipedia = _by_line(_wikipedia)

CLEANERS: dict[str, Callable[[str], str]] = {
    # 2023 (strict-small / strict)
    "aochildes": clean_aochildes,
    "bnc_spoken": clean_bnc_spoken,
    "cbt": clean_cbt,
    "children_stories": clean_children_stories,
    "gutenberg": clean_gutenberg,
    "open_subtitles": clean_open_subtitles,
    "qed": clean_qed,
    "simple_wikipedia": clean_simple_wikipedia,
    "switchboard": clean_switchboard,  # 2023 plain utterances and 2024 `A:\t...` lines alike
    "wikipedia": clean_wikipedia,
    # 2024 names
    "childes": clean_aochildes,
    "simple_wiki": clean_simple_wikipedia,
}
SAME_SOURCE = {"childes": "aochildes", "simple_wiki": "simple_wikipedia"}  # a 2024 name -> its 2023 name


# ----------------------------------------------------------------------------------------------------------------------
# the authors' cleaning (clean.style: authors): whole-file functions, re-written from reading their mrclean.py

AUTHORS: dict[str, Callable[[str], str]] = {}


def _authors(*sources: str):
    """Register a whole-file function as the authors' cleaner of ``sources`` (line endings unified and characters
    that are not text taken out first)."""
    def register(fn):
        def clean(text: str) -> str:
            return fn(plain_text(text))
        clean.__name__, clean.__doc__ = fn.__name__, fn.__doc__
        AUTHORS.update(dict.fromkeys(sources, clean))
        return clean
    return register


_A_BLANKS = re.compile("[ \t\u00a0]+")
_A_SPACE_PUNCT = re.compile(" ([.,;!?])")  # one space only, and also before a digit: `costs .5` -> `costs.5`
_A_APOSTROPHE = re.compile("(\\w) (['’]\\w)")  # consumes both letters: `a 'b 'c` -> `a'b 'c`, as theirs does
_A_PARAGRAPH = re.compile("\n\n")


def _authors_spaces(text: str) -> str:
    return _A_SPACE_PUNCT.sub(r"\1", _A_BLANKS.sub(" ", text))


@_authors("children_stories", "gutenberg", "switchboard")
def authors_unchanged(text: str) -> str:
    return text


@_authors("aochildes", "childes")
def authors_aochildes(text: str) -> str:
    return _authors_spaces(text)


@_authors("bnc_spoken")
def authors_bnc_spoken(text: str) -> str:
    return _A_PARAGRAPH.sub("", _authors_spaces(text))


@_authors("cbt")
def authors_cbt(text: str) -> str:
    return _A_APOSTROPHE.sub(r"\1\2", _authors_spaces(text))


@_authors("simple_wikipedia", "simple_wiki")
def authors_simple_wikipedia(text: str) -> str:
    return _A_PARAGRAPH.sub("", text)


_A_HEADING = re.compile("= = = (.+?) = = =\n")


@_authors("wikipedia")
def authors_wikipedia(text: str) -> str:
    lines = [line.strip() for line in _A_HEADING.sub(r"\1", text).splitlines()]
    return _A_PARAGRAPH.sub("", "\n".join(lines)[1:])


_A_CREDIT = re.compile("^.*subtitle.*$\n", re.M | re.I)


@_authors("open_subtitles")
def authors_open_subtitles(text: str) -> str:
    return _A_CREDIT.sub("", text)


_A_NOT_COUNTED = re.compile(r"\(.*?\)|[.!?]")
_A_SENTENCE = re.compile(r"([.!?]\s*)")


@_authors("qed")
def authors_qed(text: str) -> str:
    out = []
    for line in text.splitlines():
        body = _A_NOT_COUNTED.sub("", line)
        if body and 2 * sum(c.isupper() for c in body) >= len(body):
            line = "".join(part.capitalize() for part in _A_SENTENCE.split(line.replace("l", "I")))
        out.append(line.strip())
    return "\n".join(out)


STYLES: dict[str, dict[str, Callable[[str], str]]] = {"ours": CLEANERS, "authors": AUTHORS}


def source_of(filename) -> str | None:
    """The BabyLM source a file holds, from its name: `aochildes.train` -> `aochildes`, `simple_wiki.dev` ->
    `simple_wiki`; None when the name is no known source."""
    name = Path(filename).name.split(".", 1)[0]
    return name if name in CLEANERS else None
