"""The report stage's reports of two studies run through run_pipeline.py, every figure read from the run's files:

- the regime map (a run with ``pipeline.budgets``): distilled - plain per data budget and cell, learning curves, the
  homogeneous ensemble's gain, and a verdict on each hypothesis (``MapReport``, ``write_map``);
- the paper's appendix B (``pipeline.appendix``): each idea once against the plain student (``AppendixReport``,
  ``write_appendix``);
- H1 with teachers that lead (``pipeline.h1``): each teacher's lead, each distilled cell against the plain student
  of the same seed and epochs, the verdict (``H1Report``, ``write_h1``).

The single-run report and what every report shares (mean +- sd, the one-sd rule, RESULTS.md sections) are in
pipeline_report.py.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import torch
import yaml

import eval_aoa
from babyllama import report
from babyllama.files import write_atomic
from babyllama.config import UserError
from babyllama.pipeline_report import (ENSEMBLE, HOMOGENEOUS, Report, cpu_name, favours, mean_sd, publish,
                                       word)

# ----------------------------------------------------------------------------------------------------------------------
# the regime map: a run with pipeline.budgets


def paired(a: list[str], b: list[str], value) -> list[float]:
    """value(a_i) - value(b_i) over seeds paired by position (both lists ordered by pipeline.seeds)."""
    return [value(x) - value(y) for x, y in zip(a, b)]


def data_limited(curve: list[dict]) -> bool:
    """The plain student is data-limited: its dev CE reached its minimum before the last epoch end and rose after it
    (by more than 0.005 nats, above eval noise), while it kept training."""
    ces = [r["dev_ce"] for r in curve]
    return len(ces) > 1 and ces.index(min(ces)) < len(ces) - 1 and ces[-1] - min(ces) > 0.005


class MapReport:
    """distilled - plain dev CE per data budget and distilled variant (cell), learning curves, the homogeneous
    ensemble's gain, and a verdict on each hypothesis, from the run's files:

        models/b<share>/<name>/metrics.json    best-epoch eval CE and the learning curve ("curve")
        results/b<share>/dev_text.json         dev CE (pipeline.dev_text_share of each dev file), ensembles included
    """

    def __init__(self, plan):
        self.plan, p = plan, plan.p
        self.budgets = p.budgets
        self.seeds = p.seeds or [None]
        self.metrics = {n: json.loads((f / "metrics.json").read_text()) for n, f in plan.models().items()}
        self.text = {}
        for b in self.budgets:
            f = plan.text_results(b)
            if f.is_file():
                self.text.update(json.loads(f.read_text())["results"])
        # the cells: the paper's distilled student, then every distilled ablation, in the YAML's order
        self.cells = ["distilled"] + [n for n, a in p.ablations.items() if a.of == "distilled"]
        self.seed_of = lambda base, s: base + ("" if s is None else f"-s{s}")  # noqa: E731

    # --- values ------------------------------------------------------------------------------------------------------
    def tag(self, b) -> str:
        return self.plan.prefix(b)

    def dev_ce(self, name: str) -> float | None:
        """Dev CE of the text stage when it ran (same subset for every model, ensembles too), else the best epoch's
        eval CE on the training-time eval subset."""
        if name in self.text:
            return self.text[name]["all"]["ce"]
        m = self.metrics.get(name)
        return None if m is None else m.get("eval_ce", m["eval_loss"])

    def members(self, b, base: str) -> list[str] | None:
        """The models of one cell at one budget, ordered by pipeline.seeds; None when the cell was not run there."""
        names = [self.tag(b) + self.seed_of(base, s) for s in self.seeds]
        return names if all(n in self.metrics for n in names) else None

    def diffs(self, b, cell: str, base: str = "student") -> list[float] | None:
        a, c = self.members(b, cell), self.members(b, base)
        return None if a is None or c is None else paired(a, c, self.dev_ce)

    def describe(self, cell: str) -> str:
        p = self.plan.p
        spec = p.ablations.get(cell)
        teachers = spec.teachers if spec else "heterogeneous"
        run = next((n for b in self.budgets for n in (self.members(b, cell) or [])), None)
        if run is None:
            return teachers
        d = yaml.safe_load((self.plan.model_dir(run) / "config.yaml").read_text())["distillation"]
        return f"{teachers}, T {d['temperature']:g}, {d['kl_normalization']}"

    def plain_seeds(self, b) -> list[str]:
        return [n for n in self.plan.groups().get(self.tag(b) + "student", []) if n in self.metrics]

    # --- sections ----------------------------------------------------------------------------------------------------
    def header(self) -> list[str]:
        p = self.plan
        times = [(s, (p.recorded(s) or {}).get("seconds")) for s in p.stages if s.name != "report"]
        known = [t for _, t in times if t is not None]
        lines = ["# The regime map: " + Path(p.work).name, "",
                 "Written by the report stage of `run_pipeline.py` from the files of the run; nothing here is typed by "
                 "hand.", "", f"- command: `{p.command}`",
                 f"- machine: {cpu_name()}, {os.cpu_count()} cores visible, torch {torch.__version__} with "
                 f"{torch.get_num_threads()} threads",
                 f"- time: {sum(known) / 60:.1f} min, the sum of the stages' own run times"
                 + ("" if len(known) == len(times) else f"; {len(times) - len(known)} stages have no recorded time"),
                 "- dev CE: " + (f"the text stage, the first {p.p.dev_text_share:.0%} of each dev file "
                                  f"({next(iter(self.text.values()))['all']['tokens']:,} tokens), every model alike"
                                  if self.text else "each model's best-epoch eval CE (training-time eval subset)"),
                 f"- seeds: distilled students {self.seeds}, each paired with the plain student of its seed; "
                 f"homogeneous teachers from the plain students of seeds {p.p.teacher_seeds} "
                 f"({p.p.homogeneous_size} per student, never its own seed)", ""]
        lines += ["| budget | minutes |", "| --- | ---: |"]
        for b in [None] + self.budgets:
            t = sum(sec or 0.0 for s, sec in times if s.budget is b)
            lines.append(f"| {'data, cleaning, tokenizer' if b is None else self.tag(b)[:-1]} | {t / 60:.1f} |")
        return lines + [""]

    def setup(self) -> list[str]:
        lines = ["## The budgets", "",
                 "Plain students: every seed of the budget. Best epoch: where the dev CE (training-time eval subset) "
                 "was lowest; rise: last epoch minus best; gap: last dev CE minus the mean train CE logged over the last epoch "
                 "(over the whole run at 1 epoch, so it includes the first steps' high losses). "
                 "Data-limited: the dev CE rose after its minimum (> 0.005 nats) in most seeds.", "",
                 "| budget | train tokens / epoch | epochs | plain dev CE | best epoch | rise after best | gap at end | "
                 "data-limited | teacher-1 | teacher-2 | teachers-ensemble | students-ensemble |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
        self.limited = {}
        for b in self.budgets:
            plain = self.plain_seeds(b)
            curves = [self.metrics[n]["curve"] for n in plain]
            epochs = max(len(c) for c in curves)
            best = [min(range(len(c)), key=lambda i: c[i]["dev_ce"]) + 1 for c in curves]
            rise = [c[-1]["dev_ce"] - min(r["dev_ce"] for r in c) for c in curves]
            gap = [c[-1]["dev_ce"] - c[-1]["train_ce"] for c in curves if c[-1]["train_ce"] is not None]
            self.limited[b.train_share] = sum(map(data_limited, curves)) * 2 > len(curves)
            tokens = self.metrics[plain[0]]["tokens_seen"] / epochs
            ce = lambda n: mean_sd([self.dev_ce(self.tag(b) + n)])  # noqa: E731
            lines.append(f"| {self.tag(b)[:-1]} | {tokens:,.0f} | {epochs} | {mean_sd([self.dev_ce(n) for n in plain])} | "
                         f"{mean_sd(best, 1)} | {mean_sd(rise)} | {mean_sd(gap)} | "
                         f"{'yes' if self.limited[b.train_share] else 'no'} | {ce('teacher-1')} | {ce('teacher-2')} | "
                         f"{ce('teachers-ensemble')} | {ce('students-ensemble')} |")
        return lines + [""]

    def the_map(self) -> list[str]:
        cols = [self.tag(b)[:-1] for b in self.budgets]
        lines = ["## The map: distilled − plain dev CE (nats; negative: distillation helped)", "",
                 f"Mean ± sd over the seed pairs {self.seeds}; `–`: the cell was not run at that budget (pruned, see "
                 "the YAML). Figure: `map.png`.", "",
                 "| cell | teachers, T, KL normalisation | " + " | ".join(cols) + " |",
                 "| --- | --- |" + " ---: |" * len(cols)]
        self.values = {}
        for cell in self.cells:
            row = []
            for b in self.budgets:
                d = self.diffs(b, cell)
                self.values[(cell, b.train_share)] = d
                row.append("–" if d is None else mean_sd(d, 3, True))
            lines.append(f"| {cell} | {self.describe(cell)} | " + " | ".join(row) + " |")
        ok = {k: v for k, v in self.values.items() if v}
        self.best = min(ok, key=lambda k: statistics.mean(ok[k])) if ok else None
        if self.best:
            lines += ["", f"Most favourable cell on these seeds (the rule fixed before the run: lowest mean): "
                          f"**{self.best[0]} at b{self.best[1]:g}**, {mean_sd(ok[self.best], 3, True)} nats."]
        return lines + [""]

    def ensembles(self) -> list[str]:
        lines = ["## Teachers' lead and the homogeneous ensemble's gain (nats of dev CE)", "",
                 "Lead: the plain students' mean dev CE minus the teacher's (positive: the teacher is ahead). Gain: the "
                 "logit-averaged ensemble of the plain students of the teacher seeds against its members (appendix B "
                 "of the paper: 0.11 nats, 4 models).", "",
                 "| budget | lead teacher-1 | lead teacher-2 | lead teachers-ensemble | lead students-ensemble | "
                 "ensemble gain over members' mean | over best member |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        self.gains = {}
        for b in self.budgets:
            plain = statistics.mean(self.dev_ce(n) for n in self.plain_seeds(b))
            lead = lambda n: ("–" if self.dev_ce(self.tag(b) + n) is None  # noqa: E731
                              else f"{plain - self.dev_ce(self.tag(b) + n):+.3f}")
            ens = self.dev_ce(self.tag(b) + "students-ensemble")
            members = [self.dev_ce(f"{self.tag(b)}student-s{s}") for s in self.plan.p.teacher_seeds]
            g = report.ensemble_gain(ens, members) if ens is not None else None
            gain = (g["gain_over_mean"], g["gain_over_best"]) if g else None
            self.gains[b.train_share] = gain
            lines.append(f"| {self.tag(b)[:-1]} | {lead('teacher-1')} | {lead('teacher-2')} | "
                         f"{lead('teachers-ensemble')} | {lead('students-ensemble')} | "
                         + (" – | – |" if gain is None else f"{gain[0]:+.3f} | {gain[1]:+.3f} |"))
        return lines + [""]

    def hypotheses(self) -> list[str]:
        lines = ["## The hypotheses", "",
                 "A comparison counts when its mean over seeds is beyond one sd of zero (`pipeline_report.favours`); "
                 "otherwise it is 'no difference'.", ""]
        # H1: distillation helps where the plain student is data-limited
        limited = [b for b in self.budgets if self.limited[b.train_share]]
        helped = {(c, s): word(d) for (c, s), d in self.values.items() if d}
        at = lambda bs: [f"{c} at b{s:g}" for (c, s), w in helped.items() if w == "better" and s in bs]  # noqa: E731
        shares = [b.train_share for b in self.budgets]
        lim_shares = [b.train_share for b in limited]
        common = [c for c in self.cells if all(self.values.get((c, s)) for s in shares)]
        trend = [(s, statistics.mean(statistics.mean(self.values[(c, s)]) for c in common)) for s in shares] \
            if common else []
        if not limited:
            h1 = "unclear: no budget made the plain student data-limited"
        elif not at(lim_shares):
            h1 = "not supported: no cell helped at a data-limited budget"
        elif trend and trend[0][1] < trend[-1][1] and not at(set(shares) - set(lim_shares)):
            h1 = "supported: distillation helped only at data-limited budgets"
        else:
            h1 = "unclear: distillation helped at a data-limited budget, but not only there or not more there"
        lines.append(f"- **H1, data limit: {h1}.** Data-limited budgets: "
                     f"{', '.join(f'b{s:g}' for s in lim_shares) or 'none'}; cells that helped: "
                     f"{', '.join(at(shares)) or 'none'}; mean distilled − plain of the cells run at every budget "
                     f"({', '.join(common)}): " + ", ".join(f"b{s:g} {v:+.3f}" for s, v in trend) + ".")
        # H2 and H3: a variant against its twin that differs in one respect, seed by seed
        for key, title, pairs in (
                ("H2", "temperature and weight (T 1, token_mean better than T 2, batchmean)",
                 [("het-t1", "distilled"), ("het-token", "distilled"), ("homo-t1-token", "homo")]),
                ("H3", "teachers the student can imitate (homogeneous better than heterogeneous)",
                 [("homo", "distilled")])):
            rows = []
            for a, base in pairs:
                for b in self.budgets:
                    d = self.diffs(b, a, base) if a in self.cells and base in self.cells else None
                    if d:
                        rows.append((f"{a} − {base} at b{b.train_share:g}", d))
            words = [word(d) for _, d in rows]
            verdict = ("unclear: not run" if not rows else
                       "supported" if "better" in words and "worse" not in words else
                       "not supported" if "better" not in words else "unclear: mixed")
            lines.append(f"- **{key}, {title}: {verdict}.** " + "; ".join(
                f"{n} {mean_sd(d, 3, True)} ({w})" for (n, d), w in zip(rows, words)) + ".")
        return lines + [""]

    def curves(self, png: Path) -> list[str]:
        groups = ["student", "distilled", "homo"]
        series = {}
        for b in self.budgets:
            for g in groups:
                names = self.plain_seeds(b) if g == "student" else (self.members(b, g) or [])
                series[(self.tag(b)[:-1], g)] = [self.metrics[n]["curve"] for n in names]
        report.plot_curves(series, png)
        lines = ["## Learning curves", "",
                 f"Dev CE (training-time eval subset) at every epoch end, mean ± sd over seeds: `{png.name}`. Every "
                 "model's curve is in its metrics.json (`curve`).", "",
                 "| budget | model | " + " | ".join(f"epoch {i}" for i in range(1, 13)) + " |",
                 "| --- | --- |" + " ---: |" * 12]
        for (b, g), cs in series.items():
            if cs:
                n = max(len(c) for c in cs)
                cells = [mean_sd([c[i]["dev_ce"] for c in cs if len(c) > i]) for i in range(n)] + ["–"] * (12 - n)
                lines.append(f"| {b} | {g} | " + " | ".join(cells[:12]) + " |")
        return lines + [""]

    def markdown(self) -> str:
        lines = self.header() + self.setup() + self.the_map() + self.ensembles() + self.hypotheses()
        lines += self.curves(self.plan.results / "curves.png")
        report.plot_map(self.values, self.cells, [b.train_share for b in self.budgets], self.plan.results / "map.png")
        return "\n".join(lines)




def write_map(plan) -> str:
    """The report stage of a run with budgets: results/RESULTS.md, map.png, curves.png (and pipeline.results_file, with
    the figures copied beside it to docs/results/<section>-*.png)."""
    text = MapReport(plan).markdown()
    if plan.p.results_file:
        section = plan.p.results_section or "map"
        figures = Path(plan.p.results_file).parent / "docs" / "results"  # committed with the results file
        for png in ("map.png", "curves.png"):
            write_atomic(figures / f"{section}-{png}", (plan.results / png).read_bytes())
        text += (f"\nFigures: [the map](docs/results/{section}-map.png), "
                 f"[the learning curves](docs/results/{section}-curves.png).\n")
    return publish(plan, text, "map")


# ----------------------------------------------------------------------------------------------------------------------
# the paper's appendix B: each idea once against the plain student (pipeline.appendix)


class AppendixReport:
    """One row per idea (the distilled student, each ablation, the students' ensemble) against the plain student of the
    same seed, from the run's files:

        results/dev_text.json        dev CE of every model and ensemble (the text stage)
        results/<name>.json          BLiMP of every model and ensemble (the eval stage)
        results/aoa.json             AoA MAD in months (the aoa stage, pipeline.aoa)
        models/<name>/metrics.json   tokens seen in training
        .done/<stage>                each stage's own run time
    """

    def __init__(self, plan):
        self.plan, p = plan, plan.p
        self.seeds = p.seeds or [None]
        self.seed_of = lambda base, s: base + ("" if s is None else f"-s{s}")  # noqa: E731
        text = plan.text_results(None)
        self.text = json.loads(text.read_text())["results"] if text.is_file() else {}
        files = [plan.results / f"{n}.json" for n in plan.scorers()]
        self.blimp = report.load_results([f for f in files if f.is_file()])
        self.key = "phenomena" if self.blimp and all(r["averages"].get("phenomena") is not None
                                                     for r in self.blimp.values()) else "files"
        self.members = [self.seed_of("student", t) for t in p.teacher_seeds]  # students-ensemble's
        aoa = plan.results / "aoa.json"
        self.aoa = json.loads(aoa.read_text())["mad"] if p.aoa and aoa.is_file() else None

    # --- values ------------------------------------------------------------------------------------------------------
    def ce(self, name: str) -> float | None:
        return self.text[name]["all"]["ce"] if name in self.text else None

    def acc(self, name: str) -> float | None:
        v = self.blimp.get(name, {}).get("averages", {}).get(self.key)
        return None if v is None else 100 * v

    def mad(self, name: str) -> float | None:
        return self.aoa[name]["overall"] if self.aoa and name in self.aoa else None

    def minutes(self, name: str) -> float | None:
        rec = self.plan.recorded(self.plan.by_name[name]) if name in self.plan.by_name else None
        return None if rec is None or rec.get("seconds") is None else rec["seconds"] / 60

    def tokens(self, name: str) -> float | None:
        f = self.plan.model_dir(name) / "metrics.json"
        return json.loads(f.read_text()).get("tokens_seen") if f.is_file() else None

    @staticmethod
    def diff(a, b):
        return None if a is None or b is None else a - b

    def rows(self) -> list[dict]:
        """The baseline, then each idea: its models, and the models (or mean of models) each is compared with."""
        p, plain = self.plan.p, [self.seed_of("student", s) for s in self.seeds]
        rows = [dict(idea="student", what="the plain student (baseline)", names=plain, bases=None, time=plain)]
        ideas = [("distilled", "distill_train.py from teacher-1 + teacher-2 (the paper)")]
        for a, spec in p.ablations.items():
            start = f" from {spec.init_from}" if spec.init_from else ""
            over = ", ".join(f"`{o}`".replace("|", "\\|") for o in spec.overrides)  # a table cell holds no bare |
            ideas.append((a, f"{spec.of}{start}: {over}" if over else f"{spec.of}{start}"))
        for idea, what in ideas:
            names = [self.seed_of(idea, s) for s in self.seeds]
            rows.append(dict(idea=idea, what=what, names=names, bases=[[b] for b in plain], time=names))
        if p.teacher_seeds:
            rows.append(dict(idea=HOMOGENEOUS, what=f"logit average of the plain students of seeds {p.teacher_seeds}, "
                             "against its members' mean", names=[HOMOGENEOUS], bases=[self.members],
                             time=self.members))
        for r in rows:  # per compared pair: (dev CE, BLiMP) differences
            mean = lambda f, ns: (None if any(f(n) is None for n in ns)  # noqa: E731
                                  else statistics.mean(f(n) for n in ns))
            r["d_ce"] = [self.diff(self.ce(n), mean(self.ce, b)) for n, b in zip(r["names"], r["bases"] or [])]
            r["d_acc"] = [self.diff(self.acc(n), mean(self.acc, b)) for n, b in zip(r["names"], r["bases"] or [])]
            times = [self.minutes(n) for n in r["time"]]
            r["minutes"] = (sum(times) if r["idea"] == HOMOGENEOUS else statistics.mean(times)) \
                if None not in times else None
        return rows

    @staticmethod
    def verdict(d_ce: list, d_acc: list) -> str:
        """helped / hurt / no difference on dev CE and on BLiMP (pipeline_report.favours: beyond one sd of zero over
        seeds, the sign with one seed)."""
        out = []
        for d, good in ((d_ce, -1), (d_acc, +1)):
            d = [x for x in d if x is not None]
            out.append("–" if not d else "helped" if favours(d, good) else "hurt" if favours(d, -good)
                       else "no difference")
        return out

    # --- the section -------------------------------------------------------------------------------------------------
    def markdown(self) -> str:
        plan, p = self.plan, self.plan.p
        rows = self.rows()
        times = [(s.name, (plan.recorded(s) or {}).get("seconds")) for s in plan.stages if s.name != "report"]
        known = [t for _, t in times if t is not None]
        ev = next((plan.config(s).eval for s in plan.stages if s.name == "eval"), None)
        pairs = "no BLiMP stage" if ev is None else (
            f"{ev.max_pairs_per_file} pairs per file" if ev.max_pairs_per_file else "every pair")
        tokens = next(iter(self.text.values()))["all"]["tokens"] if self.text else 0
        teach = sum(t or 0.0 for n, t in times if n in ("teacher1", "teacher2")) / 60
        lines = ["# The paper's appendix B at CPU scale: " + Path(plan.work).name, "",
                 "Written by the report stage of `run_pipeline.py` (pipeline.appendix) from the files of the run; "
                 "nothing here is typed by hand.", "", f"- command: `{plan.command}`",
                 f"- machine: {cpu_name()}, {os.cpu_count()} cores visible, torch {torch.__version__} with "
                 f"{torch.get_num_threads()} threads",
                 f"- time: {sum(known) / 60:.1f} min, the sum of the stages' own run times (teachers {teach:.1f} min)",
                 f"- data: train_share {p.train_share}, seeds {self.seeds}; dev CE: the text stage, the first "
                 f"{p.dev_text_share:.0%} of each dev file ({tokens:,} tokens); BLiMP: {self.key} average, {pairs}",
                 "- Δ: the idea minus the plain student of the same seed (students-ensemble: minus its members' mean), "
                 "mean ± sd over seeds; dev CE lower is better, BLiMP higher. Minutes: the idea's own stage per seed "
                 "(an idea that starts from a trained model adds to that model's time; students-ensemble: its members' "
                 "training, summed); train tokens: metrics.json's tokens_seen."]
        if self.aoa:
            base = self.aoa[eval_aoa.BASELINE]["overall"]
            lines.append(f"- AoA: the paper's Table 4 (eval_aoa.py) on `{plan.rel(plan.aoa_text())}`, overall MAD in "
                         f"months of the leave-one-out regression (lower is better); without the LM's surprisal "
                         f"({eval_aoa.BASELINE}): {base:.2f}")
        aoa = " AoA MAD |" if self.aoa else ""
        lines += ["", f"| idea | what | dev CE | Δ dev CE | BLiMP | Δ BLiMP |{aoa} train tokens | minutes | dev CE | "
                      "BLiMP |", "| --- | --- | ---: | ---: | ---: | ---: |" + " ---: |" * bool(aoa)
                  + " ---: | ---: | --- | --- |"]
        self.words = {}
        for r in rows:
            base = r["bases"] is None
            words = ["baseline", "baseline"] if base else self.verdict(r["d_ce"], r["d_acc"])
            self.words[r["idea"]] = words
            tok = [self.tokens(n) for n in r["names"]]
            mins = "–" if r["minutes"] is None else f"{r['minutes']:.1f}"
            lines.append(f"| {r['idea']} | {r['what']} | {mean_sd([self.ce(n) for n in r['names']])} | "
                         f"{'–' if base else mean_sd(r['d_ce'], 3, True)} | "
                         f"{mean_sd([self.acc(n) for n in r['names']], 1)} | "
                         f"{'–' if base else mean_sd(r['d_acc'], 1, True)} | "
                         + (f"{mean_sd([self.mad(n) for n in r['names']], 2)} | " if self.aoa else "") +
                         f"{'–' if None in tok else f'{statistics.mean(tok):,.0f}'} | "
                         f"{mins} | {words[0]} | {words[1]} |")
        ideas = [r["idea"] for r in rows[1:]]
        group = lambda a, b: [i for i in ideas if self.words[i] == [a, b]]  # noqa: E731
        both = group("helped", "helped")
        one = [i for i in ideas if "helped" in self.words[i] and i not in both]
        none = [i for i in ideas if "helped" not in self.words[i]]
        rule = "a mean beyond one sd of zero over the seeds" if len(self.seeds) > 1 else "by sign, one seed"
        lines += ["", f"**Which ideas helped at this scale** ({rule}): on both dev CE and BLiMP: "
                      f"{', '.join(both) or 'none'}; on one of them: "
                      + (", ".join(f"{i} ({'dev CE' if self.words[i][0] == 'helped' else 'BLiMP'})" for i in one)
                         or "none") + f"; on neither: {', '.join(none) or 'none'}.", ""]
        return "\n".join(lines)


def write_appendix(plan) -> str:
    """The report stage of a run with pipeline.appendix: results/RESULTS.md (and pipeline.results_file's section)."""
    return publish(plan, AppendixReport(plan).markdown(), "appendix")


# ----------------------------------------------------------------------------------------------------------------------
# H1 tested with teachers that lead the plain student (pipeline.h1)


def signs(diffs: list[float]) -> str:
    """Each seed's sign in seed order: '−' where the first model's value is lower, '+' where higher."""
    return " ".join("−" if d < 0 else "+" if d > 0 else "0" for d in diffs)


class H1Report(Report):
    """H1, "distillation helps a data-limited student", tested only with teachers that lead the plain student: a
    teacher leads when the plain students' mean dev CE minus the teacher's exceeds one sd of the plain seeds. Each
    distilled cell is compared seed by seed with the plain student of the same seed and number of epochs (a cell run
    longer also with the shorter plain students: does it win only with more epochs?). From the run's files:

        models/<name>/metrics.json, config.yaml   best epoch (the saved weights'), epochs, T, KL normalisation
        results/dev_text.json                     dev CE of every model and ensemble (the text stage)
        results/<name>.json                       BLiMP of every model and ensemble (the eval stage)
    """

    def __init__(self, plan):
        super().__init__(plan)
        if self.text is None:
            raise UserError("the H1 report compares whole-dev-split CE: set pipeline.dev_text true and run the text "
                            "stage")
        p = plan.p
        self.epochs = {g: self.num_epochs(ms[0]) for g, ms in self.groups.items()}
        self.plains = ["student"] + [a for a, s in p.ablations.items() if s.of == "student"]
        self.cells = ["distilled"] + [a for a, s in p.ablations.items() if s.of == "distilled"]
        for c in self.cells:
            if not any(self.epochs[g] == self.epochs[c] for g in self.plains):
                raise UserError(f"pipeline.ablations.{c}: no plain student of {self.epochs[c]} epochs to compare it "
                                f"with; add an ablation of: student with training.num_epochs={self.epochs[c]}")

    # --- values ------------------------------------------------------------------------------------------------------
    def num_epochs(self, name: str) -> float:
        n = self._run_config(name)["training"]["num_epochs"]
        return int(n) if float(n).is_integer() else n

    def teachers_of(self, cell: str) -> list[str]:
        """The teachers a cell distils from, as scored: each heterogeneous teacher and their logit average, or the
        homogeneous ensemble (students-ensemble: the plain students of teacher_seeds, each at its best epoch)."""
        spec = self.plan.p.ablations.get(cell)
        return [HOMOGENEOUS] if spec and spec.teachers == "homogeneous" else ["teacher-1", "teacher-2", ENSEMBLE]

    def teacher_members(self, teacher: str) -> list[str]:
        return {ENSEMBLE: ["teacher-1", "teacher-2"], HOMOGENEOUS: [f"student-s{t}" for t in self.plan.p.teacher_seeds]
                }.get(teacher, [teacher])

    def lead(self, teacher: str, plain: str) -> tuple[float, float]:
        """(the plain students' mean dev CE minus the teacher's, the sd of the plain students' dev CE)."""
        ces = [self.dev_ce(n) for n in self.groups[plain]]
        return statistics.mean(ces) - self.dev_ce(teacher), statistics.stdev(ces)

    def leads(self, teacher: str, plain: str) -> bool:
        lead, sd = self.lead(teacher, plain)
        return lead > sd

    def comparisons(self) -> list[dict]:
        """Each cell against the plain student of its epochs (primary), then against every plain student of fewer."""
        rows = []
        for c in self.cells:
            for g in sorted((g for g in self.plains if self.epochs[g] <= self.epochs[c]), key=lambda g: -self.epochs[g]):
                d_acc = [None if self.blimp_avg(a, "phenomena") is None else
                         self.blimp_avg(a, "phenomena") - self.blimp_avg(b, "phenomena")
                         for a, b in zip(self.groups[c], self.groups[g])]
                rows.append(dict(cell=c, plain=g, primary=self.epochs[g] == self.epochs[c],
                                 fair=all(self.leads(t, g) for t in self.teachers_of(c)),
                                 d_ce=paired(self.groups[c], self.groups[g], self.dev_ce),
                                 d_acc=None if None in d_acc else d_acc))
        return rows

    def describe(self, cell: str) -> str:
        d = self._run_config(self.groups[cell][0])["distillation"]
        kind = "homogeneous" if self.teachers_of(cell) == [HOMOGENEOUS] else "heterogeneous"
        return f"{kind}, T {d['temperature']:g}, {d['kl_normalization']}"

    # --- sections ----------------------------------------------------------------------------------------------------
    def teacher_table(self) -> list[str]:
        lines = ["## The teachers' lead", "",
                 "H1 is tested only where every teacher a cell distils from leads the plain student it is compared "
                 "with: lead = the plain students' mean dev CE minus the teacher's, and it must exceed one sd of the "
                 "plain seeds (checked here from the run's files, not assumed). Best epoch: the epoch of the weights "
                 "each teacher (each member of an ensemble) was saved with, the lowest training-time eval loss.", "",
                 "| teacher | best epoch / epochs | dev CE | plain student | plain dev CE | lead | leads by > 1 sd |",
                 "| --- | --- | ---: | --- | ---: | ---: | --- |"]
        pairs = []
        for r in self.comparisons():
            pairs += [(t, r["plain"]) for t in self.teachers_of(r["cell"]) if (t, r["plain"]) not in pairs]
        for t, g in pairs:
            members = self.teacher_members(t)
            best = ", ".join(f"{self.metrics[m].get('best_epoch', float('nan')):g}" for m in members)
            lead, sd = self.lead(t, g)
            lines.append(f"| {t} | {best} / {self.num_epochs(members[0])} | "
                         f"{self.dev_ce(t):.3f} | {g} ({self.epochs[g]} epochs) | "
                         f"{mean_sd([self.dev_ce(n) for n in self.groups[g]])} | {lead:+.3f} | "
                         f"{'yes' if lead > sd else 'NO'} |")
        return lines + [""]

    def cell_table(self, rows) -> list[str]:
        lines = ["## Distilled − plain, seed by seed", "",
                 f"Each cell minus the plain student of the same seed (seeds {self.seeds}); per seed: the sign of each "
                 "seed's difference in seed order (dev CE: − is better for the distilled student; BLiMP phenomena "
                 "average: + is better). A mean beyond one sd of zero counts (`pipeline_report.favours`).", "",
                 "| cell | teachers, T, KL | against | teachers lead | Δ dev CE | per seed | dev CE | Δ BLiMP | per seed "
                 "| BLiMP |", "| --- | --- | --- | --- | ---: | --- | --- | ---: | --- | --- |"]
        for r in rows:
            acc = r["d_acc"]
            lines.append(f"| {r['cell']} ({self.epochs[r['cell']]} epochs) | {self.describe(r['cell'])} | "
                         f"{r['plain']} ({self.epochs[r['plain']]} epochs) | {'yes' if r['fair'] else 'NO'} | "
                         f"{mean_sd(r['d_ce'], 3, True)} | {signs(r['d_ce'])} | {word(r['d_ce'])} | "
                         + ("– | – | – |" if acc is None else
                            f"{mean_sd(acc, 1, True)} | {signs(acc)} | {word([-x for x in acc])} |"))
        return lines + [""]

    def h1_verdict(self, rows) -> list[str]:
        name = lambda r: f"{r['cell']} ({self.epochs[r['cell']]} epochs)"  # noqa: E731
        fair = [r for r in rows if r["fair"] and r["primary"]]
        unfair = [name(r) for r in rows if r["primary"] and not r["fair"]]
        head = "**H1 (distillation helps a data-limited student), with teachers at their best epoch: "
        if not fair:
            return [head + "not tested.** No cell's teachers lead the plain student by more than one sd, so this run "
                    "cannot test H1 (see the lead table).", ""]
        by = {w: [name(r) for r in fair if word(r["d_ce"]) == w] for w in ("better", "worse", "no difference")}
        # the paper's cell at any number of epochs: its teachers, T and KL normalisation
        paper = [r for r in fair if self.describe(r["cell"]) == self.describe("distilled")]
        untested = "" if paper else "; the paper's cell was not tested: its teachers do not lead"
        verdict = ("supported" if any(word(r["d_ce"]) == "better" for r in paper) else
                   "supported by variants only" + (untested or ", not by the paper's cell") if by["better"] else
                   "not supported" + untested)
        text = (head + verdict + ".** Against the plain student of the same seed and epochs, distillation lowered the "
                f"dev CE beyond one sd in: {', '.join(by['better']) or 'no cell'}; raised it in: "
                f"{', '.join(by['worse']) or 'no cell'}; no difference in: {', '.join(by['no difference']) or 'no cell'}.")
        if unfair:
            text += f" Left out (a teacher does not lead): {', '.join(unfair)}."
        for r in rows:
            if not r["primary"]:
                text += (f" {name(r)} against {r['plain']} ({self.epochs[r['plain']]} epochs): "
                         f"{statistics.mean(r['d_ce']):+.3f} nats ({word(r['d_ce'])}"
                         + (", teachers do not lead" if not r["fair"] else "") + ").")
        helped = [name(r) for r in fair if r["d_acc"] and favours(r["d_acc"], +1)]
        return [text + f" BLiMP phenomena average higher beyond one sd in: {', '.join(helped) or 'no cell'}.", ""]

    def markdown(self) -> str:
        head = self.header()
        lines = ["# H1 tested with teachers at their best epoch: " + Path(self.plan.work).name] + head[1:]
        lines += self.models() + self.dev_text() + self.blimp(self.plan.results, "BLiMP")
        rows = self.comparisons()
        lines += self.teacher_table() + self.cell_table(rows) + self.h1_verdict(rows)
        return "\n".join(lines)


def write_h1(plan) -> str:
    """The report stage of a run with pipeline.h1: results/RESULTS.md (and pipeline.results_file's section h1)."""
    return publish(plan, H1Report(plan).markdown(), "h1")
