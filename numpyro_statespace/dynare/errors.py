"""Errors of the ``.mod`` reader: a :class:`ValueError` that cites ``file:line:col``."""

from __future__ import annotations

from typing import NamedTuple


class Location(NamedTuple):
    """Where a token starts: the file name (``"<string>"`` for text) and 1-based line, column."""
    file: str
    line: int
    col: int

    def __str__(self):
        return f"{self.file}:{self.line}:{self.col}"


class DynareError(ValueError):
    """A ``.mod`` file outside the supported subset, or wrong: ``file:line:col: what; hint``.

    :param message: what is wrong; :param where: a :class:`Location` (or None when the error
        concerns the whole file); :param hint: what to do about it.
    """

    def __init__(self, message, where=None, hint=None):
        self.where = where
        self.hint = hint
        text = f"{where}: {message}" if where is not None else message
        if hint:
            text = f"{text}. {hint}"
        super().__init__(text)
