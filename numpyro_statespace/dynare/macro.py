r"""Comments and the simple part of Dynare's macro language, before tokenising.

Comments in all three styles (``// ...``, ``% ...``, ``/* ... */``) become spaces, so every
character after them keeps its line and column. Macro directives take a whole line:
``@#define NAME = expr``, ``@#if expr`` / ``@#ifdef NAME`` / ``@#ifndef NAME``, ``@#elseif
expr``, ``@#else``, ``@#endif``; ``@{NAME}`` in the text is replaced by the value. Directive
lines and lines switched off become blank lines (line numbers stay those of the file).
Macro expressions: numbers, ``true``/``false``, quoted strings, defined names, ``+ - * /``,
comparisons, ``&& || !`` and parentheses. Loops (``@#for``) and ``@#include`` are outside
the subset and refused with the line.
"""

from __future__ import annotations

import re

from .errors import DynareError, Location

_DIRECTIVE = re.compile(r"^\s*@#\s*(\w+)\s*(.*?)\s*$")
_SUBST = re.compile(r"@\{\s*(\w+)\s*\}")
_MACRO_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?)|(\w+)|('[^']*'|\"[^\"]*\")"
                          r"|(==|!=|<=|>=|&&|\|\||[-+*/()<>!]))")


def strip_comments(text):
    """``text`` with comments replaced by spaces (newlines kept); quotes and ``$...$`` (TeX
    names) are skipped so a ``%`` inside them is not a comment."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"$":
            j = text.find(ch, i + 1)
            nl = text.find("\n", i + 1)
            # an unmatched quote on its line is left for the lexer to report
            i = j + 1 if j != -1 and (nl == -1 or j < nl) else i + 1
            continue
        if ch == "%" or text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j == -1 else j
            out[i:j] = " " * (j - i)
            i = j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j == -1 else j + 2
            out[i:j] = [c if c == "\n" else " " for c in text[i:j]]
            i = j
            continue
        i += 1
    return "".join(out)


_MACRO_OPS = {"*": lambda a, b: a * b, "/": lambda a, b: a / b,
              "+": lambda a, b: a + b, "-": lambda a, b: a - b,
              "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
              "<": lambda a, b: a < b, ">": lambda a, b: a > b,
              "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
              "&&": lambda a, b: bool(a) and bool(b), "||": lambda a, b: bool(a) or bool(b)}


def _macro_tokens(expr, where):
    pos, toks = 0, []
    expr = expr.rstrip()
    while pos < len(expr):
        m = _MACRO_TOKEN.match(expr, pos)
        if not m:
            raise DynareError(f"cannot read the macro expression {expr!r}", where,
                              "Use numbers, names, strings, comparisons, && || ! and parentheses")
        toks.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return toks


def evaluate(expr, defines, where):
    """Value of a macro expression (Python bool/float/str) given the ``@#define``\\ s."""
    toks = _macro_tokens(expr, where)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def atom():
        t = take() if peek() is not None else None
        if t is None:
            raise DynareError(f"incomplete macro expression {expr!r}", where)
        if t == "(":
            v = disjunction()
            if take() != ")":
                raise DynareError(f"missing ')' in macro expression {expr!r}", where)
            return v
        if t == "!":
            return not atom()
        if t == "-":
            return -atom()
        if t == "defined" and peek() == "(":
            take()
            name = take()
            take()
            return name in defines
        return _token_value(t, defines, where)

    def binary(sub, ops):
        def parse():
            v = sub()
            while peek() in ops:
                op = take()
                w = sub()
                v = _MACRO_OPS[op](v, w)
            return v
        return parse

    product = binary(atom, ("*", "/"))
    total = binary(product, ("+", "-"))
    comparison = binary(total, ("==", "!=", "<", ">", "<=", ">="))
    conjunction = binary(comparison, ("&&",))
    disjunction = binary(conjunction, ("||",))
    value = disjunction()
    if pos != len(toks):
        raise DynareError(f"unexpected '{toks[pos]}' in macro expression {expr!r}", where)
    return value


def _token_value(t, defines, where):
    """The value of a one-token atom: a quoted string, a number, ``true``/``false`` or a name
    given by ``@#define``."""
    if t[0] in "'\"":
        return t[1:-1]
    if t[0].isdigit():
        return float(t)
    if t in ("true", "false"):
        return t == "true"
    if t not in defines:
        raise DynareError(f"macro variable '{t}' is not defined", where,
                          "Add '@#define " + t + " = ...' before this line")
    return defines[t]


def _format(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def preprocess(text, file="<string>", defines=None):
    """``(text, defines)``: comments blanked, macro directives applied, line numbers kept.

    :param defines: initial macro variables (like Dynare's ``-D`` command-line option).
    """
    defines = dict(defines or {})
    lines = strip_comments(text).split("\n")
    # each frame: (this branch on, some branch taken, enclosing on, line of the @#if)
    stack = []
    active = True
    out = []
    for number, line in enumerate(lines, start=1):
        m = _DIRECTIVE.match(line)
        if m is None:
            if active:
                out.append(_SUBST.sub(lambda s: _substitute(s, defines, file, number), line))
            else:
                out.append("")
            continue
        word, rest = m.group(1), m.group(2)
        where = Location(file, number, line.index("@#") + 1)
        out.append("")
        if word == "define":
            if active:
                name, eq, expr = rest.partition("=")
                if not eq or not name.strip().isidentifier():
                    raise DynareError("expected '@#define NAME = value'", where)
                defines[name.strip()] = evaluate(expr, defines, where)
        elif word in ("if", "ifdef", "ifndef"):
            if word == "if":
                cond = active and bool(evaluate(rest, defines, where))
            else:
                cond = active and ((rest.strip() in defines) == (word == "ifdef"))
            stack.append((active, cond, where))
            active = cond
        elif word in ("elseif", "else", "endif"):
            if not stack:
                raise DynareError(f"'@#{word}' without an opening '@#if'", where)
            outer, taken, opened = stack[-1]
            if word == "endif":
                stack.pop()
                active = outer
            else:
                cond = not taken and outer and (
                    word == "else" or bool(evaluate(rest, defines, where)))
                stack[-1] = (outer, taken or cond, opened)
                active = cond
        else:
            raise DynareError(f"the macro directive '@#{word}' is outside the supported subset",
                              where, "Expand it by hand (or run Dynare's macro processor with "
                              "'savemacro' and read the expanded file)")
    if stack:
        raise DynareError("'@#if' without '@#endif'", stack[-1][2])
    return "\n".join(out), defines


def _substitute(match, defines, file, number):
    name = match.group(1)
    if name not in defines:
        raise DynareError(f"macro variable '{name}' is not defined",
                          Location(file, number, match.start() + 1))
    return _format(defines[name])
