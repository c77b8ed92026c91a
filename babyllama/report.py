"""Result tables and plots: rows x model columns as a Markdown table and a parallel-coordinates plot, for any value
range and axis label (BLiMP accuracy 0..100, or an MCC axis -100..100 for fine-tuning); BLiMP's Table 1 and Figures
1-2 on top of them; loading result JSONs.

    rows = [Row("CoLA", "tasks", {"a": 31.2, "b": 28.0}), Row("Average", "averages", {"a": 70.1, "b": 68.3})]
    Path("table.md").write_text(format_table(rows, ["a", "b"]))
    parallel_plot(rows, ["a", "b"], "glue.png", ylabel="MCC x 100", ylim=(-100, 100), chance=0)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

from babyllama.config import UserError

# BLiMP's 12 phenomena in the order of the paper's Table 1, then the BabyLM supplement tasks, with their row labels
BLIMP_LABELS = {
    "anaphor_agreement": "Anaphor Agr.", "argument_structure": "Arg. Structure", "binding": "Binding",
    "control_raising": "Control/Raising", "determiner_noun_agreement": "D-N Agr.", "ellipsis": "Ellipsis",
    "filler_gap_dependency": "Filler-Gap", "irregular_forms": "Irregular Forms", "island_effects": "Island Effects",
    "npi_licensing": "NPI Licensing", "quantifiers": "Quantifiers", "subject_verb_agreement": "S-V Agr.",
    "hypernym": "Hypernym", "qa_congruence_easy": "QA Congr. Easy", "qa_congruence_tricky": "QA Congr. Tricky",
    "subject_aux_inversion": "Subj.-Aux. Inversion", "turn_taking": "Turn Taking",
}
AVERAGE_LABELS = {"phenomena": "BLiMP avg. (phenomena)", "supplement": "Supplement avg.", "files": "Avg. over files"}
# the other zero-shot suites: table title, header, value digits, and whether a value is an accuracy (shown in %)
SUITE_TABLES = {"ewok": ("EWoK (accuracy %)", "domain", 1, True),
                "entity_tracking": ("Entity tracking (accuracy %)", "subset", 1, True),
                "wug": ("Wug adjective nominalization (Spearman's rho with the human ratio)", "file", 3, False)}


class Row(NamedTuple):
    label: str
    group: str  # rows of one group sit together; the plot draws a line between groups; "averages" rows are not plotted
    values: dict | None  # column name -> value in display units (None when the column has none); None: a title row


# ----------------------------------------------------------------------------------------------------------------------
# generic: any rows, any columns, any range


def format_table(rows: list[Row], columns: list[str], header: str = "Task", digits: int = 1,
                 italic_groups=("averages",), best=max, marks=None) -> str:
    """A Markdown table: a row per ``Row``, a column per name, the best value of each row (``best``: max, or min for
    an error) in bold (with 2+ columns), ``–`` where a column has no value; ``marks``: {(row label, column): a
    footnote sign after that cell's value}."""
    lines = [f"| {header} | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for r in rows:
        if r.values is None:  # a section title
            lines.append(f"| *{r.label}* |" + " |" * len(columns))
            continue
        vals = [r.values.get(c) for c in columns]
        top = best((v for v in vals if v is not None), default=None)
        cells = []
        for c, v in zip(columns, vals):
            text = "–" if v is None else f"{v:.{digits}f}"
            text = f"**{text}**" if v is not None and len(columns) > 1 and v == top else text
            cells.append(text + (marks or {}).get((r.label, c), ""))
        label = f"*{r.label}*" if r.group in italic_groups else r.label
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parallel_plot(rows: list[Row], columns: list[str], out_png, ylabel: str, ylim: tuple | None = None,
                  chance: float | None = None, title: str = "", skip_groups=("averages",)) -> Path:
    """Parallel-coordinates plot: an axis per row, a line per column (model), a dashed line between groups, a dotted
    line at ``chance``."""
    plt = _pyplot()
    rows = [r for r in rows if r.group not in skip_groups and r.values is not None]
    if not rows:
        raise UserError(f"nothing to plot for {out_png}: no rows")
    x = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(rows) + 2.5), 4.8), layout="constrained")
    markers = "osD^vP*Xhp<>"
    for k, name in enumerate(columns):
        y = [math.nan if r.values.get(name) is None else r.values[name] for r in rows]
        ax.plot(x, y, marker=markers[k % len(markers)], markersize=5, linewidth=1.6, alpha=0.9, label=name)
    for xi in x:  # the parallel axes
        ax.axvline(xi, color="0.85", linewidth=0.8, zorder=0)
    for i in range(1, len(rows)):
        if rows[i].group != rows[i - 1].group:
            ax.axvline(i - 0.5, color="0.4", linestyle="--", linewidth=1)
    ax.set_xticks(x, [r.label for r in rows], rotation=40, ha="right")
    ax.set_xlim(-0.4, len(rows) - 0.6)
    ax.set_ylabel(ylabel)
    if chance is not None:
        ax.axhline(chance, color="0.5", linestyle=":", linewidth=1)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", color="0.9")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize="small", framealpha=0.9)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out


def _pyplot():
    import matplotlib  # slow to import: only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_curves(series: dict, out_png) -> Path:
    """Learning curves: a panel per budget, a line per model group (mean dev CE over its seeds at each epoch end) with
    a band of one sd. ``series``: {(budget, group): [curve, ...]}, a curve a list of {"epoch", "dev_ce"}."""
    plt = _pyplot()
    budgets = list(dict.fromkeys(b for b, _ in series))
    fig, axes = plt.subplots(1, len(budgets), figsize=(4.2 * len(budgets), 3.6), layout="constrained", squeeze=False)
    for ax, b in zip(axes[0], budgets):
        for (b2, group), curves in series.items():
            if b2 != b or not curves:
                continue
            n = min(len(c) for c in curves)
            x = [curves[0][i]["epoch"] for i in range(n)]
            ys = [[c[i]["dev_ce"] for c in curves] for i in range(n)]
            mean = [sum(y) / len(y) for y in ys]
            sd = [(sum((v - m) ** 2 for v in y) / max(len(y) - 1, 1)) ** 0.5 for y, m in zip(ys, mean)]
            line, = ax.plot(x, mean, marker="o", markersize=3, label=f"{group} ({len(curves)} seeds)")
            ax.fill_between(x, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                            color=line.get_color(), alpha=0.2)
        ax.set_title(b)
        ax.set_xlabel("epoch")
        ax.grid(color="0.9")
    axes[0][0].set_ylabel("dev CE (nats / token)")
    axes[0][-1].legend(fontsize="small")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out


def plot_map(values: dict, cells: list[str], budgets: list[float], out_png) -> Path:
    """Heatmap of distilled - plain dev CE: a row per cell, a column per budget, the mean and sd written in each
    square (blue: distillation helped); ``values``: {(cell, budget): [per-seed differences] or None (not run)}."""
    plt = _pyplot()
    grid = [[math.nan if not values.get((c, b)) else sum(values[(c, b)]) / len(values[(c, b)]) for b in budgets]
            for c in cells]
    span = max([abs(v) for row in grid for v in row if not math.isnan(v)] + [1e-3])
    fig, ax = plt.subplots(figsize=(1.6 * len(budgets) + 2.5, 0.6 * len(cells) + 1.4), layout="constrained")
    im = ax.imshow(grid, cmap="coolwarm", vmin=-span, vmax=span, aspect="auto")
    for i, c in enumerate(cells):
        for j, b in enumerate(budgets):
            d = values.get((c, b))
            sd = (sum((x - grid[i][j]) ** 2 for x in d) / max(len(d) - 1, 1)) ** 0.5 if d else 0
            ax.text(j, i, "not run" if not d else f"{grid[i][j]:+.3f}\n± {sd:.3f}", ha="center", va="center",
                    fontsize=8)
    ax.set_xticks(range(len(budgets)), [f"train share {b:g}" for b in budgets])
    ax.set_yticks(range(len(cells)), cells)
    fig.colorbar(im, ax=ax, label="distilled − plain dev CE (nats)")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out


def ensemble_gain(ensemble: float, members: list[float], higher_is_better: bool = False) -> dict:
    """An ensemble against its members (e.g. N seeds of one config, the paper's appendix B: eval loss 3.77 -> 3.66):
    the members' mean and best, and the ensemble's gain over each, positive when the ensemble is better."""
    sign = 1.0 if higher_is_better else -1.0
    mean = sum(members) / len(members)
    best = max(members) if higher_is_better else min(members)
    return {"ensemble": ensemble, "members_mean": mean, "best_member": best,
            "gain_over_mean": sign * (ensemble - mean), "gain_over_best": sign * (ensemble - best)}


def ensemble_gains(folders: dict[str, list], values: dict[str, float], higher_is_better: bool = False) -> dict:
    """{ensemble name: ``ensemble_gain``} for every name of ``folders`` ({name: [model folders]}) with 2+ folders
    whose every folder is also scored alone under some name; ``values`` {name: score}."""
    alone = {str(Path(p[0]).resolve()): n for n, p in folders.items() if len(p) == 1 and values.get(n) is not None}
    out = {}
    for name, paths in folders.items():
        members = [alone.get(str(Path(p).resolve())) for p in paths]
        if len(paths) > 1 and values.get(name) is not None and all(members):
            out[name] = ensemble_gain(values[name], [values[m] for m in members], higher_is_better)
            out[name]["members"] = members
    return out


def gain_lines(gains: dict, what: str, digits: int = 3) -> str:
    """One line per ensemble: its score, its members' mean and best, and the gains (positive: the ensemble is better)."""
    return "".join(f"ensemble {n}: {what} {g['ensemble']:.{digits}f}; members ({', '.join(g['members'])}) mean "
                   f"{g['members_mean']:.{digits}f}, best {g['best_member']:.{digits}f}; gain over the mean "
                   f"{g['gain_over_mean']:+.{digits}f}, over the best {g['gain_over_best']:+.{digits}f}\n"
                   for n, g in gains.items())


def read_json(path, required=()) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: result file not found")
    try:
        r = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a valid JSON file ({e})")
    if not isinstance(r, dict) or not all(k in r for k in required):
        raise UserError(f"{path}: not a result file ({'/'.join(required)} missing)")
    return r


def load_results(paths, read=None) -> dict:
    """{model name: result} from result files, ``read(path) -> dict`` each (default: a BLiMP result JSON). The name is
    the result's ``model``, else the file name; the same name twice gets its folder appended."""
    read = read or (lambda p: read_json(p, ("phenomena", "supplement", "averages")))
    out = {}
    for path in paths:
        path = Path(path)
        r = read(path)
        name = r.get("model") or path.name.split(".")[0]
        if name in out:  # the same model from two runs: tell them apart by folder
            name = f"{name} ({path.parent.name})"
        while name in out:
            name += "'"
        out[name] = r
    return out


# ----------------------------------------------------------------------------------------------------------------------
# BLiMP: Table 1 and Figures 1-2 of the paper


def blimp_rows(results_by_model: dict) -> list[Row]:
    """Phenomena (Table 1 order), supplement tasks, then averages, as present in any model; accuracy in %."""
    rows = []
    for section in ("phenomena", "supplement"):
        keys = []
        for r in results_by_model.values():
            keys += [k for k in r[section] if k not in keys]
        if section == "phenomena":
            order = list(BLIMP_LABELS)
            keys.sort(key=lambda k: (order.index(k) if k in order else len(order), k))
        for k in keys:
            vals = {}
            for name, r in results_by_model.items():
                v = r[section].get(k)
                v = v["acc"] if isinstance(v, dict) else v
                vals[name] = None if v is None else 100 * v
            rows.append(Row(BLIMP_LABELS.get(k) or k.replace("_", " ").capitalize(), section, vals))
    for k, label in AVERAGE_LABELS.items():
        vals = {n: None if r["averages"].get(k) is None else 100 * r["averages"][k]
                for n, r in results_by_model.items()}
        if any(v is not None for v in vals.values()):
            rows.append(Row(label, "averages", vals))
    return rows


def suite_rows(results_by_model: dict, suite: str) -> list[Row]:
    """One suite's rows (EWoK domains, entity tracking subsets and files, the wug file) and its average, in display
    units (accuracy %, rho as is); [] when no model has the suite."""
    present = {n: r["suites"][suite] for n, r in results_by_model.items() if suite in r.get("suites", {})}
    if not present:
        return []
    scale = 100 if SUITE_TABLES[suite][3] else 1
    val = lambda v: None if v is None else scale * v  # noqa: E731
    rows = []
    for section, group in (("rows", suite), ("splits", "averages")):
        keys = []
        for r in present.values():
            keys += [k for k in r.get(section, {}) if k not in keys]
        rows += [Row(k + (" (mean of its subsets)" if section == "splits" else ""), group,
                     {n: val(r.get(section, {}).get(k)) for n, r in present.items()}) for k in keys]
    rows.append(Row("Average", "averages", {n: val(r["avg"]) for n, r in present.items()}))
    return rows


CONVENTION_NOTES = {"lm-eval": "lm-evaluation-harness: a leading space, after BOS",
                    "babylm2025": "the BabyLM 2025 pipeline: no leading space, BOS only from the tokenizer's "
                                  "post-processor"}


def convention_note(results_by_model: dict) -> str:
    """The line that says which scoring convention made a table (results without the setting predate it: lm-eval)."""
    found = sorted({r.get("settings", {}).get("convention", "lm-eval") for r in results_by_model.values()})
    return "Scored with the " + " and ".join(f"{c} convention ({CONVENTION_NOTES.get(c, c)})" for c in found) + \
        (": the columns are not comparable." if len(found) > 1 else ".")


def markdown_table(results_by_model: dict) -> str:
    """Table 1 layout: a row per phenomenon, supplement task and average; a column per model; accuracy in %. Then a
    table per other suite present (EWoK, entity tracking, wug), each with its own rows and average, and the line that
    names the scoring convention."""
    columns = list(results_by_model)
    blimp = blimp_rows(results_by_model)
    parts = [format_table(blimp, columns)] if blimp else []
    for suite, (title, header, digits, _) in SUITE_TABLES.items():
        rows = suite_rows(results_by_model, suite)
        if rows:
            parts.append(f"### {title}\n\n" + format_table(rows, columns, header=header, digits=digits))
    return "\n".join(parts + [convention_note(results_by_model) + "\n"])


def plot_results(results_by_model: dict, out_png) -> Path | None:
    """Figures 1-2: one line per model across phenomena, supplement tasks, EWoK domains and entity-tracking subsets,
    accuracy 0-100 %, chance at 50 (BLiMP, EWoK; entity tracking's is 20); None when there is no accuracy to plot."""
    rows = blimp_rows(results_by_model) + suite_rows(results_by_model, "ewok") + \
        suite_rows(results_by_model, "entity_tracking")
    groups = {r.group for r in rows if r.group != "averages"}
    if not groups:
        return None
    title = "BLiMP accuracy per phenomenon" + (" and supplement task" if "supplement" in groups else "")
    if groups - {"phenomena", "supplement"}:
        names = {"phenomena": "BLiMP", "supplement": "supplement", "ewok": "EWoK", "entity_tracking": "entity tracking"}
        title = "Zero-shot accuracy: " + ", ".join(v for k, v in names.items() if k in groups)
    return parallel_plot(rows, list(results_by_model), out_png, "accuracy (%)", (0, 100), 50, title)


def write_blimp_summary(results_by_model: dict, out_dir) -> str:
    """table.md and blimp.png (when there is an accuracy to plot) in ``out_dir``; returns the table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(results_by_model)
    (out / "table.md").write_text(table, encoding="utf-8")
    plot_results(results_by_model, out / "blimp.png")
    return table


# ----------------------------------------------------------------------------------------------------------------------
# learning over words seen: a row per milestone checkpoint (babyllama/dynamics.py)


def curve_table(curves: dict, reference: dict, labels: dict) -> str:
    """A Markdown row per checkpoint of each model (``curves``: {model: [row]}, a row {"checkpoint", "words_seen",
    "scores": {key: value}, "sd"?: {key: sd}}), then a row per ``reference`` model ({name: scores}, e.g. a final
    teacher); a column per score key of ``labels`` ({key: (label, digits)}) present in any row."""
    rows = [r for rs in curves.values() for r in rs]
    keys = [k for k in labels if any(k in r["scores"] for r in rows) or any(k in s for s in reference.values())]
    lines = ["| model | checkpoint | words seen | " + " | ".join(labels[k][0] for k in keys) + " |",
             "| --- | --- | ---: |" + " ---: |" * len(keys)]

    def cells(scores: dict, sd: dict) -> str:
        out = []
        for k in keys:
            v, d = scores.get(k), labels[k][1]
            out.append("–" if v is None else f"{v:.{d}f}" + (f" ± {sd[k]:.{d}f}" if k in sd else ""))
        return " | ".join(out)

    for name, rs in curves.items():
        lines += [f"| {name} | {r['checkpoint']} | {r['words_seen']:,} | {cells(r['scores'], r.get('sd', {}))} |"
                  for r in rs]
    lines += [f"| {name} | final | – | {cells(s, {})} |" for name, s in reference.items()]
    return "\n".join(lines) + "\n"


def plot_words(curves: dict, reference: dict, labels: dict, out_png) -> Path | None:
    """Score against words seen (log x): a panel per score key of ``labels`` present, a line per model of ``curves``
    (with a band of one sd where its rows carry ``sd``), a dashed horizontal line per ``reference`` model; None when
    there is nothing to draw."""
    keys = [k for k in labels if any(k in r["scores"] for rs in curves.values() for r in rs)]
    if not keys:
        return None
    plt = _pyplot()
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), layout="constrained", squeeze=False)
    for ax, k in zip(axes.flat, keys):
        for name, rs in curves.items():
            pts = [(r["words_seen"], r["scores"][k], r.get("sd", {}).get(k)) for r in rs if k in r["scores"]]
            if not pts:
                continue
            x, y, sd = zip(*pts)
            line, = ax.plot(x, y, marker="o", markersize=3, label=name)
            if all(s is not None for s in sd):
                ax.fill_between(x, [a - s for a, s in zip(y, sd)], [a + s for a, s in zip(y, sd)],
                                color=line.get_color(), alpha=0.2)
        for i, (name, s) in enumerate(reference.items()):
            if s.get(k) is not None:
                ax.axhline(s[k], color=f"{0.15 + 0.2 * (i % 3):.2f}", linestyle=("--", ":", "-.")[i % 3], linewidth=1.2,
                           label=f"{name} (final)")
        ax.set_xscale("log")
        ax.set_title(labels[k][0])
        ax.set_xlabel("words seen")
        ax.grid(color="0.9")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize="x-small")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out
