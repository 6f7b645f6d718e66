"""``python -m torch_ref check MODULE:FUNCTION [--kind KIND]``: the oracle from the command line;
``python -m torch_ref kinds`` lists every kind of check.

Exit status: 0 when the check passes, 1 when the derivation disagrees (the report is printed), 2 on a
usage error (module or function not found, a bad option), 3 when the tool itself fails (a bug to
report, never a verdict on the derivation). ``--json PATH``, ``--markdown PATH`` and ``--html PATH``
write the outcome for tools and for sharing (the HTML one standalone page, :mod:`torch_ref.pages`); a usage error is written to ``--json`` too (``passed``
false, ``verdict`` "usage error", the ``error``), so that a tool reading it never reads a stale
file as this run's. A misspelt module, function or file name gets the closest one
("did you mean 'right'?").
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import json
import pkgutil
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ..engine.naming import FILE_MODULES
from ..kinds import names as kind_names

__all__ = ["main"]

# each kind's own options: the flag's option name, and how its text is read
_OWN = (
    "lr", "steps", "optimizer", "world_size", "shards", "timeout_s",
    "forward", "reference", "inputs", "names", "convention", "shapes", "dims", "constants", "nondiff", "dout_seed",
    "networks",
)  # fmt: skip


class UsageError(Exception):
    """A bad command line: exit status 2."""


class _ParseError(UsageError):
    """argparse's own usage error, with the usage it prints above it."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors are raised instead of exiting, so that ``--json`` gets them too."""

    def error(self, message: str) -> NoReturn:
        raise _ParseError(message, f"{self.format_usage()}{self.prog}: error: {message}")


def _closest(word: str, known: Sequence[str], show: Callable[[str], str] = str) -> str:
    """``" (did you mean 'right'?)"`` with the closest of ``known`` (difflib), shown by ``show``."""
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {show(close[0])!r}?)" if close else ""


def _module_hint(module_name: str) -> str:
    """A did-you-mean for a module that is not there: among the current folder's modules for a
    top-level name, among the package's for a dotted one."""
    parent, _, leaf = module_name.rpartition(".")
    try:
        where = [str(Path.cwd())] if not parent else list(importlib.import_module(parent).__path__)
    except Exception:  # the parent itself is missing or fails: nothing to offer
        return ""
    return _closest(leaf, [m.name for m in pkgutil.iter_modules(where)], lambda m: f"{parent}.{m}" if parent else m)


def _file_hint(path: Path) -> str:
    """A did-you-mean for a .py file that is not there, among its folder's."""
    if not path.parent.is_dir():
        return ""
    return _closest(path.name, [p.name for p in path.parent.glob("*.py")], lambda name: str(path.parent / name))


def load(target: str, what: str) -> Any:
    """``MODULE:NAME`` (a dotted module importable from the current directory, or a path to a .py
    file) to the object it names."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(
            f"{what} must be MODULE:NAME (e.g. my_backprop:grad_fn or path/to/file.py:grad_fn), got {target!r}"
        )
    try:
        if module_name.endswith(".py") or "/" in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise UsageError(f"{what}: no file {module_name!r}{_file_hint(path)}")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
            folder = path.parent.resolve()
            if folder != Path.cwd().resolve():  # the Reproduce lines put it on sys.path first
                FILE_MODULES[path.stem] = str(path.parent)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_name)
    except UsageError:
        raise
    except SystemExit as exc:  # a script's unguarded sys.exit(...) runs on import
        raise UsageError(
            f"{what}: importing {module_name!r} ran sys.exit({exc.code!r}); put the script's own run under "
            f'if __name__ == "__main__": so that importing it only defines its functions'
        ) from None
    except ImportError as exc:
        missing = isinstance(exc, ModuleNotFoundError) and exc.name is not None and module_name.startswith(exc.name)
        hint = _module_hint(exc.name) if missing and exc.name else ""
        raise UsageError(f"{what}: cannot import module {module_name!r}: {exc}{hint}") from None
    except Exception as exc:  # the module itself fails to run
        raise UsageError(f"{what}: importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in dir(module) if not n.startswith("_"))
            hint = _closest(part, [n for n in dir(obj) if not n.startswith("_")])
            raise UsageError(f"{what}: module {module_name!r} has no {attr!r}{hint}; it defines {public}")
        obj = getattr(obj, part)
    return obj


def _range(text: str) -> int | tuple[int, int]:
    lo, sep, hi = text.partition(":")
    try:
        return (int(lo), int(hi)) if sep else int(lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or LO:HI, got {text!r}") from None


def _entries(text: str) -> tuple[Any, ...]:
    try:
        return tuple(load(item, "an entry") if ":" in item else item for item in text.split(",") if item)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m torch_ref",
        description="Check a hand derivation against autograd on random networks.",
        epilog="Exit status: 0 passed, 1 a mismatch (the report is printed), 2 a usage error, 3 an internal error.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "kinds",
        help="list every kind of check",
        description="List every kind of check: what FUNCTION computes, its reference and its tolerance.",
    )
    check = sub.add_parser("check", help="check MODULE:FUNCTION", description="Check MODULE:FUNCTION against autograd.")
    check.add_argument("target", help="MODULE:FUNCTION (a dotted module or path/to/file.py)")
    check.add_argument(
        "--kind", choices=kind_names(), default="gradients", help="what FUNCTION computes (default gradients)"
    )
    narrow = check.add_argument_group("what is drawn (comma-separated lists; MODULE:NAME for your own entries)")
    narrow.add_argument("--activations", type=_entries, help="what every layer draws from")
    narrow.add_argument("--hidden-activations", type=_entries, help="narrow the hidden layers")
    narrow.add_argument("--output-activations", type=_entries, help="narrow the output layer")
    narrow.add_argument("--losses", type=_entries)
    narrow.add_argument("--depths", type=_range, help="N or LO:HI (default 1:4)")
    narrow.add_argument("--widths", type=_range, help="N or LO:HI (default 1:6)")
    narrow.add_argument("--output-width", type=_range, help="N or LO:HI (default: from --widths)")
    narrow.add_argument("--batch", type=_range, help="N or LO:HI (default 1:5)")
    narrow.add_argument("--bias", choices=("yes", "no", "both"), default="both")
    narrow.add_argument("--reductions", type=lambda t: tuple(t.split(",")), help="sum,mean (default both)")
    narrow.add_argument("--targets", choices=("soft", "onehot"), default="soft")
    narrow.add_argument("--where", help="MODULE:PREDICATE, a where(case) -> bool of your own")
    train = check.add_argument_group("update and training")
    train.add_argument("--lr", type=_floats, help="learning rate(s), comma-separated")
    train.add_argument("--steps", type=int, help="training steps per case (default 3)")
    train.add_argument("--optimizer", help="MODULE:FACTORY, an optimizer(params, lr) (default torch.optim:SGD)")
    ranks = check.add_argument_group("data-parallel")
    ranks.add_argument("--world-size", type=int, help="rank processes (default 2)")
    ranks.add_argument("--shards", choices=("uneven", "even"), help="how a batch is split (default uneven)")
    ranks.add_argument("--timeout-s", type=float, help="seconds a rank may take (default 60)")
    layer = check.add_argument_group("layer and function (--kind layer, --kind function)")
    layer.add_argument("--forward", help="a built-in layer's name (layer_norm), or MODULE:FORWARD of your own")
    layer.add_argument("--reference", help="a built-in layer's name, or MODULE:FUNCTION, a torch reference")
    layer.add_argument("--inputs", help="MODULE:DRAW, a draw(rng) -> (x, params) of your own")
    layer.add_argument("--names", type=_names, help="your names onto the built-in's: gamma=weight,beta=bias")
    layer.add_argument("--convention", choices=("grads", "cache"), help="grads (default) or CS231n's cache")
    layer.add_argument("--shapes", type=_json("--shapes"), help='JSON: {"x": "N D", "w": "D K"}')
    layer.add_argument("--dims", type=_json("--dims"), help='JSON: {"N": [1, 8], "D": [1, 6], "K": 3}')
    layer.add_argument("--constants", type=_json("--constants"), help='JSON: {"eps": 1e-5}')
    layer.add_argument("--dout-seed", type=int, help="the seed of every case's δ_out (a reported case's)")
    layer.add_argument("--nondiff", type=lambda t: tuple(t.split(",")), help="arrays not differentiated: mask,idx")
    nets = check.add_argument_group("networks of layers (--kind network, network-training, network-per-example, ...)")
    nets.add_argument(
        "--networks", help="families mlp,cnn,transformer (default all), or MODULE:NAME, a Network or NetworkCase"
    )
    run = check.add_argument_group("the run")
    run.add_argument("--max-examples", type=int, default=100)
    run.add_argument("--seed", type=int)
    run.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    run.add_argument("--device", default="cpu")
    run.add_argument("--strict", action="store_true", help="fail on precision cases too")
    out = check.add_argument_group("output")
    out.add_argument("--json", type=Path, metavar="PATH", help="write the outcome as JSON")
    out.add_argument("--markdown", type=Path, metavar="PATH", help="write the outcome as Markdown")
    out.add_argument(
        "--html", type=Path, metavar="PATH", help="write the outcome as one standalone HTML page (torch_ref.pages)"
    )
    return parser


def _writable(path: Path | None, flag: str) -> None:
    """A usage error before the run when ``path`` cannot be written (no such folder, a folder)."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; give a file path")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: no folder {str(path.parent)!r}")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    _writable(args.json, "--json")
    _writable(args.markdown, "--markdown")
    _writable(args.html, "--html")
    options: dict[str, Any] = {
        "max_examples": args.max_examples,
        "seed": args.seed,
        "dtype": args.dtype,
        "device": args.device,
        "targets": args.targets,
        "strict": args.strict,
        "bias": {"yes": True, "no": False, "both": None}[args.bias],
    }
    for name in (
        "activations",
        "hidden_activations",
        "output_activations",
        "losses",
        "depths",
        "widths",
        "output_width",
        "batch",
        "reductions",
    ):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.where:
        options["where"] = load(args.where, "--where")
    from ..kinds import entry

    takes = entry(args.kind).common
    if takes is not None:  # a kind that takes only some common options (a layer has no activations)
        defaults = {"targets": "soft", "bias": None, "strict": False}
        given = sorted(k for k, v in options.items() if k not in takes and (k not in defaults or v != defaults[k]))
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise UsageError(
                f"{flags} draw networks; --kind {args.kind} draws a layer's arguments and takes none of them"
            )
        options = {k: v for k, v in options.items() if k in takes}
    return {**options, **_own_options(args)}


def _json(flag: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"{flag} takes JSON ({exc}), got {text!r}") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"{flag} takes a JSON object, got {text!r}")
        return value

    return parse


def _names(text: str) -> dict[str, str]:
    pairs = [p.split("=") for p in text.split(",") if p]
    if not all(len(p) == 2 and all(p) for p in pairs):
        raise argparse.ArgumentTypeError(f"--names takes mine=builtin pairs, comma-separated, got {text!r}")
    return dict((a, b) for a, b in pairs)


def _own_options(args: argparse.Namespace) -> dict[str, Any]:
    """The kind's own options given on the command line; a usage error for one the kind does not take."""
    from ..kinds import entry

    given = {name: getattr(args, name) for name in _OWN if getattr(args, name) is not None}
    kind = entry(args.kind)
    for name in given:
        if name not in kind.options:
            takes = [k for k in kind_names() if name in entry(k).options]
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} applies to --kind {' or '.join(takes)}, not {args.kind}")
    if "lr" in given:
        given["lr"] = given["lr"][0] if len(given["lr"]) == 1 else given["lr"]
    if "optimizer" in given:
        given["optimizer"] = load(given["optimizer"], "--optimizer")
    if "networks" in given:  # MODULE:NAME loads a Network or a NetworkCase; else families
        text = given["networks"]
        given["networks"] = load(text, "--networks") if ":" in text else tuple(t for t in text.split(",") if t)
    for name in ("forward", "reference", "inputs"):  # MODULE:NAME loads; a bare word names a built-in layer
        if name in given and ":" in given[name]:
            given[name] = load(given[name], f"--{name}")
    return given


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    def one(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [one(x) for x in v]
        if isinstance(v, (str, int, float, bool)) or v is None:
            return v
        return getattr(v, "name", None) or getattr(v, "__name__", None) or repr(v)

    return {k: one(v) for k, v in options.items()}


def _write(args: argparse.Namespace, record: dict[str, Any]) -> None:
    from ..engine.record import markdown

    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(record, f"backprop-crosscheck: {args.target} ({args.kind})"))
    if args.html:
        from ..pages import write_html

        verdict = "passed" if record.get("passed") else record.get("verdict", "failed")
        write_html(record, args.html, f"backprop-crosscheck: {args.target} ({args.kind}): {verdict}")


def _json_path(argv: Sequence[str]) -> Path | None:
    """``--json PATH`` read from a command line that did not parse, so its usage error is written too."""
    mini = _Parser(add_help=False)
    mini.add_argument("--json", type=Path)
    try:
        known, _ = mini.parse_known_args(list(argv))
    except UsageError:
        return None
    return known.json


def _usage_error(argv: Sequence[str], exc: Exception) -> int:
    """Print the error, write it to ``--json`` where that path can be written; exit status 2."""
    message = str(exc)
    print(exc.usage if isinstance(exc, _ParseError) else f"usage error: {message}", file=sys.stderr)
    path = _json_path(argv)
    target = next((a for a in argv[1:] if not a.startswith("-")), None) if argv[:1] == ["check"] else None
    record = {"target": target, "passed": False, "verdict": "usage error", "error": message, "exit_status": 2}
    try:
        _writable(path, "--json")
        if path is not None:
            path.write_text(json.dumps(record, indent=2) + "\n")
    except (UsageError, OSError) as exc:  # the path itself is what is wrong: said above, or here
        print(f"(not written to --json: {exc})", file=sys.stderr)
    return 2


def _kinds_listing() -> str:
    """Every kind of check: its name, the public function, the call, the reference and the tolerance."""
    from ..kinds import entry

    lines = []
    for name in kind_names():
        kind = entry(name)
        own = ", ".join(f"--{k.replace('_', '-')}" for k in kind.options)
        lines += [
            f"{name}  (torch_ref.{kind.check})",
            f"    calls      {kind.call}",
            f"    against    {kind.reference}",
            f"    within     {kind.tolerance}",
        ]
        lines += [f"    options    {own}"] if own else []
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:  # argparse's own: a bad flag, choice or value
        return _usage_error(argv, exc)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.command == "kinds":
        print(_kinds_listing())
        return 0
    if args.json is not None and args.json.is_file():
        args.json.unlink()  # whatever ends this run, a file from an earlier one is never read as its outcome
    import torch_ref

    try:
        fn = load(args.target, "MODULE:FUNCTION")
        if not callable(fn):
            raise UsageError(f"{args.target} is a {type(fn).__name__}, not a callable")
        options = _options(args)
        summary = torch_ref.check(args.kind, fn, **options)
    except UsageError as exc:
        return _usage_error(argv, exc)
    except (TypeError, ValueError) as exc:  # the oracle's validation of the callable and options
        return _usage_error(argv, exc)
    except torch_ref.DerivationMismatch as exc:
        record = {"target": args.target, "options": _jsonable(options), **exc.record}
        print(exc)
        _write(args, record)
        return 1
    except Exception as exc:  # a failure of this tool, not of the derivation
        traceback.print_exc()
        print("internal error: the check itself failed (not a verdict on the derivation)", file=sys.stderr)
        error = f"{type(exc).__name__}: {exc}"
        record = {"target": args.target, "passed": False, "verdict": "internal error", "error": error, "exit_status": 3}
        if args.json is not None:
            args.json.write_text(json.dumps(record, indent=2) + "\n")
        return 3
    from ..engine.record import summary_record

    record = {"target": args.target, "options": _jsonable(options), **summary_record(summary)}
    print(f"passed: {summary}")
    _write(args, record)
    return 0
