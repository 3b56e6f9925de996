"""Tokens of a (comment-free, macro-expanded) ``.mod`` text, and a cursor over them.

Kinds: ``num`` (``1``, ``.5``, ``1e-3``), ``name``, ``str`` (``'...'`` or ``"..."``) and
``op`` (punctuation and operators). TeX names ``$...$`` are dropped: they only label output.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import DynareError, Location

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\v]+|\n)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_]\w*)
  | (?P<str>'[^'\n]*'|"[^"\n]*")
  | (?P<tex>\$[^$]*\$)
  | (?P<op><=|>=|==|!=|&&|\|\||[-+*/^=<>(),;:\[\]\#!&|.~{}@])
""", re.VERBOSE)


class Token(NamedTuple):
    kind: str
    text: str
    where: Location


def tokenize(text, file="<string>"):
    """The tokens of ``text``; anything else is a :class:`DynareError` with its place."""
    tokens = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        where = Location(file, line, pos - line_start + 1)
        if m is None:
            raise DynareError(f"unexpected character {text[pos]!r}", where,
                              "Remove it or check the statement's syntax")
        kind, value = m.lastgroup, m.group()
        if kind == "tex":
            line += value.count("\n")
            if "\n" in value:
                line_start = m.start() + value.rindex("\n") + 1
        elif kind == "space":
            if value == "\n":
                line += 1
                line_start = m.end()
        else:
            tokens.append(Token(kind, value, where))
        pos = m.end()
    tokens.append(Token("end", "", Location(file, line, pos - line_start + 1)))
    return tokens


class Cursor:
    """A position in the token list, with the checks the parsers need."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.i = 0

    def peek(self, ahead=0):
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self):
        tok = self.peek()
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def at(self, text, ahead=0):
        tok = self.peek(ahead)
        return tok.kind in ("op", "name") and tok.text == text

    def accept(self, text):
        if self.at(text):
            return self.next()
        return None

    def expect(self, text, what=None):
        tok = self.peek()
        if not self.at(text):
            found = tok.text or "the end of the file"
            raise DynareError(f"expected '{text}'{' ' + what if what else ''}, found '{found}'",
                              tok.where, "Check the statement's syntax (a missing ';'?)")
        return self.next()

    def name(self, what="a name"):
        tok = self.peek()
        if tok.kind != "name":
            found = tok.text or "the end of the file"
            raise DynareError(f"expected {what}, found '{found}'", tok.where)
        return self.next()

    def skip_statement(self):
        """Tokens up to and including the next ``;`` outside brackets."""
        depth, out = 0, []
        while True:
            tok = self.next()
            if tok.kind == "end":
                raise DynareError("statement without a closing ';'", out[0].where if out
                                  else tok.where, "Add the ';'")
            if tok.kind == "op" and tok.text in "([{":
                depth += 1
            elif tok.kind == "op" and tok.text in ")]}":
                depth -= 1
            elif tok.kind == "op" and tok.text == ";" and depth <= 0:
                return out
            out.append(tok)
