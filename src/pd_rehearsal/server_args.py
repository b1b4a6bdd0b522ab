"""SGLang 0.5.2's ``python -m sglang.launch_server`` command line, without importing SGLang.

Importing ``sglang.srt.server_args`` pulls in torch, which the rehearsal environment does not
have.  Instead this module reads SGLang's own source with :mod:`ast`:

* ``ServerArgs.add_cli_args`` is lifted out of ``sglang/srt/server_args.py`` and executed in a
  small namespace that holds only what that function needs: the module-level literal constants
  (``LOAD_FORMAT_CHOICES`` ...), a stand-in for ``ServerArgs`` carrying the dataclass field
  defaults, the ``argparse.Action`` helper classes defined in the same file, and the few names
  imported from other SGLang modules (literal constants and the literal keys of class-level
  dicts, read from those modules' source; ``nullable_str`` is reimplemented here).
* Every free name of the lifted code is resolved up front.  A name this module does not know how
  to provide (a different SGLang version, say) raises :class:`SGLangSourceError` instead of
  producing a parser that silently differs from the real one.

On top of the flag definitions, :func:`parse_args` mirrors SGLang's post-parse aliasing and the
argument checks that need neither a GPU nor the model's files.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import copy
import functools
import importlib
import importlib.util
import os
import symtable
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

__all__ = [
    "REHEARSAL_GROUP_TITLE",
    "REHEARSAL_PROG",
    "SGLANG_PROG",
    "SGLANG_VERSION",
    "SGLangSourceError",
    "build_parser",
    "find_sglang_server_args",
    "parse_args",
    "sglang_parser",
]

SGLANG_VERSION = "0.5.2"
"""The SGLang release whose command line this module was written against."""

SGLANG_PROG = "python -m sglang.launch_server"
REHEARSAL_PROG = "python -m pd_rehearsal"
REHEARSAL_GROUP_TITLE = "rehearsal engine (not part of SGLang)"

_INSTALL_HINT = f"pip install 'sglang=={SGLANG_VERSION}' --no-deps"

# Standard-library modules the lifted code may use when server_args.py imports them.
_STDLIB_MODULES = frozenset({"argparse", "json"})

AddCliArgs = Callable[[argparse.ArgumentParser], None]


class SGLangSourceError(RuntimeError):
    """SGLang's source is missing, or no longer matches what this module knows how to read."""


def _nullable_str(value: str) -> str | None:
    """Own version of ``sglang.srt.utils.nullable_str``: ``""`` and ``"None"`` mean None.

    Only that exact spelling: ``"none"`` stays a string, as in SGLang 0.5.2.
    """
    return None if value in ("", "None") else value


# Functions imported by server_args.py from other SGLang modules, reimplemented here.
_REIMPLEMENTED: dict[tuple[str, str], Callable[..., Any]] = {
    ("sglang.srt.utils", "nullable_str"): _nullable_str,
}


# --------------------------------------------------------------------------------------------
# Locating and reading the source
# --------------------------------------------------------------------------------------------


def find_sglang_server_args() -> Path:
    """Return the path of the installed ``sglang/srt/server_args.py`` (nothing is imported).

    Raises:
        SGLangSourceError: SGLang is not installed, or the file is missing.
    """
    try:
        spec = importlib.util.find_spec("sglang")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise SGLangSourceError(
            f"SGLang is not installed in this Python environment ({sys.executable}); the "
            f"rehearsal engine reads its command line from SGLang's source. Install it without "
            f"its GPU dependencies: {_INSTALL_HINT}"
        )
    for location in locations:
        candidate = Path(location) / "srt" / "server_args.py"
        if candidate.is_file():
            return candidate
    raise SGLangSourceError(
        f"SGLang is installed at {locations[0]} but has no srt/server_args.py; "
        f"reinstall it: {_INSTALL_HINT}"
    )


def _resolve_source(source: Path | str | None) -> Path:
    if source is None:
        return find_sglang_server_args().resolve()
    path = Path(source)
    if not path.is_file():
        raise SGLangSourceError(f"SGLang server_args source not found: {path}")
    return path.resolve()


def _parse_file(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise SGLangSourceError(f"cannot read {path}: {exc}") from exc


def _module_file(source: Path, module: str) -> Path:
    """Map a dotted ``sglang.*`` module name to its file, relative to ``server_args.py``."""
    # server_args.py lives at <root>/sglang/srt/server_args.py.
    root = source.parent.parent.parent
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise SGLangSourceError(
        f"{source} imports from {module}, whose source was not found under {root}"
    )


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _simple_assignments(body: Iterable[ast.stmt]) -> Iterator[tuple[str, ast.expr]]:
    """Yield ``(name, value)`` for ``name = value`` and ``name: T = value`` statements."""
    for stmt in body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name):
                yield target.id, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            if isinstance(stmt.target, ast.Name):
                yield stmt.target.id, stmt.value


@dataclass
class _ModuleIndex:
    """What one SGLang module defines at top level, as far as this module cares."""

    path: Path
    constants: dict[str, Any] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)
    from_imports: dict[str, tuple[str, str]] = field(default_factory=dict)
    imports: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, path: Path) -> _ModuleIndex:
        index = cls(path)
        tree = _parse_file(path)
        for name, value in _simple_assignments(tree.body):
            ok, constant = _literal(value)
            if ok:
                index.constants[name] = constant
        for stmt in tree.body:
            if isinstance(stmt, ast.ClassDef):
                index.classes[stmt.name] = stmt
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                index.functions.add(stmt.name)
            elif isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
                for alias in stmt.names:
                    index.from_imports[alias.asname or alias.name] = (stmt.module, alias.name)
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname is None and "." not in alias.name:
                        index.imports.add(alias.name)
        return index


def _field_default(value: ast.expr) -> tuple[bool, Any]:
    """Evaluate a dataclass field default: a literal, or an expression over ``sys`` only."""
    ok, constant = _literal(value)
    if ok:
        return True, constant
    try:
        code = compile(ast.Expression(body=value), "<ServerArgs default>", "eval")
        return True, eval(code, {"__builtins__": {}, "sys": sys})  # noqa: S307 - no builtins
    except Exception:  # noqa: BLE001 - anything else is simply "not evaluable here"
        return False, None


_Def = TypeVar("_Def", ast.FunctionDef, ast.ClassDef)


def _detached(node: _Def) -> _Def:
    """Deep copy of ``node`` without decorators or function annotations (never evaluated)."""
    node = copy.deepcopy(node)
    if isinstance(node, ast.FunctionDef):
        node.decorator_list = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
            sub.returns = None
            arguments: ast.arguments = sub.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            for arg in every:
                arg.annotation = None
    return node


def _free_names(node: ast.stmt) -> set[str]:
    """Names ``node`` reads from the global scope (its own top-level binding excluded)."""
    text = ast.unparse(ast.Module(body=[node], type_ignores=[]))
    top = symtable.symtable(text, "<lifted>", "exec")
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    free = {s.get_name() for s in top.get_symbols() if s.is_referenced()}
    pending = list(top.get_children())
    while pending:
        table = pending.pop()
        pending.extend(table.get_children())
        free.update(
            s.get_name() for s in table.get_symbols() if s.is_referenced() and s.is_global()
        )
    return free - bound


def _attribute_uses(node: ast.AST) -> Iterator[tuple[str, str, int]]:
    """Yield ``(name, attribute, line)`` for every ``name.attribute`` expression."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
            yield sub.value.id, sub.attr, sub.lineno


@dataclass
class _StandIn:
    """What a class stand-in offers: evaluable attributes, and why others are missing."""

    origin: str
    attributes: dict[str, Any]
    unavailable: dict[str, str]

    def namespace(self) -> types.SimpleNamespace:
        return types.SimpleNamespace(**self.attributes)


def _server_args_stand_in(cls: ast.ClassDef, path: Path) -> _StandIn:
    attributes: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for name, value in _simple_assignments(cls.body):
        ok, default = _field_default(value)
        if ok:
            attributes[name] = default
        else:
            unavailable[name] = f"its default `{ast.unparse(value)}` cannot be evaluated here"
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
            if isinstance(stmt.target, ast.Name):
                unavailable[stmt.target.id] = "the field has no default"
    return _StandIn(f"{path}: class {cls.name}", attributes, unavailable)


def _imported_class_stand_in(cls: ast.ClassDef, path: Path) -> _StandIn:
    """Class attributes that are literals, or dicts with literal keys (values dropped)."""
    attributes: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for name, value in _simple_assignments(cls.body):
        ok, constant = _literal(value)
        if ok:
            attributes[name] = constant
            continue
        if isinstance(value, ast.Dict) and all(k is not None for k in value.keys):
            keys = [_literal(k) for k in value.keys if k is not None]
            if all(ok for ok, _ in keys):
                attributes[name] = dict.fromkeys(key for _, key in keys)
                continue
        unavailable[name] = "it is neither a literal nor a dict with literal keys"
    return _StandIn(f"{path}: class {cls.name}", attributes, unavailable)


# --------------------------------------------------------------------------------------------
# Lifting ServerArgs.add_cli_args
# --------------------------------------------------------------------------------------------


class _Lifter:
    """Resolves every free name of ``ServerArgs.add_cli_args`` and executes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.index = _ModuleIndex.of(path)
        self.namespace: dict[str, Any] = {"__builtins__": builtins}
        self.stand_ins: dict[str, _StandIn] = {}
        self.classes: list[ast.ClassDef] = []
        self.problems: list[str] = []
        self._other_modules: dict[str, _ModuleIndex] = {}

    def lift(self) -> AddCliArgs:
        server_args = self.index.classes.get("ServerArgs")
        if server_args is None:
            raise SGLangSourceError(f"{self.path} defines no class ServerArgs")
        method = next(
            (
                stmt
                for stmt in server_args.body
                if isinstance(stmt, ast.FunctionDef) and stmt.name == "add_cli_args"
            ),
            None,
        )
        if method is None:
            raise SGLangSourceError(f"{self.path}: ServerArgs has no add_cli_args method")
        function = _detached(method)
        self.stand_ins["ServerArgs"] = _server_args_stand_in(server_args, self.path)

        seen: set[str] = set()
        todo = [("ServerArgs.add_cli_args", name) for name in sorted(_free_names(function))]
        while todo:
            user, name = todo.pop(0)
            if name in seen:
                continue
            seen.add(name)
            for more in sorted(self._resolve(user, name)):
                todo.append((name, more))

        self._check_attributes([function, *self.classes])
        if self.problems:
            raise SGLangSourceError(
                f"{self.path} does not look like SGLang {SGLANG_VERSION}'s server_args.py, "
                "which pd_rehearsal.server_args was written against; it cannot provide:\n  - "
                + "\n  - ".join(self.problems)
            )

        for name, stand_in in self.stand_ins.items():
            self.namespace[name] = stand_in.namespace()
        body: list[ast.stmt] = [*sorted(self.classes, key=lambda c: c.lineno), function]
        code = compile(ast.Module(body=body, type_ignores=[]), str(self.path), "exec")
        exec(code, self.namespace)  # noqa: S102 - SGLang's own, checked code
        return self.namespace[function.name]

    def _resolve(self, user: str, name: str) -> set[str]:
        """Provide ``name``; return further free names that providing it introduced."""
        index = self.index
        if name in self.stand_ins:
            return set()
        if name in index.constants:
            self.namespace[name] = index.constants[name]
            return set()
        if name in index.classes:
            cls = _detached(index.classes[name])
            self.classes.append(cls)
            return _free_names(cls)
        if name in index.from_imports:
            module, original = index.from_imports[name]
            self._resolve_import(user, name, module, original)
            return set()
        if name in index.imports and name in _STDLIB_MODULES:
            self.namespace[name] = importlib.import_module(name)
            return set()
        if name in index.functions:
            self.problems.append(
                f"`{name}` (used by {user}) is a function defined in server_args.py"
            )
            return set()
        if hasattr(builtins, name):
            return set()
        self.problems.append(f"`{name}` (used by {user}) is an unknown name")
        return set()

    def _resolve_import(self, user: str, name: str, module: str, original: str) -> None:
        where = f"`{name}` (used by {user}, imported from {module})"
        if (module, original) in _REIMPLEMENTED:
            other = self._other(module)
            if original not in other.functions:
                self.problems.append(f"{where}: {other.path} no longer defines it")
                return
            self.namespace[name] = _REIMPLEMENTED[module, original]
            return
        if not module.startswith("sglang."):
            self.problems.append(f"{where}: not an SGLang module")
            return
        other = self._other(module)
        if original in other.constants:
            self.namespace[name] = other.constants[original]
        elif original in other.classes:
            self.stand_ins[name] = _imported_class_stand_in(other.classes[original], other.path)
        else:
            self.problems.append(
                f"{where}: not a literal constant or class in {other.path}, and not one of "
                "the functions reimplemented here"
            )

    def _other(self, module: str) -> _ModuleIndex:
        if module not in self._other_modules:
            self._other_modules[module] = _ModuleIndex.of(_module_file(self.path, module))
        return self._other_modules[module]

    def _check_attributes(self, nodes: Iterable[ast.AST]) -> None:
        for node in nodes:
            for name, attribute, line in _attribute_uses(node):
                stand_in = self.stand_ins.get(name)
                if stand_in is None or attribute in stand_in.attributes:
                    continue
                reason = stand_in.unavailable.get(attribute, "there is no such attribute")
                self.problems.append(
                    f"`{name}.{attribute}` (line {line}) from {stand_in.origin}: {reason}"
                )


@functools.lru_cache(maxsize=8)
def _add_cli_args(path: Path) -> AddCliArgs:
    """SGLang's ``ServerArgs.add_cli_args``, lifted from ``path`` (cached per path)."""
    return _Lifter(path).lift()


# --------------------------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------------------------


def sglang_parser(source: Path | None = None) -> argparse.ArgumentParser:
    """Return a fresh parser with exactly SGLang's ``launch_server`` flags.

    Args:
        source: ``sglang/srt/server_args.py`` to read; default: the installed SGLang's.

    The lifted ``add_cli_args`` is cached per source path; every call builds a new parser, so
    callers may modify the result.

    Raises:
        SGLangSourceError: the source is missing or does not match SGLang 0.5.2's layout.
    """
    add_cli_args = _add_cli_args(_resolve_source(source))
    parser = argparse.ArgumentParser(prog=SGLANG_PROG)
    add_cli_args(parser)
    return parser


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def build_parser(source: Path | None = None) -> argparse.ArgumentParser:
    """Return SGLang's parser plus the rehearsal engine's own ``--rehearsal-*`` flags.

    Args:
        source: ``sglang/srt/server_args.py`` to read; default: the installed SGLang's.
    """
    parser = argparse.ArgumentParser(
        prog=REHEARSAL_PROG,
        description=(
            f"CPU rehearsal engine that accepts SGLang {SGLANG_VERSION}'s launch_server "
            "command line and imitates its HTTP and PD-disaggregation behaviour "
            "(no real inference)."
        ),
    )
    _add_cli_args(_resolve_source(source))(parser)
    group = parser.add_argument_group(
        REHEARSAL_GROUP_TITLE,
        "Timing and fault-injection knobs of the simulated engine.",
    )
    group.add_argument(
        "--rehearsal-prefill-ms-per-1k-tokens",
        metavar="MS",
        type=_non_negative_float,
        default=40.0,
        help="Simulated prefill time per 1000 prompt tokens, in milliseconds.",
    )
    group.add_argument(
        "--rehearsal-decode-ms-per-token",
        metavar="MS",
        type=_non_negative_float,
        default=8.0,
        help="Simulated decode time per generated token, in milliseconds.",
    )
    group.add_argument(
        "--rehearsal-kv-bytes-per-token",
        metavar="BYTES",
        type=_positive_int,
        default=0,
        help="KV-cache bytes per token. Default 0: derive it from the model's config.json.",
    )
    group.add_argument(
        "--rehearsal-kv-pool-mb",
        metavar="MIB",
        type=_positive_int,
        default=512,
        help="Size of the simulated KV-cache pool, in MiB.",
    )
    group.add_argument(
        "--rehearsal-startup-seconds",
        metavar="SECONDS",
        type=_non_negative_float,
        default=2.0,
        help="Simulated model load time; /health answers 503 until it has passed.",
    )
    group.add_argument(
        "--rehearsal-fail-kv-checksum",
        action="store_true",
        help="Test hook: prefill corrupts the KV bytes it sends, so decode must detect it.",
    )
    group.add_argument(
        "--rehearsal-never-ready",
        action="store_true",
        help="Test hook: /health answers 503 forever.",
    )
    return parser


# --------------------------------------------------------------------------------------------
# Post-parse aliasing and checks (SGLang 0.5.2 line numbers are of srt/server_args.py)
# --------------------------------------------------------------------------------------------


def _apply_aliases(args: argparse.Namespace) -> None:
    """``ServerArgs.from_cli_args`` (l. 2224-2228): the long flags' dests get short twins."""
    args.tp_size = args.tensor_parallel_size
    args.pp_size = args.pipeline_parallel_size
    args.dp_size = args.data_parallel_size
    args.ep_size = args.expert_parallel_size


def _in_ci() -> bool:
    """``sglang.test.test_utils.is_in_ci``: SGLANG_IS_IN_CI set to true/1."""
    return os.environ.get("SGLANG_IS_IN_CI", "false").lower() in ("true", "1")


def _violations(a: argparse.Namespace) -> Iterator[str]:
    """Yield SGLang's complaints about ``a`` in the order SGLang would raise them.

    Values SGLang derives in ``__post_init__`` are recomputed locally; ``a`` is not changed.
    Only checks needing neither a GPU nor the model's files are mirrored.
    """
    tp, pp, dp = a.tp_size, a.pp_size, a.dp_size

    # Not in SGLang 0.5.2, which fails later (a port outside 1-65535 in bind(), a zero size in a
    # division or an empty device mesh) with a traceback: refused here with a message instead.
    for flag, port in (("--port", a.port), ("--disaggregation-bootstrap-port",
                                            a.disaggregation_bootstrap_port)):
        if not 1 <= port <= 65535:
            yield f"{flag} must be in 1-65535, got {port}"
            return
    for flag, size in (("--tp-size", tp), ("--pp-size", pp), ("--dp-size", dp)):
        if size < 1:
            yield f"{flag} must be >= 1, got {size}"
            return

    # __post_init__ l. 408-437: deprecated MoE flags rewrite the new ones.
    ep = tp if a.enable_ep_moe else a.ep_size
    moe_a2a_backend = "deepep" if a.enable_deepep_moe else a.moe_a2a_backend
    moe_runner_backend = a.moe_runner_backend
    for flag, backend in (
        ("enable_triton_kernel_moe", "triton_kernel"),
        ("enable_flashinfer_cutlass_moe", "flashinfer_cutlass"),
        ("enable_flashinfer_trtllm_moe", "flashinfer_trtllm"),
        ("enable_flashinfer_mxfp4_moe", "flashinfer_mxfp4"),
    ):
        if getattr(a, flag):
            moe_runner_backend = backend

    # l. 554-577: some attention backends force the page size (trtllm_* need a GPU check).
    page_size = a.page_size if a.page_size is not None else 1
    backends = {a.attention_backend, a.decode_attention_backend}
    if a.attention_backend == "ascend":
        page_size = 128
    if "flashmla" in backends:
        page_size = 64
    if "cutlass_mla" in backends:
        page_size = 128
    dual_chunk = a.attention_backend == "dual_chunk_flash_attn"  # l. 614-620

    # l. 634-645: dp attention is dropped for dp_size 1, else needs tp % dp == 0.
    dp_attention = a.enable_dp_attention and dp != 1
    chunked_prefill_size = a.chunked_prefill_size
    if dp_attention:
        if dp <= 0 or tp % dp != 0:  # SGLang: bare assert without a message
            yield f"tp_size ({tp}) must be divisible by dp_size ({dp}) for --enable-dp-attention"
            return
        if chunked_prefill_size is not None:
            chunked_prefill_size //= dp

    if a.enable_dp_lm_head and not dp_attention:  # l. 646-649
        yield "Please enable dp attention when setting enable_dp_lm_head. "

    if moe_runner_backend == "flashinfer_cutlass":  # l. 652-660
        if a.quantization != "modelopt_fp4":
            yield "modelopt_fp4 quantization is required for Flashinfer MOE"
        if ep not in (1, tp):
            yield "The expert parallel size must be 1 or the same as the tensor parallel size"
    if moe_runner_backend == "flashinfer_trtllm" and a.quantization not in (  # l. 661-668
        "modelopt_fp4",
        "fp8",
    ):
        yield "modelopt_fp4 quantization is required for Flashinfer TRTLLM MoE"

    if moe_a2a_backend == "deepep":  # l. 671-677: DeepEP forces ep_size = tp_size
        ep = tp
    if a.enable_eplb and ep <= 1:  # l. 691-692, bare assert
        yield f"--enable-eplb requires ep_size > 1 (got {ep})"

    speculative = a.speculative_algorithm
    if speculative == "STANDALONE" and dp_attention:  # l. 723-728
        yield "Currently standalone speculative decoding does not support dp attention."
    mixed_chunk = a.enable_mixed_chunk and not dual_chunk
    if speculative in ("EAGLE", "EAGLE3", "NEXTN", "STANDALONE"):  # l. 715-741 (NEXTN is EAGLE)
        mixed_chunk = False

    # l. 810-833: PD disaggregation.
    disable_radix_cache = a.disable_radix_cache or dual_chunk
    if a.disaggregation_mode == "decode":
        if a.disaggregation_decode_tp is not None:
            yield "Cannot set --disaggregation-decode-tp for the decode engine."
        if a.disaggregation_decode_dp is not None:
            yield "Cannot set --disaggregation-decode-dp for the decode engine."
        disable_radix_cache = True
        if dp > 1 and not _in_ci() and not a.prefill_round_robin_balance:
            yield (
                "Prefill round robin balance is required when dp size > 1. Please make sure "
                "that the prefill instance is launched with `--load-balance-method "
                "round_robin` and `--prefill-round-robin-balance` is set for decode server."
            )
    elif a.disaggregation_mode == "prefill":
        decode_tp = a.disaggregation_decode_tp
        if decode_tp is None:
            decode_tp = tp
        larger, smaller = max(decode_tp, tp), min(decode_tp, tp)  # l. 2382-2388
        if smaller <= 0 or larger % smaller != 0:
            yield (
                "Different tp size is supported only when one tp is multiple of the other. "
                f"decode_tp={decode_tp}, prefill_tp={tp}"
            )

    if a.enable_hierarchical_cache and disable_radix_cache:  # l. 850-854
        yield (
            "The arguments enable-hierarchical-cache and disable-radix-cache are mutually "
            "exclusive and cannot be used at the same time. Please use only one of them."
        )

    # check_server_args, l. 2249-2297 (runs after __post_init__).
    if a.nnodes <= 0 or (tp * pp) % a.nnodes != 0:
        yield "tp_size must be divisible by number of nodes"
    if pp > 1 and (speculative is not None or mixed_chunk):
        yield (
            "Pipeline parallelism is not compatible with overlap schedule, speculative "
            "decoding, mixed chunked prefill."
        )
    if dp > 1 and a.nnodes != 1 and not dp_attention:
        yield "multi-node data parallel is not supported unless dp attention!"
    if a.base_gpu_id < 0:
        yield "base_gpu_id must be non-negative"
    if a.gpu_id_step < 1:
        yield "gpu_id_step must be positive"
    if a.moe_dense_tp_size not in (1, None):
        yield "moe_dense_tp_size only support 1 and None currently"
    yield from _lora_violations(a)  # l. 2299-2380
    if chunked_prefill_size is not None and chunked_prefill_size > 0:
        if chunked_prefill_size % page_size != 0:
            yield "chunked_prefill_size must be divisible by page_size"
    if a.tokenizer_worker_num <= 0:
        yield "Tokenizer worker num must >= 1"


def _lora_violations(a: argparse.Namespace) -> Iterator[str]:
    """``check_lora_server_args`` (l. 2299-2380), without building LoRARef objects."""
    if a.max_loras_per_batch <= 0:
        yield "max_loras_per_batch must be positive"
    lora_paths = a.lora_paths
    enable_lora = a.enable_lora
    if lora_paths and enable_lora is None:
        enable_lora = True
    if not enable_lora:
        return
    count = 0
    for item in lora_paths or []:
        if isinstance(item, dict) and not ("lora_name" in item and "lora_path" in item):
            yield (
                "When providing LoRA paths as a list of dict, each dict should contain "
                f"'lora_name' and 'lora_path' keys. Got: {item}"
            )
        count += 1
    modules = set(a.lora_target_modules or [])
    if "all" in modules and len(modules) != 1:
        yield (
            "If 'all' is specified in --lora-target-modules, it should be the only module "
            "specified."
        )
    if not (count or (a.max_lora_rank and modules)):
        yield (
            "When no initial --lora-paths is provided, you need to specify both "
            "--max-lora-rank and --lora-target-modules for LoRA initialization."
        )
    if a.max_loaded_loras is not None:
        if a.max_loaded_loras < a.max_loras_per_batch:
            yield (
                "max_loaded_loras should be greater than or equal to max_loras_per_batch. "
                f"max_loaded_loras={a.max_loaded_loras}, "
                f"max_loras_per_batch={a.max_loras_per_batch}"
            )
        elif count > a.max_loaded_loras:
            yield (
                "The number of LoRA paths should not exceed max_loaded_loras. "
                f"max_loaded_loras={a.max_loaded_loras}, lora_paths={count}"
            )


def _fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)
    raise AssertionError("unreachable")  # parser.error exits


def parse_args(argv: list[str], *, source: Path | None = None) -> argparse.Namespace:
    """Parse a rehearsal-engine command line the way SGLang 0.5.2 would, then check it.

    After parsing, ``tp_size``/``pp_size``/``dp_size``/``ep_size`` are set from
    ``tensor_parallel_size``/``pipeline_parallel_size``/``data_parallel_size``/
    ``expert_parallel_size`` (SGLang's ``from_cli_args``); nothing else is changed.  The
    GPU-free subset of SGLang's ``__post_init__`` and ``check_server_args`` assertions is then
    applied; a violation prints ``<prog>: error: <SGLang's message>`` and exits with status 2,
    like every other argparse error.

    Args:
        argv: the arguments, without the program name.
        source: ``sglang/srt/server_args.py`` to read; default: the installed SGLang's.
    """
    parser = build_parser(source)
    try:
        args = parser.parse_args(argv)
    except (AssertionError, ValueError) as exc:
        # SGLang's own argparse actions (e.g. LoRAPathAction) raise these instead of
        # argparse errors; SGLang would die with a traceback.
        _fail(parser, str(exc) or type(exc).__name__)
    _apply_aliases(args)
    for message in _violations(args):
        _fail(parser, message)
    return args
