"""JSON read strictly, but without letting one bad value cost a whole request.

Python's `json` accepts what JSON is not (NaN, Infinity, numbers past float range, which would be
stored as null), resolves duplicate keys silently (last wins), and refuses a whole document for
one integer longer than it converts, one byte that is not UTF-8 or one value nested deeper than
its recursion allows. Here such values parse into markers instead, so the envelope can still be
read and each event judged on its own: an event holding a marker is rejected with a reason
naming the place (see `first_problem`).
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any


class NotJson:
    """A value JSON cannot carry faithfully, as it was written (NaN, 1e400, 5000 digits)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text if len(text) <= 40 else f"{text[:20]}… ({len(text)} characters)"


class DuplicateKeys(dict[str, Any]):
    """An object in which some key appears more than once; its values are the last ones."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    marked = DuplicateKeys(found)
    marked.duplicates = tuple(sorted(k for k, n in counts.items() if n > 1))
    return marked


def _float(text: str) -> float | NotJson:
    value = float(text)
    return value if math.isfinite(value) else NotJson(text)


def _int(text: str) -> int | NotJson:
    return int(text) if len(text.lstrip("-")) <= sys.get_int_max_str_digits() else NotJson(text)


def loads(data: bytes) -> Any:
    """Parse a body. Bytes that are not UTF-8 become lone surrogates (inside a string they are
    that event's problem, caught when it is encoded; elsewhere the JSON is invalid anyway).
    Nesting too deep for the parser's recursion is cut off (see `_cut_deep`), so it is the
    event holding it that is rejected. Raises ValueError (or RecursionError) only when the
    document itself cannot be read."""
    text = data.decode("utf-8", errors="surrogateescape")
    try:
        return _parse(text)
    except RecursionError:  # rare and hostile: the slower pass runs only then
        return _parse(_cut_deep(text, CUT_DEPTH))


def _parse(text: str) -> Any:
    return json.loads(
        text,
        object_pairs_hook=_object,
        parse_float=_float,
        parse_int=_int,
        parse_constant=NotJson,
    )


# Deeper than any event may be (ingest.validation.MAX_DEPTH is 32, the envelope adds two), far
# shallower than the parser's recursion limit (~1000 frames).
CUT_DEPTH = 64
# What stands in for a cut-off container: a string holding lone surrogates, which no event can
# store, so the event is rejected whichever of its problems is found first (its depth, above).
TOO_DEEP = "\ud800nested too deep\ud800"
_STRINGS_AND_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _cut_deep(text: str, depth: int) -> str:
    """`text` with every container opened deeper than `depth` replaced by TOO_DEEP. Iterative,
    over strings and brackets only; an unbalanced document stays unbalanced (and invalid)."""
    pieces, level, cut, kept = [], 0, -1, 0
    for token in _STRINGS_AND_BRACKETS.finditer(text):
        bracket = token.group()
        if bracket[0] == '"':
            continue
        if bracket in "[{":
            level += 1
            if level == depth + 1:
                cut = token.start()
        else:
            if level == depth + 1 and cut >= 0:
                pieces += [text[kept:cut], json.dumps(TOO_DEEP)]
                kept, cut = token.end(), -1
            level -= 1
    pieces.append(text[kept:])
    return "".join(pieces)


def first_problem(value: Any, max_depth: int) -> str | None:
    """What makes `value` unfit to store, with its place: nesting deeper than `max_depth`, a
    value JSON cannot carry, a duplicated key. Iterative, so hostile input cannot exhaust our
    own stack."""
    if _sound(value, max_depth):  # the common case, without building a path for every value
        return None
    return _named_problem(value, max_depth)


def _named_problem(value: Any, max_depth: int) -> str | None:
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        current, path, level = stack.pop()
        if isinstance(current, NotJson):
            return f"{path or 'a value'} is {current.text}, which JSON cannot carry"
        if isinstance(current, dict):
            if level > max_depth:
                return f"the event is nested deeper than {max_depth} levels"
            if isinstance(current, DuplicateKeys):
                keys = ", ".join(repr(k) for k in current.duplicates)
                return f"{path or 'the event'} has duplicate keys: {keys}"
            stack.extend(
                (v, f"{path}.{k}" if path else str(k), level + 1) for k, v in current.items()
            )
        elif isinstance(current, list):
            if level > max_depth:
                return f"the event is nested deeper than {max_depth} levels"
            stack.extend((v, f"{path}[{i}]", level + 1) for i, v in enumerate(current))
    return None


def _sound(value: Any, max_depth: int) -> bool:
    """No problem `first_problem` would name anywhere in `value`; anything but plain JSON
    (a marker, a dict with duplicate keys) sends it to `first_problem`'s own walk."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, level = stack.pop()
        kind = type(current)
        if kind is dict or kind is list:
            if level > max_depth:
                return False
            children = current.values() if kind is dict else current
            stack.extend((child, level + 1) for child in children if type(child) not in _PLAIN)
        elif kind not in _PLAIN:
            return False
    return True


_PLAIN = frozenset((str, int, float, bool, type(None)))
