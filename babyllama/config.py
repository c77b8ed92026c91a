"""Loading configs: YAML into the typed dataclasses of schema.py, dotted command-line overrides, and the one-line
user-error convention.

Each stage script declares a root dataclass (schema.py) whose fields are sections (``data``, ``model``, ``training``,
...), each section itself a dataclass. ``load_config`` reads the YAML, applies ``section.key=value`` overrides, refuses
unknown keys, wrong types and out-of-range values with a message that names the file, the key and what is allowed, and
returns the typed config. ``save_config`` writes the resolved config next to a stage's outputs. ``field`` and
``check_range`` are the helpers schema.py declares and checks its fields with.

YAML 1.1 reads ``3e-4`` as a string; float fields accept such strings, so configs can use the usual notation.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from babyllama.files import write_atomic


class UserError(Exception):
    """Bad input from the user: printed as one line, no traceback, exit status 2."""


class ConfigError(UserError):
    """A config value is wrong. ``key`` is the dotted key; the loader prefixes the file name."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key}: {message}")


DISK_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
               errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"}


def run_cli(main, argv=None) -> int:
    """Run a stage's ``main(argv)`` as a command: a UserError, or a disk that refuses a write, becomes one line on
    stderr and exit status 2; Ctrl-C outside training exits 130."""
    try:
        rc = main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # trainer_setup.Interrupted says where the checkpoint is
        print("interrupted" + (f": {e}; run the same command again to continue" if str(e) else ""), file=sys.stderr)
        return 130
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            raise
        print(f"error: {e.filename or 'a file'}: {DISK_ERRNOS[e.errno]}; free space or fix the folder, then run the "
              "same command again (training stages: with --resume)", file=sys.stderr)
        return 2
    except RuntimeError as e:  # torch.save on a full or read-only disk: "unexpected pos" / "file write failed"
        text = str(e)
        if not any(s in text for s in ("unexpected pos", "PytorchStreamWriter failed", "file write failed")):
            raise
        print(f"error: a checkpoint file could not be written (is the disk full or read-only? torch said: "
              f"{text.splitlines()[0][:120]}); free space, then run the same command again with --resume",
              file=sys.stderr)
        return 2
    return int(rc or 0)


def field(default=dataclasses.MISSING, help: str = "", **kw):
    """A dataclass field with help text (shown by ``--help-config``)."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={"help": help}, **kw)
    return dataclasses.field(default=default, metadata={"help": help}, **kw)


# ----------------------------------------------------------------------------------------------------------------------
# value checks used by __post_init__ methods


def check_range(section: str, name: str, value, lo=None, hi=None, lo_open=False, hi_open=False):
    if value is None:
        return
    bad = (lo is not None and (value <= lo if lo_open else value < lo)) or (
        hi is not None and (value >= hi if hi_open else value > hi))
    if bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        allowed = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
        raise ConfigError(f"{section}.{name}", f"{value!r} is out of range; allowed {allowed}")


# ----------------------------------------------------------------------------------------------------------------------
# building dataclasses from plain YAML values, with type checks


def _type_name(tp) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def convert(value, tp, key: str):
    """Return ``value`` as type ``tp`` or raise ConfigError naming ``key``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = None  # an alternative the value has the shape of, with a part of it wrong: its error says which
        for a in args:
            if a is type(None):
                continue
            try:
                return convert(value, a, key)
            except ConfigError as e:
                inner = inner or (e if e.key != key else None)
        raise inner or ConfigError(key, f"got {value!r}; expected {_type_name(tp)}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(key, f"got {value!r}; allowed: {_type_name(tp)}")
    if origin is list:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"got {value!r}; expected {_type_name(tp)}")
        (inner,) = get_args(tp)
        return [convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"got {value!r}; expected a mapping")
        kt, vt = get_args(tp) or (Any, Any)
        return {convert(k, kt, key): convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"got {value!r}; expected true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(key, f"got {value!r}; expected an integer")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(key, f"got {value!r}; expected a number")
        if not math.isfinite(number):  # nan and inf pass every range check (nan compares false): refuse them here
            raise ConfigError(key, f"got {value!r}; expected a finite number")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(key, f"got {value!r}; expected a string")
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def build(cls, data, prefix: str = ""):
    """Build dataclass ``cls`` from a mapping, refusing unknown keys, missing required keys and wrong types."""
    where = prefix or "top level"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(where, f"expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    passthrough = getattr(cls, "passthrough_key", None)  # a section that forwards other keys (checked) to a library
    if unknown and passthrough:
        data = dict(data)
        extra = dict(data.get(passthrough) or {})
        for name in unknown:
            extra[name] = cls.check_passthrough(name, data.pop(name), f"{prefix}.{name}" if prefix else name)
        data[passthrough] = extra
    elif unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else str(unknown[0])
        raise ConfigError(key, f"unknown key; allowed keys{' in ' + prefix if prefix else ''}: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = convert(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if dataclasses.is_dataclass(hints[name]):
                kwargs[name] = build(hints[name], {}, key)
            else:
                raise ConfigError(key, f"required key is missing ({_type_name(hints[name])})")
    return cls(**kwargs)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


# ----------------------------------------------------------------------------------------------------------------------
# files and overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise UserError(f"override {text!r}: expected section.key=value, e.g. training.lr=1e-4")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise UserError(f"override {text!r}: expected section.key=value, e.g. training.lr=1e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise UserError(f"override {text!r}: value is not valid YAML ({e.problem})")
    return parts, value


def apply_overrides(data: dict, overrides) -> dict:
    for text in overrides or []:
        parts, value = parse_override(text)
        node = data
        for p in parts[:-1]:
            child = node.get(p)
            if child is None:
                child = node[p] = {}
            if not isinstance(child, dict):
                raise UserError(f"override {text!r}: {p} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def read_yaml(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} not valid YAML ({getattr(e, 'problem', e)})")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of sections at the top level")
    return data


def load_config(cls, path=None, overrides=None, data: dict | None = None):
    """Load YAML ``path`` (or a plain ``data`` dict) with dotted ``overrides`` into root dataclass ``cls``."""
    source = str(path) if path is not None else "<config>"
    raw = read_yaml(path) if path is not None else dict(data or {})
    raw = apply_overrides(raw, overrides)
    try:
        return build(cls, raw)
    except ConfigError as e:
        raise UserError(f"{source}: {e}") from None


def save_config(cfg, out_dir, name: str = "config.yaml") -> Path:
    return write_atomic(Path(out_dir) / name, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def describe(cls, prefix: str = "") -> str:
    """Every key of a schema with its type, default and help text: what ``--help-config`` prints."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            lines.append(f"{key}:")
            lines.append(describe(tp, key))
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "required"
        lines.append(f"  {key} ({_type_name(tp)}, default {default}): {f.metadata.get('help', '')}")
    return "\n".join(lines)


def add_config_args(parser, default_config: str | None = None):
    """The arguments every stage script takes: --config PATH, dotted overrides, --help-config."""
    parser.add_argument("--config", default=default_config, required=default_config is None,
                        help="YAML config file" + (f" (default {default_config})" if default_config else ""))
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="override config values, e.g. training.lr=1e-4 data.seq_length=256")
    parser.add_argument("--help-config", action="store_true", help="list every config key with its help and exit")
    return parser


def stage_main(argv, schema, run_fn, default_config: str, description: str) -> int:
    """The command line of a stage with one config: --config (default ``default_config``), dotted overrides and
    --help-config; runs ``run_fn(cfg)``."""
    import argparse

    args = add_config_args(argparse.ArgumentParser(description=description), default_config).parse_intermixed_args(argv)
    if args.help_config:
        print(describe(schema))
        return 0
    run_fn(load_config(schema, args.config, args.overrides))
    return 0
