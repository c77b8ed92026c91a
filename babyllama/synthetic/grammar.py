"""The grammar: a recursive generator of grammatical sentences as token lists, and their spelling.

Phrases carry their agreement features (``num``: sg, pl, 1 for I, 2 for you; ``gender``: m, f, n), so a verb agrees
with its subject across whatever sits between them: prepositional phrases with another noun (attractors), subject and
object relative clauses (an object relative ends in a gap), nested to ``max_depth``. Clauses embed clauses (``think
that``, ``wonder whether``, ``before ...ing``), wh-words leave gaps in questions and embedded questions, ``ever``
appears only in the scope of ``not`` or a ``no`` subject, and reflexives agree with the subject of their own clause.

Tokens are lower-case words (names capitalised), punctuation and the clitic ``n't`` as own tokens; ``plain`` and
``tokenized`` spell them as ordinary or pre-tokenized text.
"""

from __future__ import annotations

from collections import namedtuple

from babyllama.synthetic.lexicon import (ADJECTIVES, CLASS_WORD, GENDERED, INTRANSITIVE, NAMES, NAMES_BY, NOUNS_BY, TRANSITIVE,
                               Verb, zipf_index)

Phrase = namedtuple("Phrase", "toks num gender")

# closed-class verbs: clause-taking (think that S), question-taking (wonder whether/what S), control and raising (to VP)
THINK = (Verb("think", "thinks", "thought", "thought", "thinking", "C"),
         Verb("say", "says", "said", "said", "saying", "C"),
         Verb("hope", "hopes", "hoped", "hoped", "hoping", "C"), Verb("know", "knows", "knew", "known", "knowing", "C"))
WONDER = (Verb("wonder", "wonders", "wondered", "wondered", "wondering", "Q"),
          Verb("ask", "asks", "asked", "asked", "asking", "Q"))
KNOW_WH = (Verb("know", "knows", "knew", "known", "knowing", "Q"), Verb("see", "sees", "saw", "seen", "seeing", "Q"),
           Verb("forget", "forgets", "forgot", "forgotten", "forgetting", "Q"))
CONTROL = (Verb("try", "tries", "tried", "tried", "trying", "V"),
           Verb("want", "wants", "wanted", "wanted", "wanting", "V"),
           Verb("need", "needs", "needed", "needed", "needing", "V"))
SEEM = Verb("seem", "seems", "seemed", "seemed", "seeming", "V")
MODALS = ("can", "will", "should", "could", "must", "would", "might")
PREPS = ("near", "behind", "with", "beside", "under", "from")
ADJUNCTS = ("before", "after", "without")  # + V-ing phrase
CONJ = ("because", "while", "when", "although")  # + clause
NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
DET_SG = ("the", "the", "the", "a", "a", "this", "that", "my", "your", "his", "her", "our", "their", "every", "one")
DET_PL = ("the", "the", "the", "these", "those", "some", "many", "two", "three", "my", "your", "our", "their", "all",
          "few", "several")
PRONOUNS = (("I", "1", "n"), ("you", "2", "n"), ("he", "sg", "m"), ("she", "sg", "f"), ("we", "pl", "n"),
            ("they", "pl", "n"))
NEG_AUX = {"did": "did", "can": "ca", "will": "wo", "does": "does", "do": "do"}  # + n't
TENSES = ("pres", "pres", "past", "past", "past", "prog", "pprog", "perf", "modal", "neg", "pneg")


def be(num: str, past: bool = False) -> str:
    if past:
        return "was" if num in ("sg", "1") else "were"
    return {"sg": "is", "1": "am"}.get(num, "are")


def flip(num: str) -> str:
    return "pl" if num == "sg" else "sg"


def noun_form(noun, num: str) -> str:
    return noun.sg if num == "sg" else noun.pl


def reflexive(num: str, gender: str) -> str:
    if num == "pl":
        return "themselves"
    return {"1": "myself", "2": "yourself"}.get(num) or {"m": "himself", "f": "herself"}.get(gender, "itself")


def verb_group(v: Verb, tense: str, num: str, modal: str = "will") -> list[str]:
    """The finite (or base / -ing) verb group of ``v`` agreeing with a subject of feature ``num``."""
    sg = num == "sg"
    if tense == "pres":
        return [v.s if sg else v.base]
    if tense == "past":
        return [v.past]
    if tense == "prog":
        return [be(num), v.ing]
    if tense == "pprog":
        return [be(num, past=True), v.ing]
    if tense == "perf":
        return ["has" if sg else "have", v.pp]
    if tense == "modal":
        return [modal, v.base]
    if tense == "neg":
        return ["does" if sg else "do", "n't", v.base]
    if tense == "pneg":
        return ["did", "n't", v.base]
    if tense == "base":
        return [v.base]
    if tense == "ing":
        return [v.ing]
    raise ValueError(tense)


def copula(tense: str, num: str, modal: str = "will") -> list[str]:
    if tense in ("past", "pprog", "pneg"):
        return [be(num, past=True)] + (["n't"] if tense == "pneg" else [])
    if tense == "modal":
        return [modal, "be"]
    if tense == "base":
        return ["be"]
    if tense == "ing":
        return ["being"]
    if tense == "perf":
        return ["has" if num == "sg" else "have", "been"]
    return [be(num)] + (["n't"] if tense == "neg" else [])


class Grammar:
    """Sentence generator; all randomness from ``rng`` (a ``random.Random``), so output is a function of its seed."""

    def __init__(self, rng, max_depth: int = 3, p_mod: float = 0.35):
        self.r, self.max_depth, self.p_mod = rng, max_depth, p_mod

    # -- choices ------------------------------------------------------------------------------------------------------
    def coin(self, p: float) -> bool:
        return self.r.random() < p

    def pick(self, items):
        """Zipfian choice: earlier items are more frequent."""
        return items[zipf_index(self.r, len(items))]

    def choice(self, items):
        return self.r.choice(items)

    def num(self, p_pl: float = 0.45) -> str:
        return "pl" if self.coin(p_pl) else "sg"

    def tense(self) -> str:
        return self.choice(TENSES)

    def modal(self) -> str:
        return self.choice(MODALS)

    def adjs(self, p: float = 0.25) -> list[str]:
        out = []
        while len(out) < 2 and self.coin(p):
            out.append(self.pick(ADJECTIVES))
        return out

    # -- noun phrases -------------------------------------------------------------------------------------------------
    def np(self, cls: str = "patf", num: str | None = None, depth: int = 0, dets=None, mod: float | None = None,
           noun=None) -> Phrase:
        """DET ADJ* NOUN, and with probability ``p_mod / 2**depth`` a PP or relative clause (that may nest)."""
        noun = noun or self.pick(NOUNS_BY[cls])
        num = num or self.num()
        det = self.choice(dets or (DET_SG if num == "sg" else DET_PL))
        toks = [det] + self.adjs() + [noun_form(noun, num)]
        p = self.p_mod if mod is None else mod
        if depth < self.max_depth and self.coin(p / 2 ** depth):
            toks += self.modifier(noun.cls in "pa", num, noun.gender, depth + 1)
        return Phrase(toks, num, noun.gender)

    def modifier(self, animate: bool, num: str, gender: str, depth: int) -> list[str]:
        """A post-nominal modifier: a PP holding another noun (an attractor), or a subject or object relative."""
        x = self.r.random()
        if x < 0.4:
            return [self.choice(PREPS)] + self.np(depth=depth).toks
        rel = "who" if animate and self.coin(0.7) else "that"
        if x < 0.7:  # subject relative: its verb agrees with the head noun
            return [rel] + self.vp(num, gender, depth, self.choice(("pres", "past", "prog", "perf", "modal")),
                                   complex_ok=False)
        return [rel] + self.object_gap(depth)

    def object_gap(self, depth: int, tense: str | None = None) -> list[str]:
        """SUBJ V (gap): the inside of an object relative clause or of an embedded object question."""
        s = self.subject(depth)
        return s.toks + verb_group(self.pick(TRANSITIVE), tense or self.choice(("pres", "past", "past", "perf")),
                                   s.num, self.modal())

    def subject(self, depth: int = 0, p_pron: float = 0.15, p_name: float = 0.15, num: str | None = None,
                cls: str = "pa") -> Phrase:
        x = self.r.random()
        if num is None and x < p_pron:
            w, num, gender = self.choice(PRONOUNS)
            return Phrase([w], num, gender)
        if num in (None, "sg") and x < p_pron + p_name:
            n = self.pick(NAMES)
            return Phrase([n.name], "sg", n.gender)
        return self.np(cls, num, depth)

    def gendered(self, depth: int = 1, gender: str | None = None) -> Phrase:
        """A singular subject of known gender: a name or a gendered person noun."""
        gender = gender or self.choice("mf")
        if self.coin(0.4):
            return Phrase([self.pick(NAMES_BY[gender]).name], "sg", gender)
        noun = self.pick(tuple(n for n in GENDERED if n.gender == gender))
        return self.np(num="sg", depth=depth, noun=noun)

    # -- verb phrases -------------------------------------------------------------------------------------------------
    def vp(self, num: str, gender: str, depth: int, tense: str, complex_ok: bool = True) -> list[str]:
        """A predicate agreeing with a subject of features (num, gender); embeds clauses while depth allows."""
        deep = complex_ok and depth < self.max_depth
        x = self.r.random() if deep else 0.25 + 0.75 * self.r.random()  # no embedded clause: skip those branches
        m = self.modal()
        if deep and x < 0.06:  # think that S
            return verb_group(self.pick(THINK), tense, num, m) + ["that"] + self.clause(depth + 1)
        if deep and x < 0.11:  # wonder whether S: as frequent as think that, so no island pair is decided by frequency
            return verb_group(self.choice(WONDER), tense, num, m) + ["whether"] + self.clause(depth + 1)
        if deep and x < 0.14:  # wonder / know what S __
            v = self.choice(WONDER + KNOW_WH)
            return verb_group(v, tense, num, m) + [self.choice(("what", "who"))] + self.object_gap(depth + 1)
        if deep and x < 0.2:  # control and raising: try to VP, seem to VP
            v = self.choice(CONTROL + (SEEM,))
            return verb_group(v, tense, num, m) + ["to"] + self.vp(num, gender, depth + 1, "base", complex_ok=False)
        if deep and x < 0.25:  # adjunct clause
            return self.vp(num, gender, depth, tense, complex_ok=False) + [self.choice(CONJ)] + self.clause(depth + 1)
        if x < 0.3:  # adjunct -ing phrase
            v = self.pick(TRANSITIVE)
            return self.vp(num, gender, depth, tense, complex_ok=False) + [self.choice(ADJUNCTS), v.ing] + \
                self.np(depth=depth + 1, mod=0.0).toks
        if x < 0.36:  # reflexive object: bound by this clause's subject
            v = self.pick(TRANSITIVE)
            return verb_group(v, tense, num, m) + [reflexive(num, gender)]
        if x < 0.48:
            tail = [self.choice(PREPS[:2] + ("in", "at"))] + self.np("l", depth=depth + 1, mod=0.0).toks \
                if self.coin(0.3) else []
            return copula(tense, num, m) + [self.pick(ADJECTIVES)] + tail
        if x < 0.66:
            v = self.pick(INTRANSITIVE)
            tail = [self.choice(("in", "at", "near"))] + self.np("l", depth=depth + 1).toks if self.coin(0.3) else []
            return verb_group(v, tense, num, m) + tail
        v = self.pick(TRANSITIVE)
        return verb_group(v, tense, num, m) + self.np(depth=depth + 1).toks

    def clause(self, depth: int = 0, tense: str | None = None) -> list[str]:
        s = self.subject(depth)
        return s.toks + self.vp(s.num, s.gender, depth, tense or self.tense())

    # -- constructions ------------------------------------------------------------------------------------------------
    def think_that(self, depth: int = 1) -> list[str]:
        """``S thinks that``: embeds a clause, so its first word is lower-case like any other (no capital cue)."""
        s = self.subject(depth)
        return s.toks + verb_group(self.pick(THINK), self.choice(("pres", "past")), s.num, self.modal()) + ["that"]

    def no_relative(self, num: str | None = None) -> Phrase:
        """``the N that no M saw``: a ``no`` inside a relative clause (it licenses nothing outside it)."""
        num = num or self.num()
        head, inner = self.pick(NOUNS_BY["pa"]), self.pick(NOUNS_BY["pa"])
        rel = "who" if self.coin(0.5) else "that"
        toks = [self.choice(DET_SG if num == "sg" else DET_PL)] + self.adjs() + [noun_form(head, num), rel, "no",
                noun_form(inner, self.num()), self.pick(TRANSITIVE).past]
        return Phrase(toks, num, head.gender)

    def wh_question(self, depth: int = 0) -> list[str]:
        """Object questions with a gap (long-distance across ``think that`` sometimes), subject questions, adjunct
        questions (``who did X see __ after meeting Y``)."""
        x = self.r.random()
        wh = self.choice(("what", "who"))
        past = self.coin(0.5)
        s = self.subject(depth + 1)
        do = "did" if past else ("does" if s.num == "sg" else "do")
        if x < 0.3:
            return [wh, do] + s.toks + [self.pick(TRANSITIVE).base] + ["?"]
        if x < 0.4:  # who is X meeting __ ?: a progressive with its object gap at the end
            return [wh, be(s.num, past=past)] + s.toks + [self.pick(TRANSITIVE).ing, "?"]
        if x < 0.6:
            return [wh, do] + s.toks + [self.pick(THINK).base, "that"] + self.object_gap(depth + 2) + ["?"]
        if x < 0.8:
            v, w = self.pick(TRANSITIVE), self.pick(TRANSITIVE)
            return [wh, do] + s.toks + [v.base, self.choice(ADJUNCTS), w.ing] + self.np(depth=2, mod=0.0).toks + ["?"]
        return ["who"] + self.vp("sg", "n", depth + 1, self.choice(("past", "pres", "perf")), complex_ok=False) + ["?"]

    def yes_no_question(self, depth: int = 0) -> list[str]:
        """``is the N who is V-ing ADJ ?``: the main-clause auxiliary is fronted, never the one in the relative."""
        if self.coin(0.2):  # does X wonder whether S ?: whether clauses in questions too
            s = self.subject(depth + 1)
            return ["does" if s.num == "sg" else "do"] + s.toks + [self.choice(WONDER).base, "whether"] + \
                self.clause(depth + 2) + ["?"]
        if self.coin(0.3):
            return sum(self.modal_question(), [])
        s = self.np("pa", depth=self.max_depth)  # no modifier of its own
        rel = self.relative_be(s.num) if self.coin(0.5) else []
        if self.coin(0.5):
            return [be(s.num)] + s.toks + rel + [self.pick(ADJECTIVES), "?"]
        v = self.pick(TRANSITIVE)
        return ["does" if s.num == "sg" else "do"] + s.toks + rel + [v.base] + self.np(mod=0.0).toks + ["?"]

    def modal_question(self, num: str | None = None, rel_modal: bool | None = None) -> tuple[list[str], ...]:
        """``will the Ns that can swim eat the cake ?``: the main clause's modal is fronted, the relative keeps its own.
        In parts: (fronted modal, subject up to the relative pronoun, the relative's modal or [], its verb, the rest)."""
        num = num or self.num()
        head = self.np("pa", num=num, depth=self.max_depth)  # no modifier of its own
        rel = "who" if self.coin(0.5) else "that"
        inner = self.pick(INTRANSITIVE)
        m_inner = self.modal() if (self.coin(0.5) if rel_modal is None else rel_modal) else None
        rel_verb = [inner.base] if m_inner else verb_group(inner, "pres", num)
        if self.coin(0.5):
            v = self.pick(TRANSITIVE)
            rest = [v.base] + self.np(mod=0.0).toks
        else:
            rest = [self.pick(INTRANSITIVE).base]
        return [self.modal()], head.toks + [rel], [m_inner] if m_inner else [], rel_verb, rest + ["?"]

    def relative_be(self, num: str) -> list[str]:
        """``who is V-ing`` / ``that is ADJ``: the relative whose auxiliary a yes/no question must not front."""
        if self.coin(0.5):
            return ["who" if self.coin(0.6) else "that", be(num), self.pick(INTRANSITIVE).ing]
        return ["that", be(num), self.pick(ADJECTIVES)]

    def existential(self, depth: int = 0, num: str | None = None, raised: bool = False) -> list[str]:
        """``there is a N ...`` / ``there seem to be many N ...``: a weak quantifier, never every/all/most."""
        num = num or self.num(0.5)
        q = self.choice(("a", "a", "one", "no")) if num == "sg" else self.choice(("some", "many", "no", "two", "three",
                                                                                 "few", "several"))
        noun = self.pick(NOUNS_BY["patf"])
        if raised:
            tense = self.choice(("pres", "past", "modal"))
            head = ["there"] + verb_group(SEEM, tense, num, self.modal()) + ["to", "be"]
        else:
            head = ["there", be(num, past=self.coin(0.3))]
        tail = [self.choice(("in", "near", "behind"))] + self.np("l", depth=depth + 1).toks if self.coin(0.6) else \
            self.modifier(noun.cls in "pa", num, noun.gender, depth + 1)
        return head + [q] + self.adjs() + [noun_form(noun, num)] + tail

    def npi(self, depth: int = 0) -> list[str]:
        """``ever`` / ``any`` under negation or a ``no`` subject; the same frames with plain adverbs."""
        if self.coin(0.4):  # embedded, the licensor is a lower-case no like any other
            return self.think_that(depth + 1) + self.npi(depth + 1)
        x = self.r.random()
        v = self.pick(TRANSITIVE)
        obj = self.np(depth=depth + 1).toks
        if x < 0.1:  # a no inside the subject's relative clause licenses nothing: here the not does
            s = self.no_relative()
            return s.toks + ["has" if s.num == "sg" else "have", "not", "ever", v.pp] + obj
        if x < 0.2:
            s = self.no_relative()
            return s.toks + copula(self.choice(("pres", "past")), s.num) + [self.pick(ADJECTIVES)]
        if x < 0.3:
            s = self.subject(depth + 1)
            return s.toks + ["has" if s.num == "sg" else "have", "not", "ever", v.pp] + obj
        if x < 0.55:  # a no-subject licenses ever, even across its relative clause
            num = self.num()
            s = self.np("pa", num, depth, dets=("no",))
            return s.toks + ["has" if num == "sg" else "have", "ever", v.pp] + obj
        if x < 0.7:
            s = self.subject(depth + 1)
            return s.toks + ["did", "n't", v.base, "any", self.pick(NOUNS_BY["tf"]).pl]
        s = self.subject(depth + 1)  # unlicensed frames: adverbs, and a no inside a relative clause
        return s.toks + ["has" if s.num == "sg" else "have", self.choice(("probably", "often", "already", "never",
                                                                          "not")), v.pp] + obj

    def superlative(self, depth: int = 0) -> list[str]:
        """``no N saw more than two N``; ``at least`` / ``at most`` only under a subject that is not ``no``."""
        if self.coin(0.4):
            return self.think_that(depth + 1) + self.superlative(depth + 1)
        v = self.pick(TRANSITIVE)
        n = self.choice(NUMBERS)
        if self.coin(0.4):
            s = self.np("pa", depth=depth + 1, dets=("no",))
            q = self.choice((["more", "than"], ["fewer", "than"]))
        else:  # at least / at most 5 times in 6: each kind of quantifier is as frequent overall
            s = self.subject(depth + 1)
            q = self.choice((["at", "least"], ["at", "most"])) if self.coin(5 / 6) else \
                self.choice((["more", "than"], ["fewer", "than"]))
        return s.toks + [v.past] + q + [n] + self.adjs() + [self.pick(NOUNS_BY["patf"]).pl]

    def ellipsis(self) -> list[str]:
        """``A saw two red N and B saw three (red N)``: the noun, and its adjective with it, may be left out."""
        s1, s2 = self.subject(2), self.subject(2)
        v, w = self.pick(TRANSITIVE), self.pick(TRANSITIVE)
        n1, n2 = self.r.sample(NUMBERS, 2)
        adj, noun = self.pick(ADJECTIVES), self.pick(NOUNS_BY["patf"])
        end = [] if self.coin(0.6) else ([adj] if self.coin(0.5) else []) + [noun.pl]
        return s1.toks + [v.past, n1, adj, noun.pl, "and"] + s2.toks + [w.past, n2] + end

    def hypernym(self) -> list[str]:
        n = self.pick(NOUNS_BY["patf"])
        if self.coin(0.5):
            return ["a", n.sg, "is", "a", "kind", "of", CLASS_WORD[n.cls]]
        return ["every", n.sg, "is", "a", CLASS_WORD[n.cls]]

    def sentence(self, depth: int = 0) -> list[str]:
        """Any sentence, with its final punctuation."""
        x = self.r.random()
        if x < 0.08:
            return self.wh_question(depth)
        if x < 0.12:
            return self.yes_no_question(depth)
        if x < 0.18:
            return self.existential(depth, raised=self.coin(0.3)) + ["."]
        if x < 0.24:
            return self.npi(depth) + ["."]
        if x < 0.27:
            return self.superlative(depth) + ["."]
        if x < 0.3:
            return self.ellipsis() + ["."]
        if x < 0.33:
            return self.hypernym() + ["."]
        return self.clause(depth) + ["."]

    # -- dialogue ------------------------------------------------------------------------------------------------------
    def exchange(self) -> list[list[str]]:
        """Two turns: a question and its congruent answer, or a yes/no question answered with the pronoun switched."""
        x = self.r.random()
        v = self.pick(TRANSITIVE)
        if x < 0.35:  # question-answer congruence: what -> a thing, who -> a person, where -> to a place
            k = self.choice(("what", "who", "where"))
            if k == "where":
                return [["where", "did", "you", "go", "?"], ["to", "the", self.pick(NOUNS_BY["l"]).sg, "."]]
            q = [k, "did", "you", v.base, "?"]
            if k == "what":
                return [q, ["the" if self.coin(0.5) else "a", self.pick(NOUNS_BY["tf"]).sg, "."]]
            return [q, [self.pick(NAMES).name, "."] if self.coin(0.4) else ["the", self.pick(NOUNS_BY["p"]).sg, "."]]
        if x < 0.7:  # turn taking: you -> I, he/she/they stay
            who, ans = self.choice((("you", "I"), ("you", "I"), ("he", "he"), ("she", "she"), ("they", "they")))
            aux = self.choice(("did", "can", "will"))
            yes = self.coin(0.5)
            return [[aux, who, v.base] + self.np("tf", mod=0.0).toks + ["?"],
                    ["yes", ",", ans, aux, "."] if yes else ["no", ",", ans, NEG_AUX[aux], "n't", "."]]
        return [self.sentence(1), self.sentence(1)]


# -- spelling ----------------------------------------------------------------------------------------------------------

PUNCT = {".", ",", "?", "!", ";", ":"}


def fix_articles(tokens: list[str]) -> list[str]:
    return ["an" if t == "a" and i + 1 < len(tokens) and tokens[i + 1][:1] in "aeiou" else t
            for i, t in enumerate(tokens)]


def _cap(tokens: list[str]) -> list[str]:
    """Capitalise the first word of the sentence and of each quotation."""
    out, start = [], True
    for t in tokens:
        if t == "``":
            start = True
        elif start and t[:1].isalpha():
            t, start = t[0].upper() + t[1:], False
        out.append(t)
    return out


def plain(tokens: list[str]) -> str:
    """Ordinary orthography: 'The dog doesn't like "that," she said.'"""
    out, attach = "", False
    for t in _cap(fix_articles(tokens)):
        if t == "``":
            out += (" " if out else "") + '"'
            attach = True
            continue
        if t == "''" or t in PUNCT or t == "n't":
            out += '"' if t == "''" else t
        else:
            out += ("" if not out or attach else " ") + t
        attach = False
    return out


def tokenized(tokens: list[str], lower: bool = False) -> str:
    """Pre-tokenized text ('do n't', 'dog .'), lower-case like CHILDES if asked (names and I keep their capital)."""
    tokens = fix_articles(tokens)
    return " ".join(tokens if lower else _cap(tokens))


def dialogue(turns: list[list[str]], speakers=("A", "B")) -> str:
    """Turns on their own lines, each after a speaker label: the BabyLM supplement's multi-line format."""
    return "\n".join(f"{speakers[i % 2]}: {plain(t)}" for i, t in enumerate(turns))
