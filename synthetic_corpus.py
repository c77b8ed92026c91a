"""A synthetic BabyLM-style corpus and BLiMP-style minimal pairs, all drawn from one small grammar of child-directed English.

``python run_pipeline.py`` uses this when no real data is given, so the whole paper (clean -> tokenizer -> teachers ->
student -> distillation -> BLiMP) runs offline on a CPU in minutes. ``write_corpus(out_dir)`` writes::

    out_dir/babylm_10M/<source>.train     the ten BabyLM 2023 sources, words split like the real 10M track
    out_dir/babylm_dev/<source>.dev
    out_dir/blimp/<paradigm>.jsonl        BLiMP-format pairs (sentence_good, sentence_bad, field, linguistics_term, UID, pairID)

Every source keeps the quirks of the real one so the cleaner (``mrclean.py``) has work to do: HTML tags and ``= = Title = =``
headings in the Wikipedias, credit lines and ``[laughs]`` / ``(music)`` / ``♪ ... ♪`` cues in OpenSubtitles, upper-case OCR
lines with ``l`` for ``I`` in QED, pre-tokenized text (``do n't``, ``dog .``) in AO-CHILDES and CBT, ``_BOOK_TITLE_`` lines
and ````` / ``''`` quotes in CBT, doubled spaces and spaces before punctuation in Gutenberg / BNC / children's stories.

The corpus is always grammatical (number agreement, reflexives, irregular participles, argument structure, NPI licensing,
quantifiers in existentials); the pairs test exactly these with the same vocabulary, so a model trained on the corpus
can learn them. Output is a pure function of ``seed`` (per-file ``random.Random`` instances, no global state).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import namedtuple
from pathlib import Path
from random import Random

# --------------------------------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------------------------------

# Millions of words per source in the BabyLM 2023 strict-small (10M) track; only the proportions are used.
SOURCE_SHARES = {
    "aochildes": 0.44,
    "bnc_spoken": 0.86,
    "cbt": 0.57,
    "children_stories": 0.34,
    "gutenberg": 0.99,
    "open_subtitles": 3.09,
    "qed": 1.04,
    "simple_wikipedia": 1.52,
    "switchboard": 0.12,
    "wikipedia": 0.99,
}
SOURCES = tuple(SOURCE_SHARES)
TRAIN_DIR, DEV_DIR, BLIMP_DIR = "babylm_10M", "babylm_dev", "blimp"

# --------------------------------------------------------------------------------------------------------------------
# Lexicon
# --------------------------------------------------------------------------------------------------------------------

Noun = namedtuple("Noun", "sg pl cls gender")  # cls: string of class letters; gender m/f/n
Verb = namedtuple("Verb", "base s past pp ing objs")  # objs: object classes ('' = intransitive)

# Class letters: p person, a animal, t thing/toy, f food, c clothes, w writable/readable, o openable, r rideable,
# g song, l place. Lists are in rough frequency order (earlier words are sampled more often).
_NOUNS = """
boy boys p m|girl girls p f|baby babies p n|mommy mommies p f|daddy daddies p m|man men p m|woman women p f
child children p n|friend friends p n|mother mothers p f|father fathers p m|sister sisters p f|brother brothers p m
teacher teachers p n|king kings p m|queen queens p f|prince princes p m|princess princesses p f|lady ladies p f
doctor doctors p n|farmer farmers p n|grandma grandmas p f|grandpa grandpas p m|uncle uncles p m|aunt aunts p f
dog dogs a n|cat cats a n|bird birds a n|duck ducks a n|bear bears a n|horse horses ar n|cow cows a n|pig pigs a n
bunny bunnies a n|puppy puppies a n|mouse mice a n|frog frogs a n|rabbit rabbits a n|lion lions a n|monkey monkeys a n
kitten kittens a n|fox foxes a n|owl owls a n|tiger tigers a n|elephant elephants a n|pony ponies ar n
goose geese a n|wolf wolves a n|giraffe giraffes a n
ball balls t n|book books two n|toy toys t n|cup cups t n|box boxes to n|car cars t n|block blocks t n|truck trucks t n
doll dolls t n|spoon spoons t n|bottle bottles to n|picture pictures t n|chair chairs t n|table tables t n|bed beds t n
balloon balloons t n|crayon crayons t n|blanket blankets t n|key keys t n|bike bikes tr n|train trains tr n
boat boats tr n|bus buses r n|kite kites t n|drum drums t n|present presents to n|leaf leaves t n|knife knives t n
door doors o n|window windows o n|letter letters wo n|story stories w n|song songs g n
hat hats c n|shoe shoes c n|sock socks c n|coat coats c n|dress dresses c n|boot boots c n
apple apples f n|cookie cookies f n|banana bananas f n|cake cakes f n|sandwich sandwiches f n|carrot carrots f n
egg eggs f n|orange oranges f n|grape grapes f n|biscuit biscuits f n|bone bones f n|sweet sweets f n
park parks l n|garden gardens l n|kitchen kitchens l n|house houses l n|room rooms l n|school schools l n
farm farms l n|forest forests l n|river rivers l n|tree trees l n|shop shops l n|field fields l n
"""
NOUNS = tuple(
    Noun(*w.split()) for w in _NOUNS.replace("\n", "|").split("|") if w.strip()
)
MASS = ("milk", "juice", "water", "tea", "soup")
NAMES_M = ("John", "Tom", "Ben", "Max", "Jack", "Peter", "Paul", "David", "Leo", "Adam", "Harry", "Oliver")
NAMES_F = ("Mary", "Anna", "Emma", "Lucy", "Sarah", "Lily", "Kate", "Sophie", "Alice", "Jane", "Mia", "Rose")

# base 3sg past participle ing | object classes
_VERBS = """
see sees saw seen seeing|paftcw
like likes liked liked liking|paftc
want wants wanted wanted wanting|aftc
find finds found found finding|atcw
take takes took taken taking|aft
eat eats ate eaten eating|f
break breaks broke broken breaking|t
hold holds held held holding|at
throw throws threw thrown throwing|t
draw draws drew drawn drawing|pat
hide hides hid hidden hiding|aft
bite bites bit bitten biting|f
wear wears wore worn wearing|c
steal steals stole stolen stealing|tf
drink drinks drank drunk drinking|M
write writes wrote written writing|w
ride rides rode ridden riding|r
forget forgets forgot forgotten forgetting|t
know knows knew known knowing|p
shake shakes shook shaken shaking|t
choose chooses chose chosen choosing|tfc
sing sings sang sung singing|g
hug hugs hugged hugged hugging|pa
push pushes pushed pushed pushing|tpa
kick kicks kicked kicked kicking|t
catch catches caught caught catching|ta
help helps helped helped helping|pa
wash washes washed washed washing|pac
hurt hurts hurt hurt hurting|pa
love loves loved loved loving|paf
watch watches watched watched watching|pa
need needs needed needed needing|tfc
carry carries carried carried carrying|ta
bring brings brought brought bringing|tfa
buy buys bought bought buying|tfc
make makes made made making|tf
read reads read read reading|w
open opens opened opened opening|o
drop drops dropped dropped dropping|tf
feed feeds fed fed feeding|pa
chase chases chased chased chasing|pa
kiss kisses kissed kissed kissing|pa
tickle tickles tickled tickled tickling|pa
fix fixes fixed fixed fixing|t
sleep sleeps slept slept sleeping|
laugh laughs laughed laughed laughing|
smile smiles smiled smiled smiling|
cry cries cried cried crying|
fall falls fell fallen falling|
sit sits sat sat sitting|
wait waits waited waited waiting|
dance dances danced danced dancing|
arrive arrives arrived arrived arriving|
sneeze sneezes sneezed sneezed sneezing|
giggle giggles giggled giggled giggling|
yawn yawns yawned yawned yawning|
snore snores snored snored snoring|
cough coughs coughed coughed coughing|
jump jumps jumped jumped jumping|
swim swims swam swum swimming|
"""
VERBS = tuple(
    Verb(*line.split("|")[0].split(), line.split("|")[1]) for line in _VERBS.strip().splitlines()
)
TRANSITIVE = tuple(v for v in VERBS if v.objs)
INTRANSITIVE = tuple(v for v in VERBS if not v.objs)
# Verbs that never take an object / always need one (used for the argument-structure pairs).
STRICT_INTRANSITIVE = tuple(v for v in INTRANSITIVE if v.base in
                            {"sleep", "laugh", "smile", "fall", "arrive", "sneeze", "giggle", "yawn", "snore", "cough"})
STRICT_TRANSITIVE = tuple(v for v in TRANSITIVE if v.base in
                          {"find", "take", "like", "want", "need", "hold", "carry", "bring", "buy", "fix"})
IRREGULAR_PP = tuple(v for v in TRANSITIVE if v.past != v.pp and not v.pp.endswith("ed"))
REFLEXIVE_VERBS = tuple(v for v in TRANSITIVE if v.base in
                        {"see", "hurt", "wash", "help", "like", "love", "hide", "draw", "tickle", "hug", "watch"})

ADJ_ANY = ("big", "little", "small", "red", "blue", "green", "yellow", "brown", "white", "black", "nice", "pretty",
           "old", "new", "good", "tiny", "lovely", "dirty", "clean", "wet")
ADJ_ANIM = ("happy", "sad", "hungry", "tired", "sleepy", "silly", "funny", "naughty", "scared", "good", "big", "little")
ADJ_FOOD = ("yummy", "hot", "cold", "big", "little", "nice", "good", "red", "green")
PREPS = ("in", "on", "under", "near", "behind", "by", "with")
RELATIONAL = ("friend", "mother", "father", "sister", "brother", "teacher", "picture", "story", "book")
DET_SG = ("the", "a", "this", "that", "my", "your", "his", "her", "our", "their")
DET_PL = ("the", "these", "those", "my", "your", "some", "two", "three", "many", "our", "their")
DET_ANY = ("the", "my", "your", "his", "her", "our", "their")
MODALS = ("can", "will", "should", "could", "must", "would")


def _regular(n: Noun) -> bool:
    return n.pl in (n.sg + "s", n.sg + "es", n.sg[:-1] + "ies")


_BY_CLASS = {c: tuple(n for n in NOUNS if c in n.cls) for c in "paftcworgl"}
_BY_CLASS["A"] = _BY_CLASS["p"] + _BY_CLASS["a"]  # animate
ANIMATE_REGULAR = tuple(n for n in _BY_CLASS["A"] if _regular(n))
ANIMATE_IRREGULAR = tuple(n for n in _BY_CLASS["A"] if not _regular(n))
GENDERED = tuple(n for n in _BY_CLASS["p"] if n.gender in "mf")
ALL_COUNT = tuple(n for n in NOUNS if "l" not in n.cls)
IRREGULAR_COUNT = tuple(n for n in ALL_COUNT if not _regular(n))
NOUN_BY_SG = {n.sg: n for n in NOUNS}
_PLACES = tuple(n.sg for n in _BY_CLASS["l"])

# --------------------------------------------------------------------------------------------------------------------
# Grammar: sentences are token lists. Placeholders ("AGR", 3sg-form, other-form) and ("BE", tense) stand for the one
# word that agrees with the subject; ``resolve`` fills them in. Clitics ("n't", "'s") and punctuation are own tokens.
# --------------------------------------------------------------------------------------------------------------------

_CUM: dict[int, list[float]] = {}


def _cum(n: int) -> list[float]:
    if n not in _CUM:
        acc, out = 0.0, []
        for i in range(n):
            acc += 1.0 / (i + 1.5) ** 0.8  # mildly Zipfian within each word list
            out.append(acc)
        _CUM[n] = out
    return _CUM[n]


def resolve(tokens, feat: str) -> list[str]:
    """Fill agreement placeholders for a subject with features 'sg3', 'pl', '1sg' or '2'."""
    out = []
    for t in tokens:
        if isinstance(t, tuple):
            if t[0] == "AGR":
                t = t[1] if feat == "sg3" else t[2]
            elif t[1] == "pres":
                t = {"sg3": "is", "1sg": "am"}.get(feat, "are")
            else:
                t = "was" if feat in ("sg3", "1sg") else "were"
        out.append(t)
    return out


def flip(feat: str) -> str:
    return "pl" if feat == "sg3" else "sg3"


def fix_articles(tokens: list[str]) -> list[str]:
    return ["an" if t == "a" and i + 1 < len(tokens) and tokens[i + 1][:1] in "aeiou" else t
            for i, t in enumerate(tokens)]


Subj = namedtuple("Subj", "toks feat gender")


class Grammar:
    def __init__(self, rng: Random):
        self.r = rng

    # -- lexical choice -----------------------------------------------------------------------------------------------
    def pick(self, items):
        return self.r.choices(items, cum_weights=_cum(len(items)))[0]

    def coin(self, p: float) -> bool:
        return self.r.random() < p

    def num(self, p_pl: float = 0.4) -> str:
        return "pl" if self.coin(p_pl) else "sg3"

    def adj_for(self, noun: Noun):
        if "p" in noun.cls or "a" in noun.cls:
            return self.pick(ADJ_ANIM)
        if "f" in noun.cls:
            return self.pick(ADJ_FOOD)
        return self.pick(ADJ_ANY)

    def np(self, noun: Noun, feat: str, dets=None, p_adj: float = 0.2) -> list[str]:
        det = self.pick(dets or (DET_SG if feat == "sg3" else DET_PL))
        toks = [det]
        if self.coin(p_adj):
            toks.append(self.adj_for(noun))
        toks.append(noun.sg if feat == "sg3" else noun.pl)
        return toks

    def name(self, gender=None):
        gender = gender or self.r.choice("mf")
        return self.pick(NAMES_M if gender == "m" else NAMES_F), gender

    def subject(self, feat=None, p_name=0.15, p_pron=0.15, nouns=None) -> Subj:
        """An animate subject: a name, a pronoun or a noun phrase."""
        x = self.r.random()
        if feat is None and x < p_pron:
            pron, f, g = self.r.choice((("I", "1sg", "n"), ("you", "2", "n"), ("he", "sg3", "m"), ("she", "sg3", "f"),
                                        ("we", "pl", "n"), ("they", "pl", "n")))
            return Subj([pron], f, g)
        feat = feat or self.num()
        if feat == "sg3" and x < p_pron + p_name:
            nm, g = self.name()
            return Subj([nm], "sg3", g)
        noun = self.pick(nouns or _BY_CLASS["A"])
        return Subj(self.np(noun, feat), feat, noun.gender)

    def obj(self, verb: Verb, feat=None, p_adj=0.2) -> list[str]:
        if verb.objs == "M":
            return [self.pick(("the", "some", "my", "your", "his", "her")), self.pick(MASS)]
        cls = self.r.choice(verb.objs)
        noun = self.pick(_BY_CLASS[cls])
        return self.np(noun, feat or self.num(), p_adj=p_adj)

    def pp(self) -> list[str]:
        prep = self.pick(PREPS)
        if prep == "with":
            return ["with", self.pick(DET_ANY)] + [self.pick(_BY_CLASS["A"]).sg]
        if prep in ("in", "near", "by", "behind") and self.coin(0.6):
            return [prep, "the", self.pick(_PLACES)]
        noun = self.pick(_BY_CLASS["t"][:12])
        feat = self.num(0.2)
        return [prep, self.pick(("the", "the", "my", "your", "our"))] + [noun.sg if feat == "sg3" else noun.pl]

    def refl(self, subj: Subj) -> str:
        if subj.feat == "pl":
            return "themselves"
        if subj.feat == "1sg":
            return "myself"
        if subj.feat == "2":
            return "yourself"
        g = subj.gender if subj.gender in "mf" else self.r.choice("mf")
        return "himself" if g == "m" else "herself"

    # -- verb groups (with agreement placeholders) ----------------------------------------------------------------------
    def vgroup(self, verb: Verb, tense: str) -> list:
        if tense == "pres":
            return [("AGR", verb.s, verb.base)]
        if tense == "past":
            return [verb.past]
        if tense == "prog":
            return [("BE", "pres"), verb.ing]
        if tense == "prog_past":
            return [("BE", "past"), verb.ing]
        if tense == "perf":
            return [("AGR", "has", "have"), verb.pp]
        if tense == "modal":
            return [self.pick(MODALS), verb.base]
        if tense == "neg":
            return [("AGR", "does", "do"), "n't", verb.base]
        if tense == "past_neg":
            return ["did", "n't", verb.base]
        if tense == "fut_neg":
            return ["wo", "n't", verb.base]
        if tense == "cant":
            return ["ca", "n't", verb.base]
        raise ValueError(tense)

    TENSES = ("pres", "past", "past", "prog", "perf", "modal", "neg", "past_neg", "prog_past", "cant", "fut_neg")

    def tense(self):
        return self.pick(self.TENSES)

    def vp(self, tense=None, trans=None) -> list:
        """A verb phrase with an unresolved agreement slot: trans/intrans/copula."""
        tense = tense or self.tense()
        x = self.r.random()
        if trans is True or (trans is None and x < 0.55):
            v = self.pick(TRANSITIVE)
            toks = self.vgroup(v, tense) + self.obj(v)
            if self.coin(0.2):
                toks += self.pp()
            return toks
        if trans is False or x < 0.8:
            v = self.pick(INTRANSITIVE)
            toks = self.vgroup(v, tense)
            if self.coin(0.5):
                toks += self.pp()
            return toks
        be = ("BE", "past" if tense in ("past", "prog_past", "past_neg") else "pres")
        return [be] + (["not"] if self.coin(0.1) else []) + [self.pick(ADJ_ANIM)]

    # -- the minimal-pair paradigms (also the core of the corpus: the corpus uses their good sentences) ----------------
    def svagr_pres_vp(self, subject_is_thing=False) -> list:
        x = self.r.random()
        if subject_is_thing:
            return [("BE", "pres"), self.pick(ADJ_ANY)] if x < 0.7 else [("BE", "pres")] + self.pp()
        if x < 0.4:
            v = self.pick(TRANSITIVE)
            return [("AGR", v.s, v.base)] + self.obj(v)
        if x < 0.6:
            v = self.pick(INTRANSITIVE)
            return [("AGR", v.s, v.base)] + (self.pp() if self.coin(0.5) else [])
        if x < 0.8:
            return [("BE", "pres"), self.pick(ADJ_ANIM)]
        if x < 0.9:
            v = self.pick(TRANSITIVE)
            return [("AGR", "does", "do"), "n't", v.base] + self.obj(v)
        v = self.pick(TRANSITIVE)
        return [("AGR", "has", "have"), v.pp] + self.obj(v)

    def p_regular_plural_1(self):
        feat = self.num(0.5)
        subj = self.np(self.pick(ANIMATE_REGULAR), feat)
        vp = self.svagr_pres_vp()
        return subj + resolve(vp, feat), subj + resolve(vp, flip(feat))

    def p_regular_plural_2(self):
        feat = self.num(0.5)
        noun, det = self.pick(ANIMATE_REGULAR), self.pick(DET_ANY)
        adj = [self.adj_for(noun)] if self.coin(0.2) else []
        vp = resolve(self.svagr_pres_vp(), feat)
        good = [det] + adj + [noun.sg if feat == "sg3" else noun.pl] + vp
        bad = [det] + adj + [noun.pl if feat == "sg3" else noun.sg] + vp
        return good, bad

    def p_irregular_plural_1(self):
        feat = self.num(0.5)
        subj = self.np(self.pick(ANIMATE_IRREGULAR), feat)
        vp = self.svagr_pres_vp()
        return subj + resolve(vp, feat), subj + resolve(vp, flip(feat))

    def p_distractor_relational(self):
        feat = self.num(0.5)
        head = NOUN_BY_SG[self.pick(RELATIONAL)]
        other = self.pick(_BY_CLASS["A"])
        subj = self.np(head, feat, p_adj=0.0) + ["of"] + self.np(other, flip(feat), dets=("the",), p_adj=0.1)
        vp = self.svagr_pres_vp(subject_is_thing="p" not in head.cls)
        return subj + resolve(vp, feat), subj + resolve(vp, flip(feat))

    def p_distractor_relative(self):
        feat = self.num(0.5)
        head = self.pick(_BY_CLASS["A"])
        inner = self.subject(feat=flip(feat), p_name=0.0, p_pron=0.0)
        v = self.pick(tuple(v for v in TRANSITIVE if "p" in v.objs or "a" in v.objs))
        rc = [self.r.choice(("that", "who"))] + inner.toks + resolve(self.vgroup(v, self.r.choice(("pres", "past"))),
                                                                      inner.feat)
        subj = self.np(head, feat, p_adj=0.0) + rc
        vp = self.svagr_pres_vp()
        return subj + resolve(vp, feat), subj + resolve(vp, flip(feat))

    def _det_frame(self, nouns):
        """(prefix tokens, noun, verb) for 'SUBJ VERB this/these NOUN'."""
        noun = self.pick(nouns)
        cls = [c for c in noun.cls if c != "l"]
        verbs = tuple(v for v in TRANSITIVE if set(cls) & set(v.objs))
        v = self.pick(verbs)
        s = self.subject(p_pron=0.0, feat=self.num(0.3))
        prefix = s.toks + resolve(self.vgroup(v, self.r.choice(("pres", "past", "modal"))), s.feat)
        return prefix, noun

    def p_det_noun_1(self, nouns=None):
        prefix, noun = self._det_frame(nouns or tuple(n for n in ALL_COUNT if _regular(n)))
        det = self.r.choice(("this", "that", "these", "those"))
        good_n, bad_n = (noun.sg, noun.pl) if det in ("this", "that") else (noun.pl, noun.sg)
        adj = [self.adj_for(noun)] if self.coin(0.2) else []
        return prefix + [det] + adj + [good_n], prefix + [det] + adj + [bad_n]

    def p_det_noun_2(self):
        prefix, noun = self._det_frame(tuple(n for n in ALL_COUNT if _regular(n)))
        feat = self.num(0.5)
        good_d, bad_d = self.r.choice((("this", "these"), ("that", "those")))
        if feat == "pl":
            good_d, bad_d = bad_d, good_d
        adj = [self.adj_for(noun)] if self.coin(0.2) else []
        n = noun.sg if feat == "sg3" else noun.pl
        return prefix + [good_d] + adj + [n], prefix + [bad_d] + adj + [n]

    def p_det_noun_irregular_1(self):
        return self.p_det_noun_1(IRREGULAR_COUNT)

    def _refl_frame(self, subj: Subj):
        v = self.pick(REFLEXIVE_VERBS)
        t = self.r.choice(("past", "past", "pres", "modal", "prog", "perf", "prog_past"))
        return subj.toks + resolve(self.vgroup(v, t), subj.feat)

    def _gendered_sg_subject(self) -> Subj:
        if self.coin(0.5):
            nm, g = self.name()
            return Subj([nm], "sg3", g)
        noun = self.pick(GENDERED)
        return Subj(self.np(noun, "sg3"), "sg3", noun.gender)

    def p_anaphor_gender(self):
        s = self._gendered_sg_subject()
        pre = self._refl_frame(s)
        good, bad = ("himself", "herself") if s.gender == "m" else ("herself", "himself")
        return pre + [good], pre + [bad]

    def p_anaphor_number(self):
        if self.coin(0.5):
            s = self._gendered_sg_subject()
            good, bad = ("himself" if s.gender == "m" else "herself"), "themselves"
        else:
            s = self.subject(feat="pl", p_name=0.0, p_pron=0.0)
            good, bad = "themselves", self.r.choice(("himself", "herself"))
        pre = self._refl_frame(s)
        return pre + [good], pre + [bad]

    def p_irregular_pp(self):
        v = self.pick(IRREGULAR_PP)
        s = self.subject(p_pron=0.0)
        rest = self.obj(v) + (self.pp() if self.coin(0.2) else [])
        return s.toks + [v.past] + rest, s.toks + [v.pp] + rest

    def p_transitive(self):
        s = self.subject(p_pron=0.0)
        v, w = self.pick(STRICT_TRANSITIVE), self.pick(STRICT_INTRANSITIVE)
        tense = self.r.choice(("past", "past", "pres"))
        o = self.obj(v)
        return (s.toks + resolve(self.vgroup(v, tense), s.feat) + o,
                s.toks + resolve(self.vgroup(w, tense), s.feat) + o)

    def p_intransitive(self):
        s = self.subject(p_pron=0.0)
        v, w = self.pick(STRICT_INTRANSITIVE), self.pick(STRICT_TRANSITIVE)
        tense = self.r.choice(("past", "past", "pres"))
        return s.toks + resolve(self.vgroup(v, tense), s.feat), s.toks + resolve(self.vgroup(w, tense), s.feat)

    def p_npi_negation(self):
        s = self.subject(p_pron=0.0)
        v = self.pick(TRANSITIVE)
        aux = resolve([("AGR", "has", "have")], s.feat) if self.coin(0.7) else ["had"]
        rest = ["ever", v.pp] + self.obj(v)
        return s.toks + aux + ["not"] + rest, s.toks + aux + ["probably"] + rest

    def p_existential_quant(self):
        feat = self.num(0.5)
        past = self.coin(0.3)
        noun = self.pick(_BY_CLASS["A"] + _BY_CLASS["t"] + _BY_CLASS["f"])
        if feat == "sg3":
            be, good_q, bad_q = ("was" if past else "is"), self.r.choice(("a", "a", "no")), self.r.choice(("every", "each"))
        else:
            be = "were" if past else "are"
            good_q = self.r.choice(("some", "many", "no", "two", "three", "few"))
            bad_q = self.r.choice(("all", "most"))
        adj = [self.adj_for(noun)] if self.coin(0.2) else []
        rest = adj + [noun.sg if feat == "sg3" else noun.pl] + self.pp()
        return ["there", be, good_q] + rest, ["there", be, bad_q] + rest

    # UID -> (field, linguistics_term, generator name)
    PARADIGMS = {
        "regular_plural_subject_verb_agreement_1": ("morphology", "subject_verb_agreement", "p_regular_plural_1"),
        "regular_plural_subject_verb_agreement_2": ("morphology", "subject_verb_agreement", "p_regular_plural_2"),
        "irregular_plural_subject_verb_agreement_1": ("morphology", "subject_verb_agreement", "p_irregular_plural_1"),
        "distractor_agreement_relational_noun": ("morphology", "subject_verb_agreement", "p_distractor_relational"),
        "distractor_agreement_relative_clause": ("morphology", "subject_verb_agreement", "p_distractor_relative"),
        "determiner_noun_agreement_1": ("morphology", "determiner_noun_agreement", "p_det_noun_1"),
        "determiner_noun_agreement_2": ("morphology", "determiner_noun_agreement", "p_det_noun_2"),
        "determiner_noun_agreement_irregular_1": ("morphology", "determiner_noun_agreement", "p_det_noun_irregular_1"),
        "anaphor_gender_agreement": ("morphology", "anaphor_agreement", "p_anaphor_gender"),
        "anaphor_number_agreement": ("morphology", "anaphor_agreement", "p_anaphor_number"),
        "irregular_past_participle_verbs": ("morphology", "irregular_forms", "p_irregular_pp"),
        "transitive": ("syntax", "argument_structure", "p_transitive"),
        "intransitive": ("syntax", "argument_structure", "p_intransitive"),
        "sentential_negation_npi_licensor_present": ("semantics", "npi_licensing", "p_npi_negation"),
        "existential_there_quantifiers_1": ("semantics", "quantifiers", "p_existential_quant"),
    }

    def pair(self, uid: str):
        good, bad = getattr(self, self.PARADIGMS[uid][2])()
        return fix_articles(good) + ["."], fix_articles(bad) + ["."]

    # -- corpus sentence families ----------------------------------------------------------------------------------------
    _PAIR_GENS = tuple(v[2] for v in PARADIGMS.values())

    def core(self) -> list:
        """A grammatical declarative exercising the patterns the pairs test (or a plain clause)."""
        x = self.r.random()
        if x < 0.45:
            return fix_articles(getattr(self, self.r.choice(self._PAIR_GENS))()[0]) + ["."]
        if x < 0.55:  # NPI / adverb contexts around the same perfects
            s = self.subject()
            v = self.pick(TRANSITIVE)
            have = resolve([("AGR", "has", "have")], s.feat)
            adv = self.r.choice((["never"], ["probably"], ["not", "ever"], ["already"], ["just"]))
            return fix_articles(s.toks + have + adv + [v.pp] + self.obj(v)) + ["."]
        if x < 0.62:  # quantified subjects (every/each/all/most): agreement + quantifier vocabulary
            feat = self.num(0.5)
            q = self.r.choice(("every", "each")) if feat == "sg3" else self.r.choice(("all", "most", "many", "some"))
            noun = self.pick(_BY_CLASS["A"])
            return fix_articles([q, noun.sg if feat == "sg3" else noun.pl] + resolve(self.vp(tense="pres"), feat)) + ["."]
        if x < 0.68:  # passives with irregular participles
            v = self.pick(tuple(v for v in IRREGULAR_PP + TRANSITIVE[:10] if v.objs != "M"))
            feat = self.num()
            o = self.obj(v, feat=feat)
            agent = self.subject(p_pron=0.0)
            return fix_articles(o + [("was" if feat == "sg3" else "were"), v.pp, "by"] + agent.toks) + ["."]
        s = self.subject()
        return fix_articles(s.toks + resolve(self.vp(), s.feat)) + ["."]

    def child(self) -> list:
        """Child-directed speech: questions, imperatives, 'look at', short turns."""
        x = self.r.random()
        if x < 0.12:
            n = self.pick(ALL_COUNT)
            feat = self.num(0.3)
            return ["look", "at"] + fix_articles(self.np(n, feat, p_adj=0.4)) + [self.r.choice(("!", "."))]
        if x < 0.22:
            v = self.pick(TRANSITIVE)
            lead = self.r.choice((["do", "you"], ["can", "you"], ["did", "you"], ["would", "you", "like", "to"],
                                  ["do", "you", "want", "to"]))
            return lead + [v.base] + fix_articles(self.obj(v)) + ["?"]
        if x < 0.32:
            s = self.subject(p_pron=0.0, p_name=0.2)
            v = self.pick(TRANSITIVE)
            do = resolve([("AGR", "does", "do")], s.feat)
            return do + s.toks + [v.base] + fix_articles(self.obj(v)) + ["?"]
        if x < 0.42:
            n = self.pick(ALL_COUNT)
            feat = self.num(0.4)
            be = resolve([("BE", "pres")], feat)
            if self.coin(0.5):
                return ["where"] + be + self.np(n, feat, dets=("the", "my", "your"), p_adj=0.0) + ["?"]
            return be + self.np(n, feat, dets=("the", "this", "that") if feat == "sg3" else ("the", "these", "those"),
                                p_adj=0.0) + [self.adj_for(n), "?"]
        if x < 0.5:
            n = self.pick(ALL_COUNT)
            if self.coin(0.5):
                return self.r.choice((["that", "'s"], ["it", "'s"], ["this", "is"])) + fix_articles(["a", n.sg]) + ["."]
            return self.r.choice((["those", "are"], ["these", "are"], ["they", "'re"])) + [n.pl] + ["."]
        if x < 0.62:
            v = self.pick(TRANSITIVE)
            lead = self.r.choice(([], ["do", "n't"], ["let", "'s"], ["please"], ["now"]))
            tail = self.r.choice((["."], ["!"], [",", "please", "."]))
            if v.objs == "M":
                o = self.obj(v)
            else:
                feat = self.num(0.3)
                dets = ("the", "your", "my", "this", "that") if feat == "sg3" else ("the", "your", "my", "these", "those")
                o = self.np(self.pick(_BY_CLASS[self.r.choice(v.objs)]), feat, dets=dets)
            return lead + [v.base] + fix_articles(o) + tail
        if x < 0.7:
            n = self.pick(_BY_CLASS["t"] + _BY_CLASS["f"])
            return ["put", "the", n.sg, self.r.choice(("in", "on", "under", "behind")), "the", self.pick(_BY_CLASS["l"] + _BY_CLASS["t"][:12]).sg, "."]
        if x < 0.78:
            n = self.pick(_BY_CLASS["a"])
            return self.r.choice((["what", "does", "the", n.sg, "say", "?"], ["what", "do", n.pl, "say", "?"],
                                  ["where", "did", "the", n.sg, "go", "?"], ["who", "is", "that", "?"],
                                  ["what", "is", "this", "?"], ["what", "are", "these", "?"]))
        if x < 0.88:
            return self.r.choice((["good", "girl", "."], ["good", "boy", "."], ["yes", "."], ["no", "."],
                                  ["okay", "."], ["that", "'s", "right", "."], ["uh", "oh", "."], ["here", "you", "go", "."],
                                  ["come", "here", "."], ["all", "done", "."], ["thank", "you", "."], ["bye", "bye", "."],
                                  ["oh", "dear", "."], ["well", "done", "!"], ["be", "careful", "."]))
        s = self.subject()
        return fix_articles(s.toks + resolve(self.vp(tense=self.r.choice(("pres", "prog", "past"))), s.feat)) + ["."]

    def narrative(self) -> list:
        """Past-tense storytelling, with quoted speech as `` ... '' tokens."""
        x = self.r.random()
        if x < 0.06:
            n = self.pick(GENDERED)
            nm, g = self.name(n.gender)
            return (["once", "upon", "a", "time", "there", "was", "a", self.adj_for(n), n.sg, "named", nm, "."]
                    if self.coin(0.5) else ["once", "upon", "a", "time", "there", "lived", "a", n.sg, "."])
        if x < 0.2:
            s = self.subject(p_pron=0.0)
            speech = self.child()
            return ["``"] + speech[:-1] + [","] + ["''"] + ["said"] + s.toks + ["."] if speech[-1] == "." else \
                ["``"] + speech + ["''"] + ["said"] + s.toks + ["."]
        if x < 0.3:
            lead = self.r.choice((["one", "day", ","], ["then"], ["after", "that", ","], ["soon"], ["the", "next", "day", ","]))
            s = self.subject()
            return lead + fix_articles(s.toks + resolve(self.vp(tense="past"), s.feat)) + ["."]
        if x < 0.38:
            s = self.subject()
            return s.toks + resolve([("BE", "past")], s.feat) + ["very", self.pick(ADJ_ANIM), "."]
        if x < 0.42:
            return self.r.choice((["the", "end", "."], ["and", "they", "lived", "happily", "ever", "after", "."]))
        if x < 0.7:
            s = self.subject()
            return fix_articles(s.toks + resolve(self.vp(tense=self.r.choice(("past", "prog_past", "past_neg"))),
                                                 s.feat)) + ["."]
        return self.core()

    def dialogue(self) -> list:
        x = self.r.random()
        if x < 0.2:
            return self.r.choice((["yeah", "."], ["yes", "."], ["no", "."], ["okay", "."], ["oh", "."], ["right", "."],
                                  ["really", "?"], ["i", "do", "n't", "know", "."], ["i", "think", "so", "."],
                                  ["thank", "you", "."], ["come", "on", "."], ["what", "?"], ["hello", "."], ["hi", "."],
                                  ["mm", "."], ["oh", "dear", "."], ["sorry", "."], ["wait", "."], ["let", "'s", "go", "."]))
        if x < 0.35:
            lead = self.r.choice((["i", "think"], ["i", "know"], ["you", "know", ","], ["well", ","], ["maybe"],
                                  ["i", "guess"], ["i", "mean", ","]))
            return lead + self.core()
        if x < 0.45:
            s = self.subject()
            return fix_articles(s.toks + resolve(self.vp(tense=self.r.choice(("past", "prog", "perf"))), s.feat)) + \
                [self.r.choice(("yesterday", "today", "again", "too")), "."]
        if x < 0.55:
            return self.child()
        return self.core()

    def lecture(self) -> list:
        x = self.r.random()
        if x < 0.12:
            n = self.pick(_BY_CLASS["a"] + _BY_CLASS["t"])
            return self.r.choice((["so", "today", "we", "are", "going", "to", "talk", "about", n.pl, "."],
                                  ["let", "'s", "look", "at", "this", "picture", "."],
                                  ["this", "is", "called"] + fix_articles(["a", n.sg]) + ["."],
                                  ["okay", ",", "so", "what", "do", "you", "see", "here", "?"],
                                  ["now", "let", "'s", "look", "at", "the", n.pl, "."]))
        if x < 0.3:
            return self.r.choice((["now", "you", "can", "see", "that"], ["so"], ["and", "then"], ["remember", "that"],
                                  ["here"])) + self.core()
        return self.core()

    def encyclopedic(self) -> list:
        x = self.r.random()
        n = self.pick(_BY_CLASS["a"] + _BY_CLASS["f"] + _BY_CLASS["t"])
        kind = "animal" if "a" in n.cls else "food" if "f" in n.cls else "thing"
        if x < 0.15:
            return fix_articles(["the", n.sg, "is", "a", "kind", "of", kind]) + ["."]
        if x < 0.3:
            v = self.pick(TRANSITIVE)
            return fix_articles([n.pl, v.base] + self.obj(v, feat="pl", p_adj=0.0)) + ["."] \
                if "a" in n.cls else fix_articles(["many", "people", "like", n.pl]) + ["."]
        if x < 0.4:
            feat = self.num(0.5)
            if "a" in n.cls:
                pl = self.pick(_BY_CLASS["l"])
                return ([n.pl, "live"] if feat == "pl" else ["the", n.sg, "lives"]) + ["in", "the", pl.pl, "."]
            return (["some", n.pl, "are", self.adj_for(n)] if feat == "pl" else ["the", n.sg, "is", "often",
                                                                                     self.adj_for(n)]) + ["."]
        return self.core()

    def document(self, family: str, k: int) -> list[list]:
        return [getattr(self, family)() for _ in range(k)]


# --------------------------------------------------------------------------------------------------------------------
# Surface realisation
# --------------------------------------------------------------------------------------------------------------------

_PUNCT = {".", ",", "?", "!", ";", ":"}
_NAMES = set(NAMES_M) | set(NAMES_F)


def _cap(tokens: list[str]) -> list[str]:
    """Capitalise the first word of the sentence and of each quotation; 'i' -> 'I'."""
    out, start = [], True
    for t in tokens:
        if t == "i":
            t = "I"
        if t == "``":
            start = True
        elif start and t[:1].isalpha():
            t = t[0].upper() + t[1:]
            start = False
        out.append(t)
    return out


def plain(tokens: list[str]) -> str:
    """Ordinary English orthography: 'The dog doesn't like "that," she said.'"""
    out = ""
    attach_next = False
    for t in _cap(tokens):
        if t == "``":
            out += (" " if out else "") + '"'
            attach_next = True
            continue
        if t == "''":
            out += '"'
            continue
        if t in _PUNCT or t.startswith("'") or t == "n't":
            out += t
        else:
            out += ("" if not out or attach_next else " ") + t
        attach_next = False
    return out


def tokenized(tokens: list[str], lower: bool = False) -> str:
    """Pre-tokenized (PTB-like) text: 'do n't', 'it 's', 'dog .'; lower-case like CHILDES if asked."""
    if lower:
        return " ".join(t if t in _NAMES else ("I" if t == "i" else t) for t in tokens)
    return " ".join(_cap(tokens))


# --------------------------------------------------------------------------------------------------------------------
# Sources: each returns lines until it has `target` words (whitespace-separated tokens)
# --------------------------------------------------------------------------------------------------------------------

_CREDITS = ("Subtitles by {}", "Synced and corrected by {}", "Subtitles downloaded from www.OpenSubtitles.org",
            "Sync and corrections by {}", "Translated by {}")
_CREDIT_NAMES = ("explosiveskull", "GoldenBeard", "Marty", "n17t01", "SubCentral", "Lucy Smith")
_CUES = ("[laughs]", "[sighs]", "(music)", "(door closes)", "[applause]", "(laughing)", "[music playing]")
_SONGS = ("♪ la la la ♪", "♪ twinkle twinkle little star ♪", "♪ happy birthday to you ♪", "♪ la la ♪")
_WIKI_TOPICS = ("History", "Life", "Food", "Habitat", "Name", "Description", "Behaviour", "Other websites", "Culture")
_REFS = ("Smith , John ( 2004 ) . Animals of the World . p. 12", "{{cite web | title = Animals }}",
         "Brown 1998 , p. 45", "{{cite book | author = Miller | year = 2010 }}")
_BOOKS = ("The_Little_Red_Hen", "Peter_Rabbit", "The_Three_Bears", "Jack_and_the_Beanstalk", "The_Wind_in_the_Willows",
          "Alice_in_Wonderland", "The_Secret_Garden", "Black_Beauty")


def _words(line: str) -> int:
    return len(line.split())


def _messy(line: str, r: Random) -> str:
    """Gutenberg/BNC/stories noise: a doubled space and/or a space before punctuation."""
    if r.random() < 0.6 and " " in line:
        i = r.choice([i for i, c in enumerate(line) if c == " "])
        line = line[:i] + "  " + line[i + 1:]
    if r.random() < 0.7:
        for p in (".", ",", "?", "!"):
            j = line.find(p, 1)
            if j > 0 and line[j - 1] != " ":
                line = line[:j] + " " + line[j:]
                break
    return line


def _gen_aochildes(g: Grammar, r: Random):
    while True:
        yield tokenized(g.child() if r.random() < 0.75 else g.core(), lower=True)


def _gen_switchboard(g: Grammar, r: Random):
    fillers = (["uh"], ["um"], ["well", ","], ["you", "know", ","], ["uh-huh", ","], ["yeah", ","], ["so"])
    while True:
        toks = g.dialogue()
        if r.random() < 0.3:
            toks = list(r.choice(fillers)) + toks
        yield plain(toks)


def _gen_bnc(g: Grammar, r: Random):
    while True:
        line = plain(g.dialogue())
        yield _messy(line, r) if r.random() < 0.1 else line


def _gen_open_subtitles(g: Grammar, r: Random):
    while True:
        x = r.random()
        if x < 0.015:
            yield r.choice(_CREDITS).format(r.choice(_CREDIT_NAMES))
        elif x < 0.045:
            yield r.choice(_CUES)
        elif x < 0.07:
            yield r.choice(_SONGS)
        elif x < 0.1:
            yield r.choice(_CUES) + " " + plain(g.dialogue())
        else:
            line = plain(g.dialogue())
            yield ("- " + line) if r.random() < 0.1 else line


def _gen_qed(g: Grammar, r: Random):
    while True:
        toks = g.lecture()
        if r.random() < 0.08:  # OCR'd caption: upper case, I read as l
            yield tokenized(toks).upper().replace("I", "l")
        else:
            yield plain(toks)


def _gen_cbt(g: Grammar, r: Random):
    while True:
        yield f"_BOOK_TITLE_ : {r.choice(_BOOKS)}.txt.out"
        for _ in range(r.randint(25, 60)):
            yield tokenized(g.narrative())


def _paragraphs(g: Grammar, r: Random, family: str, lo: int, hi: int, messy: float):
    while True:
        line = " ".join(plain(s) for s in g.document(family, r.randint(lo, hi)))
        yield _messy(line, r) if r.random() < messy else line


def _gen_children_stories(g, r):
    return _paragraphs(g, r, "narrative", 2, 6, 0.1)


def _gen_gutenberg(g, r):
    return _paragraphs(g, r, "narrative", 3, 8, 0.1)


def _wiki(g: Grammar, r: Random, lo: int, hi: int, level: int):
    eq = " ".join(["="] * level)
    while True:
        title = r.choice(_WIKI_TOPICS) if r.random() < 0.5 else g.pick(_BY_CLASS["a"]).pl.capitalize()
        yield f"{eq} {title} {eq}"
        for _ in range(r.randint(6, 12)):
            sents = [plain(s) for s in g.document("encyclopedic", r.randint(lo, hi))]
            x = r.random()
            if x < 0.025:
                i = r.randrange(len(sents))
                sents[i] += f"<ref>{r.choice(_REFS)}</ref>"
            elif x < 0.04:
                sents.insert(r.randint(1, len(sents)), "<br />")
            elif x < 0.055:
                w = sents[0].split(" ")
                i = r.randrange(len(w))
                if w[i].isalpha():
                    w[i] = f"<b>{w[i]}</b>"
                    sents[0] = " ".join(w)
                else:
                    sents[0] = "<b>" + sents[0] + "</b>"
            yield " ".join(sents)


def _gen_simple_wikipedia(g, r):
    return _wiki(g, r, 1, 4, 2)


def _gen_wikipedia(g, r):
    return _wiki(g, r, 2, 6, 3)


GENERATORS = {
    "aochildes": _gen_aochildes, "bnc_spoken": _gen_bnc, "cbt": _gen_cbt, "children_stories": _gen_children_stories,
    "gutenberg": _gen_gutenberg, "open_subtitles": _gen_open_subtitles, "qed": _gen_qed,
    "simple_wikipedia": _gen_simple_wikipedia, "switchboard": _gen_switchboard, "wikipedia": _gen_wikipedia,
}


def source_lines(source: str, n_words: int, seed: int, split: str) -> list[str]:
    """Lines of one source until they hold at least ``n_words`` words (deterministic in seed, source, split)."""
    r = Random(f"babylm-{seed}-{split}-{source}")
    g = Grammar(Random(f"grammar-{seed}-{split}-{source}"))
    lines, total = [], 0
    it = GENERATORS[source](g, r)
    while total < n_words:
        line = next(it)
        lines.append(line)
        total += _words(line)
    return lines


def split_words(total: int) -> dict[str, int]:
    """Words per source for a split of ``total`` words, in BabyLM proportions (sums exactly to ``total``)."""
    z = sum(SOURCE_SHARES.values())
    out = {s: int(total * v / z) for s, v in SOURCE_SHARES.items()}
    out["open_subtitles"] += total - sum(out.values())
    return out


def minimal_pairs(uid: str, n: int, seed: int) -> list[dict]:
    """``n`` BLiMP-format pairs of paradigm ``uid`` (distinct good sentences where the grammar allows)."""
    field, term, _ = Grammar.PARADIGMS[uid]
    g = Grammar(Random(f"blimp-{seed}-{uid}"))
    rows, seen = [], set()
    tries = 0
    while len(rows) < n:
        good, bad = g.pair(uid)
        tries += 1
        key = tuple(good)
        if key in seen and tries < 20 * n:
            continue
        seen.add(key)
        rows.append({"sentence_good": plain(good), "sentence_bad": plain(bad), "field": field,
                     "linguistics_term": term, "UID": uid, "simple_LM_method": True, "one_prefix_method": False,
                     "two_prefix_method": False, "lexically_identical": False, "pairID": str(len(rows))})
    return rows


def write_corpus(out_dir, seed: int = 0, train_words: int = 200_000, dev_words: int = 40_000,
                 pairs_per_paradigm: int = 200) -> dict:
    """Write the synthetic BabyLM layout and BLiMP pairs under ``out_dir``.

    Returns {"root", "train_dir", "dev_dir", "blimp_dir": Path, "train"/"dev": {source: Path}, "blimp": {uid: Path},
    "words": {"train": {source: n}, "dev": {source: n}}}.
    """
    for name, v in (("train_words", train_words), ("dev_words", dev_words), ("pairs_per_paradigm", pairs_per_paradigm)):
        if not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    root = Path(out_dir)
    result = {"root": root, "train_dir": root / TRAIN_DIR, "dev_dir": root / DEV_DIR, "blimp_dir": root / BLIMP_DIR,
              "train": {}, "dev": {}, "blimp": {}, "words": {"train": {}, "dev": {}}}
    for split, total, folder, suffix in (("train", train_words, TRAIN_DIR, ".train"), ("dev", dev_words, DEV_DIR, ".dev")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for source, n in split_words(total).items():
            lines = source_lines(source, n, seed, split)
            path = root / folder / f"{source}{suffix}"
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")
            result[split][source] = path
            result["words"][split][source] = sum(map(_words, lines))
    (root / BLIMP_DIR).mkdir(parents=True, exist_ok=True)
    for uid in Grammar.PARADIGMS:
        path = root / BLIMP_DIR / f"{uid}.jsonl"
        rows = minimal_pairs(uid, pairs_per_paradigm, seed)
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8",
                        newline="\n")
        result["blimp"][uid] = path
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Write a synthetic BabyLM-layout corpus and BLiMP-format minimal pairs "
                                             "from one small grammar of child-directed English.")
    ap.add_argument("--out", default="data/synthetic", help="output folder (default: data/synthetic)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-words", type=int, default=200_000)
    ap.add_argument("--dev-words", type=int, default=40_000)
    ap.add_argument("--pairs-per-paradigm", type=int, default=200)
    args = ap.parse_args(argv)
    for name in ("train_words", "dev_words", "pairs_per_paradigm"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must be >= 0")
    t0 = time.perf_counter()
    res = write_corpus(args.out, seed=args.seed, train_words=args.train_words, dev_words=args.dev_words,
                       pairs_per_paradigm=args.pairs_per_paradigm)
    for split in ("train", "dev"):
        words = res["words"][split]
        print(f"{res[split + '_dir']}: {sum(words.values()):,} words in {len(words)} files")
        for source, n in words.items():
            print(f"  {res[split][source].name:<24} {n:>9,} words")
    print(f"{res['blimp_dir']}: {len(res['blimp'])} paradigms x {args.pairs_per_paradigm} pairs")
    for uid in res["blimp"]:
        print(f"  {uid}.jsonl  ({Grammar.PARADIGMS[uid][1]})")
    print(f"done in {time.perf_counter() - t0:.1f}s (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
