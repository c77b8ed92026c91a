"""The report stage of run_pipeline.py: one Markdown file (RESULTS.md-style) from a finished work folder.

Every figure is read from the files the earlier stages wrote, never typed in:

    models/<name>/config.json, metrics.json   sizes, epochs, tokens and words seen, the distilled students' eval CE
                                               and KL
    models/<name>/chck_*/words_seen.json       the checkpoints by words seen (training.save_words)
    results/dev_text.json                      whole-dev-split CE per source (eval_text.py), ensemble included
    results/<name>.json                        BLiMP per model (results/supplement/, results/zero_shot/<folder>/:
                                               the supplement's and pipeline.zero_shot_dirs' results)
    results/dynamics/curves.json               each milestone checkpoint's fast-suite averages and dev CE
    .done/<stage>                              each stage's own run time

A group of students (one per seed) shows as mean +- sd over its seeds; the paired table subtracts, seed by seed, the
plain student from the distilled one, and each ablation's base from the ablation.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path

import torch
import yaml
from transformers import AutoConfig

from babyllama import locks, report, words
from babyllama.dynamics import CURVE_SCORES
from babyllama.files import write_atomic

ENSEMBLE = "teachers-ensemble"
HOMOGENEOUS = "students-ensemble"
TEACHERS = ["teacher-1", "teacher-2", ENSEMBLE]


def mean_sd(xs, digits: int = 3, sign: bool = False) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    fmt = f"{'+' if sign else ''}.{digits}f"
    if len(xs) == 1:
        return format(xs[0], fmt)
    return f"{format(statistics.mean(xs), fmt)} ± {statistics.stdev(xs):.{digits}f}"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def non_embedding(c, total: int) -> int:
    """Parameters outside the token (and GPT-2 position) embeddings and an untied output head; ``c`` a model config."""
    hidden = c.hidden_size  # GPT-2 maps it to n_embd
    emb = c.vocab_size * hidden * (1 if c.tie_word_embeddings else 2)
    if c.model_type == "gpt2":
        emb += c.n_positions * hidden
    return total - emb


def checkpoint_list(folder) -> str:
    """A model's checkpoints by words seen (training.save_words), as ``chck_1M … chck_10M (10)``; – for none."""
    names = [p.name for p in words.checkpoint_folders(folder)]
    return "–" if not names else names[0] if len(names) == 1 else f"{names[0]} … {names[-1]} ({len(names)})"


def favours(diffs: list[float], sign: int) -> bool:
    """The differences favour the first model: their mean is beyond one sd of zero in the good direction (sign -1:
    lower is better, as dev CE; +1: higher, as accuracy). One seed: any difference in the good direction."""
    sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    return sign * statistics.mean(diffs) > sd


def word(diffs: list[float]) -> str:
    """'better' / 'worse' / 'no difference' for per-seed dev CE differences (negative: the first model is better)."""
    return "better" if favours(diffs, -1) else "worse" if favours(diffs, +1) else "no difference"


def ordering_words(ce_diffs: list[float], acc_diffs: list[float]) -> str:
    """Whether "distilled beats plain" held, from the per-seed dev CE and BLiMP differences (distilled - plain)."""
    ce_ok, acc_ok = favours(ce_diffs, -1), favours(acc_diffs, +1)
    return "held" if ce_ok and acc_ok else "did not hold" if not (ce_ok or acc_ok) else "held only in part"


class Report:
    def __init__(self, plan):
        self.plan = plan
        # student / distilled / ablations -> model name per seed of pipeline.seeds (plain students of teacher_seeds only
        # make up the students-ensemble column)
        self.groups = {g: ms[:len(plan.p.seeds or [None])] for g, ms in plan.groups().items()}
        self.seeds = plan.p.seeds or [None]
        # the plain students of pipeline.teacher_seeds as one ensemble (homogeneous teachers), when there are any
        self.teachers = TEACHERS + ([HOMOGENEOUS] if plan.p.teacher_seeds else [])
        self.columns = self.teachers + list(self.groups)
        text = plan.results / "dev_text.json"
        self.text = json.loads(text.read_text())["results"] if text.is_file() else None
        self.metrics = {n: json.loads((f / "metrics.json").read_text()) for n, f in plan.models().items()}

    # --- values ------------------------------------------------------------------------------------------------------
    def members(self, column: str) -> list[str]:
        return self.groups.get(column, [column])

    def dev_ce(self, name: str, source: str = "all") -> float | None:
        if self.text is not None:
            return self.text[name][source]["ce"] if source in self.text.get(name, {}) else None
        if name in (ENSEMBLE, HOMOGENEOUS) or source != "all":
            return None
        m = self.metrics[name]
        return m.get("eval_ce", m["eval_loss"])  # the distilled student's eval_loss mixes in the KL

    def cell(self, column: str, value, digits: int = 3) -> str:
        return mean_sd([value(n) for n in self.members(column)], digits)

    def table(self, rows, header: str, digits: int) -> list[str]:
        """rows: (label, value(name) -> float | None)."""
        out = [f"| {header} | " + " | ".join(self.columns) + " |", "| --- |" + " ---: |" * len(self.columns)]
        for label, value in rows:
            out.append(f"| {label} | " + " | ".join(self.cell(c, value, digits) for c in self.columns) + " |")
        return out

    # --- sections ----------------------------------------------------------------------------------------------------
    def header(self) -> list[str]:
        p = self.plan
        times = []
        for s in p.stages:
            rec = p.recorded(s) or {}
            times.append((s.name, rec.get("seconds")))
        times = [(n, t) for n, t in times if n != "report"]  # this stage is still running
        known = [t for _, t in times if t is not None]
        lines = ["# Results: " + Path(p.work).name, "",
                 "Written by the report stage of `run_pipeline.py` from the files of the run; nothing here is typed by "
                 "hand.", "", f"- command: `{p.command}`",
                 f"- machine: {cpu_name()}, {os.cpu_count()} cores visible, torch {torch.__version__} with "
                 f"{torch.get_num_threads()} threads",
                 f"- time: {sum(known) / 60:.1f} min, the sum of the stages' own run times (a resumed run adds up its "
                 f"parts)" + ("" if len(known) == len(times) else f"; {len(times) - len(known)} stages have no "
                                                                    "recorded time"), ""]
        groups = {}
        for name, t in times:
            kind = next((g for g, ms in self.groups.items() if name in ms), name)
            groups[kind] = groups.get(kind, 0.0) + (t or 0.0)
        lines += ["| stages | minutes |", "| --- | ---: |"]
        lines += [f"| {k} | {v / 60:.1f} |" for k, v in groups.items()]
        return lines + [""]

    def models(self) -> list[str]:
        lines = ["## Models", "", "Best epoch: the epoch of the saved weights, the lowest training-time eval loss "
                 "(metrics.json `best_epoch`), mean ± sd over seeds.", "",
                 "| model | type | layers | hidden | inner | parameters | non-embedding | epochs | best epoch | "
                 "train tokens / epoch | seq | lr | words seen | checkpoints by words |",
                 "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        shown = set()
        for n, folder in self.plan.models().items():
            base = next((g for g, ms in self.groups.items() if n in ms), n)
            if base in shown:
                continue
            shown.add(base)
            m = self.metrics[n]
            c = AutoConfig.from_pretrained(str(folder))
            run = self._run_config(n)
            t, d = run["training"], run["data"]
            steps_tokens = m.get("tokens_seen", 0) / max(t["num_epochs"], 1)
            inner = getattr(c, "intermediate_size", None) or getattr(c, "n_inner", None)
            seen = f"{m['words_seen']:,}" if "words_seen" in m else "–"  # a run from before the count: –
            lines.append(f"| {base} | {c.model_type} | {c.num_hidden_layers} | {c.hidden_size} | {inner} | "
                         f"{m['parameters'] / 1e6:.2f}M | {non_embedding(c, m['parameters']) / 1e6:.2f}M | "
                         f"{t['num_epochs']} | {self.best_epochs(self.members(base))} | {steps_tokens:,.0f} | "
                         f"{d['seq_length']} | {t['lr']} | {seen} | {checkpoint_list(folder)} |")
        return lines + [""]

    def best_epochs(self, names: list[str]) -> str:
        """The saved weights' epoch (metrics.json best_epoch), mean ± sd over ``names``; '–' for runs before it."""
        return mean_sd([self.metrics[n].get("best_epoch") for n in names], 1)

    def dev_text(self) -> list[str]:
        if self.text is None:
            return ["## Dev CE", "", "(pipeline.dev_text is off: the training eval subset's CE)", ""] + self.table(
                [("all", self.dev_ce)], "dev CE", 3) + [""]
        sources = list(next(iter(self.text.values())))
        tokens = self.text["teacher-1"]["all"]["tokens"]
        lines = ["## Dev CE over the whole dev split (nats per token)", "",
                 f"`eval_text.py` on `{Path(self.plan.clean / self.plan.p.dev_split)}`: {tokens:,} predicted tokens, "
                 f"windows of {self.plan.text_seq_length()}; students as mean ± sd over seeds {self.seeds}.", ""]
        rows = [(f"*{s}*" if s == "all" else s, lambda n, s=s: self.dev_ce(n, s)) for s in sources]
        return lines + self.table(rows, "source", 3) + [""]

    def blimp(self, folder: Path, title: str) -> list[str]:
        """An eval stage's tables: BLiMP's (phenomena, supplement tasks) if it has any, then one per other suite."""
        names = [n for c in self.columns for n in self.members(c)]
        results = report.load_results([folder / f"{n}.json" for n in names])
        rows = report.blimp_rows(results)
        lines = []
        if folder == self.plan.results:
            self._blimp = results  # the paired differences and the verdict use BLiMP proper
        if rows or folder == self.plan.results:
            lines = [f"## {title} (accuracy %)", ""] + self.table(
                [(f"*{r.label}*" if r.group == "averages" else r.label, lambda n, r=r: r.values.get(n)) for r in rows],
                "phenomenon", 1) + [""]
        for suite, (name, header, digits, _) in report.SUITE_TABLES.items():
            rows = report.suite_rows(results, suite)
            if rows:
                lines += [f"## {name}" + ("" if folder == self.plan.results else f", {title}"), ""] + self.table(
                    [(f"*{r.label}*" if r.group == "averages" else r.label, lambda n, r=r: r.values.get(n))
                     for r in rows], header, digits) + [""]
        return lines

    def blimp_avg(self, name: str, key: str) -> float | None:
        v = self._blimp[name]["averages"].get(key)
        return None if v is None else 100 * v

    def paired(self) -> list[str]:
        pairs = [("distilled", "student")] + [(a, spec.of) for a, spec in self.plan.p.ablations.items()]
        pairs += [(a, "student") for a, spec in self.plan.p.ablations.items() if spec.of == "distilled"]
        lines = ["## Paired differences, seed by seed", "",
                 "Dev CE in nats (lower is better: a negative difference favours the first model); BLiMP in points.", "",
                 "| comparison | seed | dev CE | BLiMP phenomena avg | BLiMP file avg |",
                 "| --- | --- | ---: | ---: | ---: |"]
        self.diffs = {}
        for a, b in pairs:
            rows = []
            for ma, mb, s in zip(self.groups[a], self.groups[b], self.seeds):
                d = (self.dev_ce(ma) - self.dev_ce(mb),
                     *(self.blimp_avg(ma, k) - self.blimp_avg(mb, k) if self.blimp_avg(ma, k) is not None else None
                       for k in ("phenomena", "files")))
                rows.append(d)
                lines.append(f"| {a} − {b} | {'–' if s is None else s} | {d[0]:+.3f} | " + " | ".join(
                    "–" if x is None else f"{x:+.1f}" for x in d[1:]) + " |")
            cols = list(zip(*rows))
            self.diffs[(a, b)] = cols
            lines.append(f"| **{a} − {b}** | mean ± sd | {mean_sd(cols[0], 3, True)} | {mean_sd(cols[1], 1, True)} | "
                         f"{mean_sd(cols[2], 1, True)} |")
        return lines + [""]

    def distillation_terms(self) -> list[str]:
        lines = ["## What there was to distil", "",
                 "Gap: the plain student's dev CE minus the teacher's (nats the teacher is ahead). KL: the distilled "
                 "students' eval KL(teacher ‖ student) at temperature T as it enters the loss (`batchmean`: summed over "
                 "a sequence; `token_mean`: per token), per token, and the share of the loss the KL term carries.", "",
                 "| | value |", "| --- | ---: |"]
        plain = self.groups["student"]
        for t in self.teachers:
            gap = [self.dev_ce(s) - self.dev_ce(t) for s in plain if self.dev_ce(t) is not None]
            if gap:
                lines.append(f"| gap student − {t} | {mean_sd(gap, 3)} |")
        for g, spec in [("distilled", None)] + list(self.plan.p.ablations.items()):
            if g != "distilled" and spec.of != "distilled":
                continue
            per_token, share = [], []
            for n in self.groups[g]:
                m = self.metrics[n]
                run = self._run_config(n)
                dist = run["distillation"]
                kl, ce = m["eval_kl"], m["eval_ce"]
                seq = run["data"]["seq_length"]
                per_token.append(kl / seq if dist["kl_normalization"] == "batchmean" else kl)
                a, t = dist["alpha"], dist["temperature"]
                share.append((1 - a) * t * t * kl / (a * ce + (1 - a) * t * t * kl))
            lines.append(f"| {g}: KL per token (nats) | {mean_sd(per_token, 4)} |")
            lines.append(f"| {g}: KL term's share of the eval loss | {mean_sd([100 * x for x in share], 1)} % |")
        return lines + [""]

    def _run_config(self, name: str) -> dict:
        """The run's saved config (data, model, training, distillation sections)."""
        return yaml.safe_load((self.plan.model_dir(name) / "config.yaml").read_text())

    def verdict(self) -> list[str]:
        d = self.diffs[("distilled", "student")]
        ce, ph = statistics.mean(d[0]), [x for x in d[1] if x is not None]
        key = "phenomena" if ph else "files"
        acc = statistics.mean(ph or [x for x in d[2] if x is not None])
        n = len(d[0])
        better_ce = sum(x < 0 for x in d[0])
        better_acc = sum((x or 0) > 0 for x in (d[1] if ph else d[2]))
        dist = self.groups["distilled"]
        ens = self.dev_ce(ENSEMBLE)
        dist_ce = statistics.mean(self.dev_ce(m) for m in dist)
        t_acc = max(self.blimp_avg(t, key) for t in TEACHERS)
        dist_acc = statistics.mean(self.blimp_avg(m, key) for m in dist)
        words = ordering_words(d[0], ph or [x for x in d[2] if x is not None])
        text = (f"**Verdict.** The paper's first ordering (distilled student better than the same student trained "
                f"plainly) {words} at this scale: distilled − plain is {ce:+.3f} nats of dev CE (lower in {better_ce} "
                f"of {n} seeds) and {acc:+.1f} points of BLiMP {key} average (higher in {better_acc} of {n} seeds)"
                + ("; a mean within one sd of zero counts as no difference. " if n > 1 else ". "))
        if ens is not None:
            text += (f"Against the teachers, the distilled students' mean dev CE {dist_ce:.3f} is "
                     f"{'below' if dist_ce < ens else 'above'} the ensemble's {ens:.3f}, and their BLiMP {key} average "
                     f"{dist_acc:.1f} is {'at or above' if dist_acc >= t_acc else 'below'} the best teacher column's "
                     f"{t_acc:.1f}, so the second ordering (the student matches or beats its teachers) "
                     f"{'held' if dist_acc >= t_acc else 'did not hold'} on BLiMP.")
        for (a, b), (dce, dph, dfi) in self.diffs.items():
            if b == "student" and a != "distilled":
                acc_a = [x for x in (dph if ph else dfi) if x is not None]
                text += (f" Variant {a}: {statistics.mean(dce):+.3f} nats of dev CE against the plain student (lower "
                         f"in {sum(x < 0 for x in dce)} of {len(dce)} seeds: {word(list(dce))}), "
                         f"{statistics.mean(acc_a):+.1f} points of BLiMP {key} average ({word([-x for x in acc_a])}).")
        return [text, ""]

    def group_curves(self, curves: dict) -> dict:
        """{group: [row]} of the plain and the distilled students: at each milestone, each score's mean over the seeds
        (and its sd, with 2+ seeds)."""
        out = {}
        for g in ("student", "distilled"):
            runs = [curves[n] for n in self.groups[g]]
            rows = []
            for r in runs[0]:
                seeds = [x for rs in runs for x in rs if x["checkpoint"] == r["checkpoint"]]  # the seeds that reached it
                keys = [k for k in r["scores"] if all(k in x["scores"] for x in seeds)]
                vals = {k: [x["scores"][k] for x in seeds] for k in keys}
                rows.append({"checkpoint": r["checkpoint"], "words_seen": r["words_seen"],
                             "scores": {k: statistics.mean(v) for k, v in vals.items()},
                             **({"sd": {k: statistics.stdev(v) for k, v in vals.items()}} if len(seeds) > 1 else {})})
            out[g] = rows
        return out

    def learning(self) -> list[str]:
        """Learning over words seen (pipeline.dynamics): the curves' table and figure, and distilled - plain at each
        milestone, seed by seed, as mean ± sd; the differences beyond one sd of zero are named."""
        c = json.loads((self.plan.results / "dynamics" / "curves.json").read_text())
        groups = self.group_curves(c["curves"])
        report.plot_words(groups, c["reference"], CURVE_SCORES, self.plan.results / "learning.png")
        n = len(self.seeds)
        keys = [k for k in CURVE_SCORES if any(k in r["scores"] for r in groups["student"])]
        fast = "the organisers' fast subsample" if c["settings"].get("fast") is not False else "every item"
        suites = ", ".join(CURVE_SCORES[k][0] for k in keys if k != "dev_ce")
        lines = ["## Learning over words seen", "",
                 f"Every milestone checkpoint (`chck_<N>`) of the plain and the distilled students: {suites} on {fast} "
                 "(accuracies in %, wug as Spearman's rho, reading as the share of variance surprisal explains, %), "
                 f"and dev CE (nats per token) on the first {c['settings'].get('dev_share', 1):.0%} of each dev "
                 f"file's lines; mean ± sd over seeds {self.seeds} (words seen: the first seed's); the teachers' final "
                 f"models below; scored with the {c['settings'].get('convention', 'lm-eval')} convention. Figure: "
                 "`learning.png`.", "",
                 report.curve_table(groups, c["reference"], CURVE_SCORES), "",
                 "<details><summary>Every checkpoint, seed by seed</summary>", "",
                 report.curve_table(c["curves"], {}, CURVE_SCORES), "</details>", ""]
        lines += ["### Distilled − plain at each milestone, seed by seed", "",
                  "Mean ± sd over the seeds of distilled − plain (dev CE: negative favours the distilled student; the "
                  "suites: positive does); **bold**: beyond one sd of zero.", "",
                  "| checkpoint | words seen | " + " | ".join(CURVE_SCORES[k][0] for k in keys) + " |",
                  "| --- | ---: |" + " ---: |" * len(keys)]
        clear = []
        by = {m: {r["checkpoint"]: r["scores"] for r in rs} for m, rs in c["curves"].items()}
        pairs = list(zip(self.groups["distilled"], self.groups["student"]))
        for r in groups["distilled"]:
            label, cells = r["checkpoint"], []
            for k in keys:
                d = [by[a][label][k] - by[b][label][k] for a, b in pairs
                     if k in by[a].get(label, {}) and k in by[b].get(label, {})]
                if len(d) < n:  # a seed without this milestone: no paired difference
                    cells.append("–")
                    continue
                text = mean_sd(d, CURVE_SCORES[k][1], True)
                beyond = n > 1 and (favours(d, +1) or favours(d, -1))
                if beyond:
                    better = favours(d, -1 if k == "dev_ce" else +1)
                    clear.append(f"{CURVE_SCORES[k][0]} at {label} ({text}: distilled {'better' if better else 'worse'})")
                cells.append(f"**{text}**" if beyond else text)
            lines.append(f"| {label} | {r['words_seen']:,} | " + " | ".join(cells) + " |")
        if n < 2:
            lines += ["", "One seed: no sd, so no difference is called beyond noise."]
        else:
            lines += ["", ("Beyond one sd of zero: " + "; ".join(clear) + ". Every other difference is within one sd."
                           if clear else "No difference is beyond one sd of zero.")
                      + " Chance: BLiMP and EWoK 50 %, entity tracking 20 %, wug rho 0, reading 0 %."]
        return lines + [""]

    def markdown(self) -> str:
        lines = self.header() + self.models() + self.dev_text()
        lines += self.blimp(self.plan.results, "BLiMP")
        for stage, folder in self.plan.zero_shot.items():
            lines += self.blimp(self.plan.eval_output(stage), "BLiMP supplement" if stage == "supplement" else
                                f"`{folder.name}`")
        lines += self.paired() + self.distillation_terms() + self.verdict()
        lines += self.learning() if self.plan.p.dynamics else []
        return "\n".join(lines)


def write(plan) -> str:
    """Build the report, write it to results/RESULTS.md (and pipeline.results_file, with learning.png copied beside it
    to docs/results/<section>-learning.png), and return it."""
    text = Report(plan).markdown()
    if plan.p.dynamics and plan.p.results_file:
        name = f"{plan.p.results_section}-learning.png" if plan.p.results_section else "learning.png"
        write_atomic(Path(plan.p.results_file).parent / "docs" / "results" / name,
                     (plan.results / "learning.png").read_bytes())
        text = text.replace("Figure: `learning.png`.", f"Figure: [learning over words seen](docs/results/{name}).")
    return publish(plan, text)


def write_section(path, name: str, text: str):
    """Put ``text`` into ``path`` between the markers of section ``name``, keeping the file's other sections; a file
    without that section gets it at the end."""
    begin, end = f"<!-- begin {name}: generated, do not edit -->", f"<!-- end {name} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    with locks.updating(path):  # two runs publishing their sections at once: both sections land
        old = Path(path).read_text() if Path(path).is_file() else ""
        if begin in old and end in old:
            new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
        else:
            new = (old.rstrip() + "\n\n" if old.strip() else "") + block + "\n"
        write_atomic(path, new)


def publish(plan, text: str, section: str | None = None) -> str:
    """Write a report to results/RESULTS.md and to pipeline.results_file: its section pipeline.results_section (else
    ``section``), or the whole file when neither is given; return it."""
    write_atomic(plan.results / "RESULTS.md", text)
    name = plan.p.results_section or section
    if plan.p.results_file and name:
        write_section(plan.p.results_file, name, text)
    elif plan.p.results_file:
        write_atomic(plan.p.results_file, text)
    return text
