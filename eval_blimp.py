"""Score causal LMs on BLiMP-style minimal pairs and the BabyLM 2025 zero-shot suites (EWoK, entity tracking, wug);
write per-model results, a Table-1 style Markdown table (and one table per other suite) and a plot.

    python eval_blimp.py --blimp-dir data/blimp --model baby-llama=models/baby-llama-58m \\
        --model llama-360m=models/llama-360m --ensemble teachers=models/llama-360m,models/gpt2-705m --output-dir results
    python eval_blimp.py --blimp-dir data/blimp --blimp-dir data/ewok_filtered --blimp-dir data/entity_tracking \\
        --blimp-dir data/wug_adj_nominalization --model baby-llama=models/baby-llama-58m
    python eval_blimp.py --config config/eval.yaml eval.precision=bf16 eval.max_pairs_per_file=100 --log-pairs
    python eval_blimp.py --plot-only results/baby-llama.json results/teachers.pairs.jsonl --output-dir results
    python eval_blimp.py --blimp-dir data/blimp --blimp-dir data/ewok_filtered --checkpoints student=models/student \
        --checkpoints distilled=models/baby-llama-58m --model teacher=models/llama-360m --output-dir results/curves
    python eval_blimp.py --plot-only results/curves/curves.json --output-dir results/curves
    python eval_blimp.py --blimp-dir fast_eval/blimp_fast --blimp-dir fast_eval/ewok_fast --model m=models/llama-58M \\
        --convention babylm2025 --export-dir submission --export-revision chck_10M

Settings come from the YAML (``config/eval.yaml`` when it exists, or ``--config``), then dotted overrides, then the
flags. ``--model``/``--ensemble`` replace the YAML's models and ensembles; to add to them use overrides such as
``eval.models.NAME=PATH``. ``--ensemble-combine probs --ensemble-weights 0.7,0.3`` apply to every ``--ensemble``
(per ensemble in the YAML: ``ensembles: {teachers: {models: [A, B], combine: probs, weights: [0.7, 0.3]}}``), so the
ensemble column can be the distribution the distilled student learned from.

Before the first scored pair, every input is checked: result names map to distinct files, each pair has two
different non-empty texts, each model folder has a config and weights, each tokenizer loads, the models of an ensemble
share one vocab, and no item is longer than a model's positions. The scoring rule of each pair layout is in
babyllama/scoring.py; ``--log-pairs`` writes every pair's log-likelihoods, and ``--plot-only`` redraws the table and the plot
from result JSONs or those pair logs. An ensemble scored beside all its models (N seeds of one config: a
homogeneous ensemble) gets its gain over their mean and over the best of them printed and written to
``ensemble_gains.json`` (BLiMP phenomena average, points).

``--checkpoints NAME=RUN_DIR`` scores every ``chck_<N>`` milestone checkpoint of a training run's output folder on the
BabyLM 2025 organisers' fast subsample (babyllama/dynamics.py; ``--no-fast``: every item) and writes one row per
checkpoint, words seen then each suite's average, to ``curves.json`` and ``curves.md``, and ``curves.png``: score
against words seen (log x), a line per run, the ``--model``/``--ensemble`` results as horizontal lines. A checkpoint
already scored with the same settings and weights is read back, not scored again. ``--blimp-dir`` may be the
organisers' ``fast_eval`` folder: its subfolders' items are scored as they are.

``--convention babylm2025`` scores as the organisers' 2025 pipeline does (lm-eval's leading space and BOS are
this project's default); ``--export-dir`` then also writes each model's predictions where that pipeline writes its own
(``babyllama/export.py``), one ``<task>/<folder>/`` per ``--blimp-dir``, and checks them as its ``collate_preds.py``
does, listing what this repo does not compute.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer

from babyllama.config import UserError, add_config_args, describe, load_config, run_cli, save_config, to_dict
from babyllama.schema import EvalConfig
from babyllama.models import check_model_folder, check_same_vocab, load_scorer, max_positions
from babyllama.dynamics import (CURVE_SCORES, FAST_DATASETS, curve_row, curve_scores, expand_fast_eval,
                                fast_subsample, find_checkpoints, read_curves)
from babyllama.export import check_lines, export_pairs, task_of
from babyllama.files import model_fingerprint, result_file, write_atomic
from babyllama.locks import locked
from babyllama.report import (curve_table, ensemble_gains, gain_lines, load_results, plot_words, read_json,
                              write_blimp_summary)
from babyllama.scoring import (check_encoded, encode_pairs, load_pairs, mixed_suites, pair_files, pair_records,
                               read_pair_log, score_encoded, suites_of, summarize, truncate_encoded)

DEFAULT_CONFIG = "config/eval.yaml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:3]))
    add_config_args(parser, DEFAULT_CONFIG)
    parser.set_defaults(config=None)  # None: use config/eval.yaml only if it exists (flags may give everything)
    parser.add_argument("--blimp-dir", action="append", metavar="DIR", help="folder of JSON-lines pair files "
                        "(eval.blimp_dir; repeatable: BLiMP, EWoK, entity tracking and wug folders in one run, each "
                        "suite in its own table)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="a model folder to score "
                        "(repeatable; replaces the config's models and ensembles)")
    parser.add_argument("--ensemble", action="append", default=[], metavar="NAME=PATH1,PATH2",
                        help="folders scored as one model (repeatable)")
    parser.add_argument("--checkpoints", action="append", default=[], metavar="NAME=RUN_DIR",
                        help="a training run's output folder: score each of its chck_<N> checkpoints (repeatable; "
                             "eval.checkpoints); writes curves.json, curves.md and curves.png")
    parser.add_argument("--fast", action=argparse.BooleanOptionalAction, default=None,
                        help="the organisers' fast subsample (eval.fast; default: on with --checkpoints)")
    parser.add_argument("--ensemble-combine", choices=["logits", "probs"], help="how every --ensemble combines its "
                        "models: mean of logits (default, the paper's teacher) or of probabilities")
    parser.add_argument("--ensemble-weights", metavar="W1,W2", help="per-model weights of every --ensemble")
    parser.add_argument("--output-dir", help="where results, table.md and blimp.png go (eval.output_dir)")
    parser.add_argument("--prefix", choices=["bos", "eos"], help="conditioning token (eval.prefix)")
    parser.add_argument("--convention", choices=["lm-eval", "babylm2025"], help="how texts become tokens "
                        "(eval.convention): lm-eval (default) or babylm2025, the organisers' 2025 pipeline")
    parser.add_argument("--batch-size", type=int, help="pairs per forward pass (eval.batch_size)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], help="model dtype while scoring (eval.precision)")
    parser.add_argument("--max-pairs-per-file", type=int, help="score only the first N pairs per file")
    parser.add_argument("--log-pairs", action="store_true", default=None, help="also write <name>.pairs.jsonl per "
                        "model (eval.log_pairs)")
    parser.add_argument("--export-dir", help="also write predictions in the organisers' 2025 layout here "
                        "(eval.export_dir; needs --convention babylm2025)")
    parser.add_argument("--export-revision", help="the export's revision folder: main, or chck_<N>M for a checkpoint "
                        "(eval.export_revision)")
    parser.add_argument("--plot-only", nargs="+", metavar="RESULT", help="redraw table.md and blimp.png in the output "
                        "folder from result JSONs or --log-pairs files, or curves.md and curves.png from curves.json "
                        "files (a line per run); scores nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


# ----------------------------------------------------------------------------------------------------------------------
# settings: the YAML, its overrides, and the flags as more overrides


def _parse_model_flag(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep:  # a bare folder: name it after the folder
        return Path(text).name or text, text
    if not name or not path:
        raise UserError(f"--model {text!r}: expected NAME=PATH")
    return name, path


def _parse_ensemble_flag(text: str, combine, weights) -> tuple[str, dict]:
    name, sep, paths = text.partition("=")
    folders = [p for p in paths.split(",") if p]
    if not sep or not name or not folders:
        raise UserError(f"--ensemble {text!r}: expected NAME=PATH1,PATH2")
    return name, {"models": folders, "combine": combine or "logits", "weights": weights}


def flag_overrides(args) -> list[str]:
    """The flags as dotted overrides (values written as JSON, so paths with ``:``, ``,`` or ``#`` stay strings)."""
    if (args.ensemble_combine or args.ensemble_weights) and not args.ensemble:
        raise UserError("--ensemble-combine/--ensemble-weights apply to --ensemble flags; give one, or set "
                        "eval.ensembles.NAME.combine/weights in the YAML")
    weights = None
    if args.ensemble_weights:
        try:
            weights = [float(w) for w in args.ensemble_weights.split(",")]
        except ValueError:
            raise UserError(f"--ensemble-weights {args.ensemble_weights!r}: expected numbers, e.g. 0.7,0.3")
    out = {}
    if args.model or args.ensemble or args.checkpoints:
        models = [_parse_model_flag(m) for m in args.model]
        for i, (name, path) in enumerate(models):
            other = next((p for n, p in models[:i] if n == name), None)
            if other is not None:
                raise UserError(f"--model {other} and --model {path} are both named {name!r}: one result would "
                                "overwrite the other; name them with --model NAME=PATH")
        out["models"] = dict(models)
        ensembles = [_parse_ensemble_flag(e, args.ensemble_combine, weights) for e in args.ensemble]
        names = [n for n, _ in models] + [n for n, _ in ensembles]
        dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if dup:
            raise UserError(f"the name {dup!r} is given twice in --model/--ensemble; one result would overwrite the "
                            "other; rename one")
        out["ensembles"] = dict(ensembles)
        runs = [_parse_model_flag(c) for c in args.checkpoints]
        dup = next((n for i, (n, _) in enumerate(runs) if n in names or n in [m for m, _ in runs[:i]]), None)
        if dup:
            raise UserError(f"the name {dup!r} is given twice in --model/--ensemble/--checkpoints; name each run "
                            "with --checkpoints NAME=RUN_DIR")
        out["checkpoints"] = dict(runs)
    for key in ("blimp_dir", "output_dir", "prefix", "convention", "batch_size", "precision", "max_pairs_per_file",
                "log_pairs", "export_dir", "export_revision", "fast"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    if args.blimp_dir and len(args.blimp_dir) == 1:
        out["blimp_dir"] = args.blimp_dir[0]
    return [f"eval.{k}={json.dumps(v)}" for k, v in out.items()]


def resolve(args) -> EvalConfig:
    path = args.config or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None)
    return load_config(EvalConfig, path, list(args.overrides) + flag_overrides(args), data={})


# ----------------------------------------------------------------------------------------------------------------------
# preflight: everything a user can get wrong, before the first forward pass


def load_model_tokenizer(path):
    """The tokenizer saved with a model folder (any HF tokenizer; the fast one for batch encoding)."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(f"{folder}: model folder not found")
    check_model_folder(folder)  # config.json and intact weights
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as e:  # noqa: BLE001 - a corrupt tokenizer.json raises a bare Exception from the Rust library
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise UserError(f"{folder}: cannot load its tokenizer ({first}); save the tokenizer with the model again")


def scorer_names(e, checkpoints=None) -> dict:
    """{name: (folders, combine, weights)} of the models, ensembles and ``checkpoints`` ({name: folder}); refuses a name
    used twice and names that write the same result file."""
    scorers = {n: ([p], "logits", None) for n, p in {**e.models, **(checkpoints or {})}.items()}
    for n in e.ensembles:
        if n in scorers:
            raise UserError(f"name {n!r} is used by a model and an ensemble; rename one")
        spec = e.ensemble(n)
        scorers[n] = (spec.models, spec.combine, spec.weights)
    files: dict[str, str] = {}
    for n in scorers:
        f = result_file(n).lower()  # lower: two names differing in case collide on case-insensitive disks
        if f in files:
            raise UserError(f"models {files[f]!r} and {n!r} would both write {result_file(n)}.json in "
                            f"{e.output_dir}; rename one")
        files[f] = n
    return scorers


def preflight(e, scorers, pairs) -> dict:
    """Load every tokenizer, check folders, vocab agreement and lengths; return {name: encoded pairs}."""
    encoded, cache = {}, {}
    for name, (paths, _, _) in scorers.items():
        toks = [load_model_tokenizer(p) for p in paths]
        for p, t in zip(paths[1:], toks[1:]):
            check_same_vocab(str(paths[0]), toks[0], str(p), t)
        tok = toks[0]
        # the whole tokenizer definition (vocab, merges, normaliser) decides the ids
        spec = tok.backend_tokenizer.to_str() if tok.is_fast else str(Path(paths[0]).resolve())
        key = (spec, e.prefix, e.convention)
        if key not in cache:  # models sharing a tokenizer share the token ids
            cache[key] = encode_pairs(tok, pairs, e.prefix, e.convention)
        limits = [x for x in (max_positions(AutoConfig.from_pretrained(str(p))) for p in paths) if x]
        limit = min(limits) if limits else None
        enc = cache[key]
        if limit and e.long_items == "truncate":
            if (key, limit) not in cache:
                cache[key, limit] = truncate_encoded(enc, limit)
            enc, cut = cache[key, limit]
            if cut:
                print(f"warning: {cut} item(s) longer than {name!r}'s {limit} positions lose their context's first "
                      "tokens (eval.long_items: truncate)", file=sys.stderr)
        ties = check_encoded(pairs, enc, limit, f"model {name!r}", e.identical_pairs)
        if ties:
            print(f"warning: {len(ties)} pair(s) have identical sentences for {name!r} (first: {ties[0].file} line "
                  f"{ties[0].line}); counted correct, as lm-eval does (eval.identical_pairs: tie)", file=sys.stderr)
        encoded[name] = enc
    return encoded


# ----------------------------------------------------------------------------------------------------------------------
# the command


def read_result(path: Path) -> dict:
    """A result JSON, or a --log-pairs file summarised again."""
    if path.name.endswith(".jsonl"):
        if not path.is_file():
            raise UserError(f"{path}: pair log not found")
        name, pairs, scores, convention = read_pair_log(path)
        return {"model": name, **summarize(pairs, scores, convention), "settings": {"convention": convention}}
    return read_json(path, ("phenomena", "supplement", "averages"))


def main(argv=None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    if args.help_config:
        print(describe(EvalConfig))
        return 0
    if args.plot_only:
        out_dir = Path(args.output_dir or "results")
        curves = [p for p in args.plot_only if is_curves(p)]
        if curves:
            if len(curves) < len(args.plot_only):
                raise UserError(f"--plot-only: {curves[0]} is a curves file but {set(args.plot_only) - set(curves)} "
                                "are not; draw curves and result tables in separate calls")
            print(plot_curves_files(curves, out_dir))
            return 0
        table = write_blimp_summary(load_results(args.plot_only, read_result), out_dir)
        print(table + f"\nwrote {out_dir / 'table.md'} and {out_dir / 'blimp.png'}")
        return 0

    run(resolve(args), progress=not args.no_progress)
    return 0


def load_all_pairs(e) -> tuple[list, dict]:
    """The items of every folder of ``eval.blimp_dir`` (the organisers' fast_eval folder: its subfolders) and {file
    name: (layout, roles)}, the fast subsample when ``eval.fast`` says so; a folder mixing suites is scored as it is and
    said so, each suite reported apart; a file name in two folders is refused."""
    pairs, layouts, where = [], {}, {}
    dirs, organisers = expand_fast_eval(e.dirs())
    for folder in dirs:
        found: dict = {}
        got = load_pairs(folder, e.max_pairs_per_file, e.fields, found, e.identical_pairs)
        for name in found:
            if Path(name).stem in where:
                raise UserError(f"{Path(folder) / name} and {where[Path(name).stem]}: two files named "
                                f"{Path(name).stem!r} would share one result row; score the folders in separate runs")
            where[Path(name).stem] = Path(folder) / name
        note = mixed_suites(folder, got)
        if note:
            print(note, file=sys.stderr)
        pairs += got
        layouts.update(found)
    if subsampled(e, organisers):
        pairs = fast_subsample(pairs)
        layouts = {f: v for f, v in layouts.items() if any(p.file == Path(f).stem for p in pairs)}
        print(f"fast evaluation: {len(pairs)} items (the organisers' fast sizes, evenly spaced in each file)",
              file=sys.stderr)
    return pairs, layouts


def subsampled(e, organisers: bool) -> bool:
    """Whether the items are this repo's fast subsample (eval.fast, by default with checkpoints), not the organisers'
    fast_eval folder's."""
    return (e.fast if e.fast is not None else bool(e.checkpoints)) and not organisers


def export_groups(e, pairs) -> dict[str, list[int]]:
    """{scored folder's name: indices of its items} for eval.export_dir (none without it); each folder must hold one
    suite, and two folders must not share a name (each is its own <task>/<folder>/ of the export). The fast subsample
    is named as the organisers name their fast folders (blimp_fast, ewok_fast, ...)."""
    if not e.export_dir:
        return {}
    groups = {}
    dirs, organisers = expand_fast_eval(e.dirs())
    for folder in dirs:
        stems = {f.stem for f in pair_files(folder)}
        suite = next((p.suite for p in pairs if p.file in stems), None)
        name = FAST_DATASETS.get(suite, "") if subsampled(e, organisers) else Path(folder).resolve().name
        if name in groups:
            raise UserError(f"--export-dir: two scored folders are named {name!r}; the export writes one "
                            "<task>/<folder>/ each: rename one")
        groups[name] = [i for i, p in enumerate(pairs) if p.file in stems]
        task_of([pairs[i] for i in groups[name]], name)
    return groups


@locked(lambda cfg: cfg.eval.output_dir, "eval.output_dir")  # one run at a time per output folder
def run(cfg: EvalConfig, progress: bool = True) -> dict:
    """Check every input, score every model and ensemble of ``cfg``, write results, table.md and blimp.png; returns
    {name: results}."""
    e = cfg.eval
    runs = {n: find_checkpoints(d) for n, d in e.checkpoints.items()}  # every run folder checked before any scoring
    ckpt = {f"{n}/{c.label}": (n, c) for n, cks in runs.items() for c in cks}
    scorers = scorer_names(e, {k: c.folder for k, (_, c) in ckpt.items()})
    pairs, layouts = load_all_pairs(e)
    groups = export_groups(e, pairs)
    encoded = preflight(e, scorers, pairs)
    for layout in sorted({lay for lay, _ in layouts.values()}):
        files = [f for f, (lay, _) in layouts.items() if lay == layout]
        roles = layouts[files[0]][1]
        print(f"layout {layout} ({', '.join(f'{r}={k}' for r, k in roles.items())}): {len(files)} file(s)",
              file=sys.stderr)
    suites = suites_of(pairs)
    print(f"{len(pairs)} items from {len(layouts)} files in {', '.join(e.dirs())} (suites: "
          f"{', '.join(f'{s} {len(f)}' for s, f in suites.items())}); models: {', '.join(scorers)}", file=sys.stderr)

    out = Path(e.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out, "eval_config.yaml")
    dtype = torch.bfloat16 if e.precision == "bf16" else torch.float32
    results = {}
    settings = {k: v for k, v in to_dict(cfg)["eval"].items()
                if k not in ("models", "ensembles", "fields", "checkpoints")}
    for name, (paths, combine, weights) in scorers.items():
        path = out / result_file(ckpt[name][0]) / f"{ckpt[name][1].label}.json" if name in ckpt else \
            out / f"{result_file(name)}.json"
        # which weights the result is of: a model's fingerprint, an ensemble's members' (a later look at a result JSON
        # can tell whether the folder was retrained since); a checkpoint scored before with these weights is skipped
        weights_fp = model_fingerprint(paths[0]) if len(paths) == 1 else [model_fingerprint(p) for p in paths]
        old = read_json(path) if name in ckpt and path.is_file() else {}
        if old.get("weights") == weights_fp and {**old.get("settings", {}), "seconds": 0} == {**settings, "seconds": 0}:
            print(f"{name}: scored already with these settings and weights ({path})", file=sys.stderr)
            results[name] = old
            continue
        model = load_scorer(paths, dtype, combine, weights)
        t0 = time.perf_counter()
        scores = score_encoded(model, encoded[name], e.batch_size, progress=progress, desc=name)
        seconds = time.perf_counter() - t0
        del model
        res = {"model": name, "paths": [str(p) for p in paths], **summarize(pairs, scores, e.convention),
               "settings": {**settings, "seconds": round(seconds, 1)}}
        if len(paths) > 1:
            res["settings"].update(combine=combine, weights=weights)
        res["weights"] = weights_fp
        write_atomic(path, json.dumps(res, indent=1))
        if e.log_pairs:
            log = path.with_name(path.name[:-len(".json")] + ".pairs.jsonl")
            records = pair_records(name, pairs, encoded[name], scores, e.convention)
            log.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        # a checkpoint goes to its run's folder, revision chck_<N>, as the organisers' fast evaluation lays it out
        folder, revision = (result_file(ckpt[name][0]), ckpt[name][1].label) if name in ckpt else \
            (result_file(name), e.export_revision)
        for dataset, idx in groups.items():
            export_pairs(e.export_dir, folder, revision, dataset, [pairs[i] for i in idx], [scores[i] for i in idx])
        if groups:
            print(check_lines(e.export_dir, folder, revision), file=sys.stderr)
        print(f"{name}: {averages_line(res)} ({res['counts']['pairs']} items, {seconds:.0f} s) -> {path}",
              file=sys.stderr)
        results[name] = res
    if runs:
        curves = {n: [curve_row(c, curve_scores(results[f"{n}/{c.label}"])) for c in cks] for n, cks in runs.items()}
        reference = {n: curve_scores(r) for n, r in results.items() if n not in ckpt}
        print(write_curves(out, curves, reference, {"run_dirs": e.checkpoints, **settings}))
        if not reference:  # the models' table and plot are of the models, not of every checkpoint
            return results
    models = {n: r for n, r in results.items() if n not in ckpt}
    table = write_blimp_summary(models, out)
    avg = {n: next((r["averages"][k] for k in ("phenomena", "files") if r["averages"].get(k) is not None), None)
           for n, r in models.items()}
    gains = ensemble_gains({n: s[0] for n, s in scorers.items()},
                           {n: None if v is None else 100 * v for n, v in avg.items()}, True)
    if gains:  # an ensemble scored beside all its members (N seeds of one config): its gain over them
        write_atomic(out / "ensemble_gains.json", json.dumps(gains, indent=1))
    print(table + gain_lines(gains, "BLiMP avg", 1))
    print(f"wrote {out / 'table.md'}" + (" and blimp.png" if (out / "blimp.png").is_file() else ""), file=sys.stderr)
    return results


def write_curves(out: Path, curves: dict, reference: dict, settings: dict) -> str:
    """curves.json, curves.md and curves.png in ``out``; returns the table."""
    write_atomic(out / "curves.json", json.dumps({"settings": settings, "curves": curves, "reference": reference},
                                                  indent=1))
    return draw_curves(out, curves, reference)


def draw_curves(out: Path, curves: dict, reference: dict) -> str:
    """curves.md and curves.png in ``out``; returns the table and what was written."""
    table = curve_table(curves, reference, CURVE_SCORES)
    write_atomic(out / "curves.md", table)
    png = plot_words(curves, reference, CURVE_SCORES, out / "curves.png")
    return table + f"\nwrote {out / 'curves.md'}" + (f" and {png}" if png else "")


def is_curves(path) -> bool:
    """A curves.json (not a result JSON nor a pair log)."""
    if not str(path).endswith(".json") or not Path(path).is_file():
        return False
    try:
        return "curves" in json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError:
        return False


def plot_curves_files(paths, out_dir) -> str:
    """Redraw curves.md and curves.png from curves files: their runs (a name given twice gets its folder appended)
    and reference models together."""
    curves, reference = {}, {}
    for p in paths:
        c = read_curves(p)
        for name, rows in c["curves"].items():  # the same run's other scores (reading beside the suites) join its rows
            old = {r["checkpoint"]: r for r in curves.get(name, [])}
            if name in curves and [r["checkpoint"] for r in rows] == list(old) and \
                    not any(set(r["scores"]) & set(old[r["checkpoint"]]["scores"]) for r in rows):
                for r in rows:
                    old[r["checkpoint"]]["scores"].update(r["scores"])
            else:  # another run of that name
                curves[name if name not in curves else f"{name} ({Path(p).parent.name})"] = rows
        for name, s in c.get("reference", {}).items():
            if name in reference and not set(s) & set(reference[name]):
                reference[name].update(s)
            else:
                reference[name if name not in reference else f"{name} ({Path(p).parent.name})"] = s
    return draw_curves(Path(out_dir), curves, reference)


def averages_line(res: dict) -> str:
    """Each suite's average in words: BLiMP's phenomena and files, then EWoK, entity tracking (accuracy %), wug (rho)."""
    avg, parts = res["averages"], []
    for key, label in (("phenomena", "phenomena avg"), ("files", "files avg")):
        if avg.get(key) is not None:
            parts.append(f"{label} {100 * avg[key]:.1f}")
    for suite, r in res.get("suites", {}).items():
        v = r["avg"]
        parts.append(f"{suite} " + ("–" if v is None else f"{v:.3f}" if suite == "wug" else f"{100 * v:.1f}"))
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(run_cli(main))
