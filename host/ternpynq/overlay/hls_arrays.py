"""The on-chip arrays of the HLS kernel, read from its sources (docs/overlay-resources.md).

Convention the kernel follows: each on-chip array is declared on one line as
``TYPE NAME[EXPR]...;`` (several comma-separated declarators, an initializer, or a ``= {`` that
continues on later lines allowed), where EXPR uses TPQ_* macros of tpq_config.h, ``constexpr``
integers and enumerators of the sources and literals, with its
``#pragma HLS ARRAY_PARTITION|ARRAY_RESHAPE variable=NAME ...`` and/or
``#pragma HLS BIND_STORAGE variable=NAME ...`` beside it. Synthesis sources are the .cpp/.hpp/.h
files under overlay/hls/ that scripts/hls.tcl does not add with ``add_files -tb``, less their
``#ifndef __SYNTHESIS__`` branches.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ternpynq.overlay.boards import Board, config_header
from ternpynq.overlay.paths import overlay_dir

SCALAR_BITS = {
    "bool": 1, "char": 8, "int8_t": 8, "uint8_t": 8, "short": 16, "int16_t": 16, "uint16_t": 16,
    "int": 32, "unsigned": 32, "int32_t": 32, "uint32_t": 32, "float": 32, "long": 64,
    "int64_t": 64, "uint64_t": 64, "double": 64,
}  # fmt: skip
KEYWORDS = {"return", "else", "case", "goto", "delete", "new", "throw", "do", "sizeof"}
_TYPE = r"(?:ap_u?int<[^<>;]+>|ap_u?fixed<[^<>;]+>|(?:unsigned\s+|signed\s+)?[A-Za-z_]\w*)"
_DECL = re.compile(
    rf"^\s*(?:(?:static|const|constexpr|thread_local)\s+)*(?P<type>{_TYPE})\s+"
    r"(?P<rest>[A-Za-z_]\w*\s*\[[^;]*?)\s*(?:;|=\s*\{)\s*$"
)
_ENUM = re.compile(r"enum\s+(?:class\s+)?\w*\s*(?::\s*\w+\s*)?\{([^}]*)\}")
_DECLARATOR = re.compile(
    r"^\s*(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\]]*\]\s*)+)(?:=\s*(?P<init>.*))?$"
)
_CONSTEXPR = re.compile(r"constexpr\s+(?:u?int\w*|unsigned|int|long)\s+(\w+)\s*=\s*([^;]+);")
_ALIAS = (
    re.compile(rf"using\s+(\w+)\s*=\s*({_TYPE})\s*;"),
    re.compile(rf"typedef\s+({_TYPE})\s+(\w+)\s*;"),
)
_PRAGMA = re.compile(r"#pragma\s+HLS\s+(ARRAY_PARTITION|ARRAY_RESHAPE|BIND_STORAGE)\s+(.*)", re.I)


class ArraySourceError(ValueError):
    """An array or pragma in the HLS sources cannot be sized; the message names file and line."""


@dataclass
class Array:
    """One on-chip array: element width, dimensions and the pragmas that shape it."""

    name: str
    where: str  # file:line of the declaration
    elem_bits: int
    dims: tuple[int, ...]
    partitions: list[dict] = field(default_factory=list)  # ARRAY_PARTITION/RESHAPE options
    storage: dict = field(default_factory=dict)  # BIND_STORAGE options (type, impl)


def synthesis_sources(root: Path | None = None) -> list[Path]:
    """The HLS files synthesis reads: all under hls/, less the testbench files of hls.tcl."""
    root = root or overlay_dir()
    tcl = root / "scripts" / "hls.tcl"
    tb = set(re.findall(r"add_files\s+-tb\b[^\n]*?([\w.]+\.(?:cpp|hpp|h))", tcl.read_text()))
    files = sorted(p for ext in ("cpp", "hpp", "h") for p in (root / "hls").rglob(f"*.{ext}"))
    return [p for p in files if p.name not in tb and not p.name.endswith("_tb.cpp")]


def _strip_comment(line: str) -> str:
    return line.split("//", 1)[0]


def synthesis_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text without comment) of the lines synthesis sees: the C-simulation-only
    branches of ``#ifndef __SYNTHESIS__`` and ``#ifdef __SYNTHESIS__ ... #else`` are dropped."""
    out, stack = [], []  # per open #if: "csim" (skipped), "synth" or "other" (kept)
    flip = {"csim": "synth", "synth": "csim", "other": "other"}
    for n, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        head, _, arg = line.strip().partition(" ")
        synth = arg.strip() in ("__SYNTHESIS__", "defined(__SYNTHESIS__)")
        if head in ("#if", "#ifdef", "#ifndef"):
            kind = "other" if not synth else "csim" if head == "#ifndef" else "synth"
            stack.append(kind)
        elif head == "#else" and stack:
            stack[-1] = flip[stack[-1]]
        elif head == "#endif" and stack:
            stack.pop()
        elif "csim" not in stack:
            out.append((n, line))
    return out


def evaluate(expr: str, names: dict[str, int], where: str) -> int:
    """An integer C expression of ``names`` and literals (``/`` truncates, as in C)."""
    text = re.sub(r"(\d+)[uUlL]+\b", r"\1", expr.strip())
    text = re.sub(r"static_cast<[^>]+>", "", text)
    try:
        tree = ast.parse(text.replace("/", "//"), mode="eval")
    except SyntaxError as exc:
        raise ArraySourceError(f"{where}: cannot read {expr.strip()!r}") from exc

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ArraySourceError(f"{where}: unknown name {node.id} in {expr.strip()!r}")
            return names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.FloorDiv) and b:
                return int(a / b)  # C division truncates toward zero
            ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b}
            ops[ast.LShift] = lambda: a << b
            if type(node.op) in ops:
                return ops[type(node.op)]()
        raise ArraySourceError(f"{where}: unsupported expression {expr.strip()!r}")

    return ev(tree)


def constants(board: Board, sources: list[Path]) -> dict[str, int]:
    """TPQ_* macros of the board's generated config header, then the sources' constexprs."""
    names = {
        m[0]: int(float(m[1]))
        for m in re.findall(r"#define\s+(TPQ_\w+)\s+([-\d.]+)\s*$", config_header(board), re.M)
    }
    for path in sources:
        text = "\n".join(_strip_comment(line) for line in path.read_text().splitlines())
        for body in _ENUM.findall(text):
            value = -1
            for item in filter(None, (i.strip() for i in body.split(","))):
                name, _, expr = item.partition("=")
                value = evaluate(expr, names, path.name) if expr.strip() else value + 1
                names[name.strip()] = value
        for name, expr in _CONSTEXPR.findall(text):
            try:
                names[name] = evaluate(expr, names, path.name)
            except ArraySourceError:
                continue  # a constexpr that is not an integer of known names sizes nothing
    return names


def type_bits(type_name: str, names: dict[str, int], aliases: dict[str, str], where: str) -> int:
    """Bits of one element of ``type_name`` (ap_[u]int<N>, ap_[u]fixed<W, I>, std integers)."""
    t = " ".join(type_name.split())
    t = aliases.get(t, t)
    m = re.fullmatch(r"ap_u?(?:int|fixed)<\s*([^,>]+)(?:,[^>]*)?>", t)
    if m:
        return evaluate(m.group(1), names, where)
    base = re.sub(r"^(unsigned|signed)\s+", "", t) if " " in t else t
    if base in SCALAR_BITS:
        return SCALAR_BITS[base]
    if t in ("unsigned", "signed"):
        return 32
    raise ArraySourceError(f"{where}: unknown element type {type_name!r}")


def _options(text: str) -> dict:
    """``key=value`` options of a pragma, plus bare words (complete, cyclic, block) as type."""
    opts: dict = {}
    for tok in text.split():
        if "=" in tok:
            key, value = tok.split("=", 1)
            opts[key.lower()] = value
        else:
            opts.setdefault("type", tok.lower())
    return opts


def read_arrays(board: Board, root: Path | None = None) -> list[Array]:
    """Every on-chip array declared in the synthesis sources, sized for ``board``."""
    sources = synthesis_sources(root)
    names = constants(board, sources)
    aliases: dict[str, str] = {}
    for path in sources:
        text = path.read_text()
        aliases.update(dict(_ALIAS[0].findall(text)))
        aliases.update({new: old for old, new in _ALIAS[1].findall(text)})
    arrays: dict[str, Array] = {}
    pragmas: list[tuple[str, str, dict, str]] = []  # (kind, variable, options, where)
    for path in sources:
        for n, line in synthesis_lines(path.read_text()):
            where = f"{path.name}:{n}"
            pm = _PRAGMA.search(line)
            if pm:
                opts = _options(pm.group(2))
                if "variable" not in opts:
                    raise ArraySourceError(f"{where}: {pm.group(1)} without variable=")
                pragmas.append((pm.group(1).upper(), opts.pop("variable"), opts, where))
                continue
            dm = _DECL.match(line)
            if not dm or dm.group("type") in KEYWORDS:
                continue
            bits = type_bits(dm.group("type"), names, aliases, where)
            for part in _split_top(dm.group("rest")):
                d = _DECLARATOR.match(part)
                if not d:
                    continue
                dims = tuple(
                    evaluate(e, names, where) if e.strip() else _init_count(d.group("init"), where)
                    for e in re.findall(r"\[([^\]]*)\]", d.group("dims"))
                )
                name = d.group("name")
                if name in arrays:
                    raise ArraySourceError(
                        f"{where}: array {name} also declared at {arrays[name].where}"
                    )
                arrays[name] = Array(name, where, bits, dims)
    for kind, var, opts, where in pragmas:
        if var not in arrays:
            continue  # a pragma on a function argument shapes the caller's array, found by name
        if kind == "BIND_STORAGE":
            arrays[var].storage = opts
        else:
            kind_ = opts.get("type", "complete").lower()
            factor = evaluate(opts.get("factor", "0"), names, where)
            dim = evaluate(opts.get("dim", "1"), names, where)
            arrays[var].partitions.append(
                {"pragma": kind, "type": kind_, "factor": factor, "dim": dim, "where": where}
            )
    return list(arrays.values())


def _init_count(init: str | None, where: str) -> int:
    """Elements of a ``{a, b, ...}`` initializer, for a ``NAME[] = {...}`` declaration."""
    if not init or not init.strip().startswith("{"):
        raise ArraySourceError(f"{where}: an array with [] needs a {{...}} initializer")
    return len(_split_top(init.strip()[1:-1]))


def _split_top(text: str) -> list[str]:
    """Split declarators at commas outside brackets and braces."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[{" and 1 or 0
        depth -= ch in "]}" and 1 or 0
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def banks(array: Array) -> tuple[int, int, int]:
    """(banks, depth per bank, bits per word) after the array's partition/reshape pragmas."""
    dims = list(array.dims)
    width = array.elem_bits
    nbanks = 1
    for p in array.partitions:
        targets = range(len(dims)) if p["dim"] == 0 else [p["dim"] - 1]
        for i in targets:
            if i >= len(dims):
                raise ArraySourceError(f"{p['where']}: {array.name} has no dim {i + 1}")
            factor = dims[i] if p["type"] == "complete" else p["factor"]
            factor = max(1, min(factor, dims[i]))
            if p["pragma"] == "ARRAY_RESHAPE":
                width *= factor  # reshaping widens the word instead of adding banks
            else:
                nbanks *= factor
            dims[i] = math.ceil(dims[i] / factor)
    return nbanks, math.prod(dims), width
