"""Minimal-pair paradigms: BLiMP's 12 phenomena and the BabyLM supplement's tasks, from the corpus grammar.

Each BLiMP paradigm is a function of a ``Grammar`` returning (good, bad) token lists; the good sentence is one the
corpus grammar can generate, the bad one breaks one rule, often across a distance (an attractor noun, a relative
clause, an embedded clause) or on a rare word. Supplement tasks return (good, bad) strings in the supplement's
multi-line ``Speaker: utterance`` format where they are dialogues.
"""

from __future__ import annotations

from babyllama.synthetic.grammar import (ADJUNCTS, CONTROL, NUMBERS, SEEM, THINK, WONDER, Grammar, Phrase, be, copula, dialogue,
                               flip, noun_form, plain, reflexive, verb_group)
from babyllama.synthetic.lexicon import (ADJECTIVES, CLASS_WORD, INTRANSITIVE, IRREGULAR_PLURAL, IRREGULAR_PP, NAMES, NOUNS_BY,
                               TRANSITIVE, Verb)

KNOW = Verb("know", "knows", "knew", "known", "knowing", "Q")
REGULAR_NOUNS = tuple(n for n in NOUNS_BY["patf"] if n not in IRREGULAR_PLURAL)


def predicate(g: Grammar):
    """A present-tense predicate as a function of the subject's number: the agreeing word is the only difference."""
    tense, m = g.choice(("pres", "pres", "prog", "perf", "neg")), g.modal()
    x = g.r.random()
    if x < 0.25:
        adj = g.pick(ADJECTIVES)
        return lambda num: copula("pres", num, m) + [adj]
    if x < 0.5:
        v = g.pick(INTRANSITIVE)
        return lambda num: verb_group(v, tense, num, m)
    v, obj = g.pick(TRANSITIVE), g.np(depth=2).toks
    return lambda num: verb_group(v, tense, num, m) + obj


def head_np(g: Grammar, num: str, cls: str = "pa", nouns=None) -> list[str]:
    noun = g.pick(nouns or NOUNS_BY[cls])
    return [g.choice(("the", "the", "my", "your", "our", "their"))] + g.adjs(0.2) + [noun_form(noun, num)]


def sva_simple(g):
    num = g.num(0.5)
    subj, pred = head_np(g, num, nouns=REGULAR_NOUNS), predicate(g)
    return subj + pred(num), subj + pred(flip(num))


def sva_attractor_pp(g):
    """The N of/near the N-other-number (near the N ...) VERB."""
    num = g.num(0.5)
    attractor = g.np(num=flip(num), depth=2, dets=("the", "the", "my", "your", "these" if num == "sg" else "this"))
    subj = head_np(g, num) + [g.choice(("near", "behind", "with", "beside", "of"))] + attractor.toks
    pred = predicate(g)
    return subj + pred(num), subj + pred(flip(num))


def sva_attractor_relative(g):
    """The N that the N-other-number (who ...) saw VERB: object relatives, nested one level sometimes."""
    num = g.num(0.5)
    inner = g.np("pa", flip(num), depth=2 if g.coin(0.5) else 3, dets=("the", "some", "my", "your"))
    rc = [g.choice(("that", "who"))] + inner.toks + verb_group(g.pick(TRANSITIVE), g.choice(("pres", "past", "perf")),
                                                             inner.num)
    subj, pred = head_np(g, num) + rc, predicate(g)
    return subj + pred(num), subj + pred(flip(num))


def _object_frame(g) -> list[str]:
    s = g.subject(2, p_pron=0.2)
    return s.toks + verb_group(g.pick(TRANSITIVE), g.choice(("past", "past", "pres", "modal")), s.num, g.modal())


def dn_noun(g, nouns=REGULAR_NOUNS, p_adj=0.6):
    """... this/these ADJ* N: the noun's number is flipped."""
    det = g.choice(("this", "that", "these", "those"))
    num = "sg" if det in ("this", "that") else "pl"
    noun, pre = g.pick(nouns), _object_frame(g)
    adjs = g.adjs(p_adj)
    return pre + [det] + adjs + [noun_form(noun, num)], pre + [det] + adjs + [noun_form(noun, flip(num))]


def dn_irregular(g):
    return dn_noun(g, IRREGULAR_PLURAL, p_adj=0.6)


def dn_determiner(g):
    """... this/these ADJ* N: the determiner's number is flipped."""
    num = g.num(0.5)
    good, bad = g.choice((("this", "these"), ("that", "those")))
    if num == "pl":
        good, bad = bad, good
    noun, pre, adjs = g.pick(REGULAR_NOUNS), _object_frame(g), g.adjs(0.6)
    rest = adjs + [noun_form(noun, num)]
    return pre + [good] + rest, pre + [bad] + rest


def _refl_frame(g, subj: Phrase) -> list[str]:
    return subj.toks + verb_group(g.pick(TRANSITIVE), g.choice(("past", "pres", "perf", "modal", "prog")), subj.num,
                                  g.modal())


def anaphor_gender(g):
    s = g.gendered(depth=2)
    pre = _refl_frame(g, s)
    return pre + [reflexive("sg", s.gender)], pre + [reflexive("sg", flip_gender(s.gender))]


def flip_gender(gender: str) -> str:
    return "f" if gender == "m" else "m"


def anaphor_number(g):
    s = g.gendered(depth=2) if g.coin(0.5) else g.np("pa", "pl", depth=2)
    pre = _refl_frame(g, s)
    bad = "themselves" if s.num == "sg" else reflexive("sg", g.choice("mf"))
    return pre + [reflexive(s.num, s.gender)], pre + [bad]


def transitive(g):
    s, tense = g.subject(2, p_pron=0.2), g.choice(("past", "pres", "perf"))
    v, w, obj = g.pick(TRANSITIVE), g.pick(INTRANSITIVE), g.np(depth=2).toks
    return s.toks + verb_group(v, tense, s.num) + obj, s.toks + verb_group(w, tense, s.num) + obj


def intransitive(g):
    s, tense = g.subject(2, p_pron=0.2), g.choice(("past", "pres", "perf"))
    v, w = g.pick(INTRANSITIVE), g.pick(TRANSITIVE)
    return s.toks + verb_group(v, tense, s.num), s.toks + verb_group(w, tense, s.num)


def _distinct_subjects(g):
    while True:
        a = g.gendered(depth=3) if g.coin(0.6) else g.np("pa", "pl", depth=3)
        b = g.gendered(depth=3) if g.coin(0.6) else g.np("pa", "pl", depth=3)
        if reflexive(a.num, a.gender) != reflexive(b.num, b.gender):
            return a, b


def binding_domain(g):
    """A1 thinks that A2 saw REFL: the reflexive is bound in its own clause (by A2), not by the higher subject."""
    s1, s2 = _distinct_subjects(g)
    pre = s1.toks + verb_group(g.pick(THINK), g.choice(("past", "pres")), s1.num) + ["that"] + _refl_frame(g, s2)
    return pre + [reflexive(s2.num, s2.gender)], pre + [reflexive(s1.num, s1.gender)]


def binding_c_command(g):
    """The N near/that-saw the OTHER VERB REFL: the reflexive agrees with the head, not the embedded noun."""
    s, other = _distinct_subjects(g)
    if g.coin(0.5):
        mod = [g.choice(("near", "with", "behind"))] + other.toks
    else:
        mod = [g.choice(("who", "that"))] + other.toks + verb_group(g.pick(TRANSITIVE), "past", other.num)
    subj = Phrase(s.toks + mod, s.num, s.gender)
    pre = _refl_frame(g, subj)
    return pre + [reflexive(s.num, s.gender)], pre + [reflexive(other.num, other.gender)]


def raising_there(g):
    """there seems to be ... / *there tries to be ...: only a raising verb takes an expletive subject."""
    toks, c = g.existential(1, raised=True), g.choice(CONTROL)
    swap = {SEEM.s: c.s, SEEM.base: c.base, SEEM.past: c.past}
    i = 1 if toks[1] in swap else 2  # after a modal: there will seem to be
    return toks, toks[:i] + [swap[toks[i]]] + toks[i + 1:]


def raising_agreement(g):
    """there seem to be two N / *there seems to be two N: the raising verb agrees with the noun after it."""
    toks = g.existential(1, raised=True)
    swap = {SEEM.s: SEEM.base, SEEM.base: SEEM.s}
    if toks[1] not in swap:  # past or modal: no agreement to break; draw again
        return raising_agreement(g)
    return toks, toks[:1] + [swap[toks[1]]] + toks[2:]


def ellipsis_n_bar(g):
    """A saw two red N and B saw three. / *A saw two N and B saw three red."""
    s1, s2 = g.subject(2), g.subject(2)
    v, w = g.pick(TRANSITIVE), g.pick(TRANSITIVE)
    n1, n2 = g.r.sample(NUMBERS, 2)
    adj, noun = g.choice(ADJECTIVES), g.pick(NOUNS_BY["patf"])  # any adjective, mostly rare: is it one at all?
    first, second = s1.toks + [v.past, n1], ["and"] + s2.toks + [w.past, n2]
    return first + [adj, noun.pl] + second, first + [noun.pl] + second + [adj]


def wh_vs_that_gap(g):
    """X knows what Y saw __ / *X knows that Y saw __ (across think-that when long)."""
    s = g.subject(2)
    pre = s.toks + verb_group(KNOW, g.choice(("pres", "past")), s.num)
    inner = g.object_gap(2)
    if g.coin(0.4):
        s2 = g.subject(2)
        inner = s2.toks + verb_group(g.pick(THINK), "past", s2.num) + ["that"] + inner
    return pre + [g.choice(("what", "who"))] + inner, pre + ["that"] + inner


def wh_vs_that_no_gap(g):
    """X knows that Y saw Z / *X knows what Y saw Z."""
    s = g.subject(2)
    pre = s.toks + verb_group(KNOW, g.choice(("pres", "past")), s.num)
    inner = g.object_gap(2) + g.np(depth=2).toks
    return pre + ["that"] + inner, pre + [g.choice(("what", "who"))] + inner


def irregular_past(g):
    s, v = g.subject(2), g.pick(IRREGULAR_PP)
    obj = g.np(depth=2).toks
    return s.toks + [v.past] + obj, s.toks + [v.pp] + obj


def irregular_after_have(g):
    s, v = g.subject(2), g.pick(IRREGULAR_PP)
    aux = ["has" if s.num == "sg" else "have"] + ([g.choice(("probably", "often", "already", "never"))]
                                                   if g.coin(0.5) else [])
    obj = g.np(depth=2).toks
    return s.toks + aux + [v.pp] + obj, s.toks + aux + [v.past] + obj


def _wh_do(g):
    s = g.subject(2)
    return s, ["did" if g.coin(0.5) else ("does" if s.num == "sg" else "do")]


def wh_island(g):
    """What does X think that Y saw __? / *What does X wonder whether Y saw __?"""
    s, do = _wh_do(g)
    inner = g.object_gap(2)
    wh = g.choice(("what", "who"))
    return ([wh] + do + s.toks + [g.pick(THINK).base, "that"] + inner + ["?"],
            [wh] + do + s.toks + [g.choice(WONDER).base, "whether"] + inner + ["?"])


def adjunct_island(g):
    """Who did X see __ after meeting Y? / *Who did X see Y after meeting __?"""
    s, do = _wh_do(g)
    v, w, obj = g.pick(TRANSITIVE), g.pick(TRANSITIVE), g.np(depth=3).toks
    wh, adj = g.choice(("what", "who")), g.choice(ADJUNCTS)
    return ([wh] + do + s.toks + [v.base, adj, w.ing] + obj + ["?"],
            [wh] + do + s.toks + [v.base] + obj + [adj, w.ing, "?"])


def npi_licensor(g):
    """X has not ever seen Y / *X has probably ever seen Y."""
    s, v = g.subject(2), g.pick(TRANSITIVE)
    aux, obj = ["has" if s.num == "sg" else "have"], g.np(depth=2).toks
    return (s.toks + aux + ["not", "ever", v.pp] + obj,
            s.toks + aux + [g.choice(("probably", "often", "already")), "ever", v.pp] + obj)


def npi_scope(g):
    """S thinks that no N that the M saw has ever ... / *S thinks that the N that no M saw has ever ...: the licensor
    must c-command ever."""
    num, inner_num = g.num(0.5), g.num(0.5)
    head, inner = g.pick(NOUNS_BY["pa"]), g.pick(NOUNS_BY["pa"])
    v1, v2, obj = g.pick(TRANSITIVE), g.pick(TRANSITIVE), g.np(depth=2).toks
    rel = g.choice(("that", "who"))

    pre = g.think_that()  # embedded: both no's are lower-case, only their place differs

    def sent(d1, d2):
        return (pre + [d1, noun_form(head, num), rel, d2, noun_form(inner, inner_num), v1.past,
                       "has" if num == "sg" else "have", "ever", v2.pp] + obj)
    return sent("no", "the"), sent("the", "no")


def existential_quantifier(g):
    """There are many N ... / *There are all N ...: only weak quantifiers in an existential."""
    good = g.existential(2)
    bad_q = g.choice(("every", "each")) if good[1] in ("is", "was") else g.choice(("all", "most"))
    return good, good[:2] + [bad_q] + good[3:]


def superlative_quantifier(g):
    """S thinks that no N saw more than two N / *S thinks that no N saw at least two N."""
    pre = g.think_that()  # embedded: the no is lower-case, as elsewhere in the corpus
    s, v = g.np("pa", depth=2, dets=("no",)), g.pick(TRANSITIVE)
    rest = [g.choice(NUMBERS)] + g.adjs() + [g.pick(NOUNS_BY["patf"]).pl]
    return (pre + s.toks + [v.past] + g.choice((["more", "than"], ["fewer", "than"])) + rest,
            pre + s.toks + [v.past] + g.choice((["at", "least"], ["at", "most"])) + rest)


# UID -> (field, linguistics_term, generator): one JSON-lines file per UID, in BLiMP's format
PARADIGMS = {
    "anaphor_gender_agreement": ("morphology", "anaphor_agreement", anaphor_gender),
    "anaphor_number_agreement": ("morphology", "anaphor_agreement", anaphor_number),
    "transitive": ("syntax", "argument_structure", transitive),
    "intransitive": ("syntax", "argument_structure", intransitive),
    "principle_A_domain_1": ("syntax", "binding", binding_domain),
    "principle_A_c_command": ("syntax", "binding", binding_c_command),
    "existential_there_subject_raising": ("syntax_semantics", "control_raising", raising_there),
    "existential_there_raising_agreement": ("syntax_semantics", "control_raising", raising_agreement),
    "determiner_noun_agreement_with_adj_1": ("morphology", "determiner_noun_agreement", dn_noun),
    "determiner_noun_agreement_irregular_1": ("morphology", "determiner_noun_agreement", dn_irregular),
    "determiner_noun_agreement_2": ("morphology", "determiner_noun_agreement", dn_determiner),
    "ellipsis_n_bar_1": ("syntax", "ellipsis", ellipsis_n_bar),
    "wh_vs_that_with_gap": ("syntax", "filler_gap_dependency", wh_vs_that_gap),
    "wh_vs_that_no_gap": ("syntax", "filler_gap_dependency", wh_vs_that_no_gap),
    "irregular_past_participle_verbs": ("morphology", "irregular_forms", irregular_past),
    "irregular_past_participle_perfect": ("morphology", "irregular_forms", irregular_after_have),
    "wh_island": ("syntax", "island_effects", wh_island),
    "adjunct_island": ("syntax", "island_effects", adjunct_island),
    "sentential_negation_npi_licensor_present": ("semantics", "npi_licensing", npi_licensor),
    "npi_scope_relative_clause": ("semantics", "npi_licensing", npi_scope),
    "existential_there_quantifiers_1": ("semantics", "quantifiers", existential_quantifier),
    "superlative_quantifiers_1": ("semantics", "quantifiers", superlative_quantifier),
    "regular_plural_subject_verb_agreement_1": ("morphology", "subject_verb_agreement", sva_simple),
    "distractor_agreement_relational_noun": ("morphology", "subject_verb_agreement", sva_attractor_pp),
    "distractor_agreement_relative_clause": ("morphology", "subject_verb_agreement", sva_attractor_relative),
}


def blimp_pair(g: Grammar, uid: str) -> tuple[str, str]:
    good, bad = PARADIGMS[uid][2](g)
    end = [] if good[-1] == "?" else ["."]
    return plain(good + end), plain(bad + end)


# -- the supplement's tasks --------------------------------------------------------------------------------------------

def _speakers(g):
    a = g.pick(NAMES).name
    b = g.pick(NAMES).name
    return (a, b) if a != b else (a, g.pick(NAMES[::-1]).name)


def qa_easy(g):
    """What did you see? -> a thing; who did you see? -> a person (named, or a person noun)."""
    v, sp = g.pick(TRANSITIVE), _speakers(g)
    thing = ["the", g.pick(NOUNS_BY["tf"]).sg, "."]
    person = [g.pick(NAMES).name, "."]
    if g.coin(0.5):
        q = ["what", "did", "you", v.base, "?"]
        return dialogue([q, thing], sp), dialogue([q, person], sp)
    q = ["who", "did", "you", v.base, "?"]
    return dialogue([q, person], sp), dialogue([q, thing], sp)


def qa_tricky(g):
    """The same with noun answers only: who -> a person noun, what -> a thing, where -> to a place."""
    v, sp = g.pick(TRANSITIVE), _speakers(g)
    k = g.choice(("what", "who", "where"))
    if k == "where":
        q = ["where", "did", "you", "go", "?"]
        return (dialogue([q, ["to", "the", g.pick(NOUNS_BY["l"]).sg, "."]], sp),
                dialogue([q, ["to", "the", g.pick(NOUNS_BY["tf"]).sg, "."]], sp))
    q = [k, "did", "you", v.base, "?"]
    thing, person = ["the", g.pick(NOUNS_BY["tf"]).sg, "."], ["the", g.pick(NOUNS_BY["p"]).sg, "."]
    good, bad = (thing, person) if k == "what" else (person, thing)
    return dialogue([q, good], sp), dialogue([q, bad], sp)


def turn_taking(g):
    """Did you V it? -> yes, I did; did she V it? -> yes, she did (not: yes, you did / yes, I did)."""
    sp, v = _speakers(g), g.pick(TRANSITIVE)
    who, good, bad = g.choice((("you", "I", "you"), ("he", "he", "I"), ("she", "she", "I"), ("they", "they", "I")))
    aux = g.choice(("did", "can", "will"))
    q = [aux, who, v.base] + g.np("tf", mod=0.0).toks + ["?"]
    yes = g.coin(0.5)

    def answer(p):
        return ["yes", ",", p, aux, "."] if yes else ["no", ",", p, {"did": "did", "can": "ca", "will": "wo"}[aux],
                                                       "n't", "."]
    return dialogue([q, answer(good)], sp), dialogue([q, answer(bad)], sp)


def subject_aux_inversion(g):
    """Will the Ns that can swim eat it? / *Can the Ns that swim will eat it?: the main clause's modal is fronted, not
    the first one. The same words; the bad question's inner stretch (``the dogs that swim will eat``) is an ordinary
    declarative, the good one's ``can swim eat`` occurs only in such questions, so local statistics help little (a
    trigram count model picks the good question in 71 % of pairs)."""
    m_main, subj, m_rel, verb, rest = g.modal_question("pl", rel_modal=True)
    return plain(m_main + subj + m_rel + verb + rest), plain(m_rel + subj + verb + m_main + rest)


def hypernym(g):
    """A N is a kind of animal / *... of food: the class of a (possibly rare) noun."""
    n = g.pick(NOUNS_BY["patf"])
    wrong = g.choice([c for c in "patf" if c != n.cls])
    return (plain(["a", n.sg, "is", "a", "kind", "of", CLASS_WORD[n.cls], "."]),
            plain(["a", n.sg, "is", "a", "kind", "of", CLASS_WORD[wrong], "."]))


SUPPLEMENT = {"hypernym": hypernym, "qa_congruence_easy": qa_easy, "qa_congruence_tricky": qa_tricky,
              "subject_aux_inversion": subject_aux_inversion, "turn_taking": turn_taking}
