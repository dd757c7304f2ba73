"""Configuration files: read TOML, and turn pydantic's errors into path + sentence problems.

The edge box's config (``edge/config.py``) and central's site file (``site_model/site.py``)
report what is wrong the same way: every problem is a :class:`ConfigProblem` with a dotted
path into the file (``lots.P1.box_id``) and a plain sentence. This module is the shared part.

Unions. Pydantic validates a value against every member of a union (``int | list[str] |
Model``) and, when none fits, reports one error per member, each with the member's internal
name spliced into the location (``bays.int``, ``bays.list[constrained-str]``,
``bays.BayRange.count``). :func:`problems_from_validation_error` walks each location through
the data that was validated: a part that is not a key or an index of that data is such a
member name. The errors under one real location then become either the errors of the one
member that applies (the only member tried, or the only one that accepted the value's type
and failed further in, e.g. a table with one bad field), at their real paths; or, when the
value fits no member's type, ONE problem at the location naming the accepted forms.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

ModelT = TypeVar("ModelT", bound=BaseModel)

# Pydantic's own location parts that are not in the data: a dict key's own validation.
_SPECIAL_PARTS = frozenset({"[key]"})


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong in a config file: where, and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigFileError(ValueError):
    """A config file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: Sequence[ConfigProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")


def read_toml(path: Path | str) -> dict[str, Any]:
    """The parsed TOML document; :class:`ConfigFileError` (one problem, no path) if not."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = ConfigProblem("", f"cannot read the file: {exc.strerror or exc}")
        raise ConfigFileError(str(path), [problem]) from None
    except UnicodeDecodeError:
        raise ConfigFileError(
            str(path), [ConfigProblem("", "the file is not UTF-8 text")]
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(str(path), [ConfigProblem("", f"not valid TOML: {exc}")]) from None


@dataclass(frozen=True, slots=True)
class _Located:
    real: tuple[str | int, ...]  # the location in the data
    member: str | None  # the first union member name met, if any
    rest: tuple[str | int, ...]  # the data location below the member (its own field)
    error: ErrorDetails


def _locate(error: ErrorDetails, data: object) -> _Located:
    loc = tuple(error["loc"])
    real: list[str | int] = []
    member: str | None = None
    rest: list[str | int] = []
    node: object = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        found, child = _child(node, part)
        if found and last and _input_is(error, node) and not _input_is(error, child):
            # The error is about the value found so far, not its key ``part``: ``part`` is a
            # member name that happens to be a key of the file too (bays = {int = 1}).
            found = False
        if found:
            node = child
        elif part in _SPECIAL_PARTS or (last and error["type"] == "missing"):
            node = None
        else:
            # Not in the data: the name pydantic gives a union member. What follows is that
            # member's attempt at the value found so far; the node stays where it is.
            if member is None:
                member = str(part)
            continue
        (real if member is None else rest).append(part)
    return _Located(tuple(real), member, tuple(rest), error)


def _child(node: object, part: str | int) -> tuple[bool, object]:
    """``node[part]`` when ``part`` is a key or an index of ``node``."""
    if isinstance(node, Mapping) and part in node:
        return True, node[part]
    if isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


def _input_is(error: ErrorDetails, value: object) -> bool:
    return "input" in error and error["input"] is value


def _sentence(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown setting (misspelt, or in the wrong section?)"
    if error["type"] == "missing":
        return "required setting is missing"
    return error["msg"].removeprefix("Value error, ")


_FORMS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "str": "text",
    "constrained-str": "text",
    "list": "a list",
    "tuple": "a list",
    "set": "a list",
    "dict": "a table",
    "literal": "one of the listed words",
}


def _form(member: str) -> str:
    head = member.split("[", 1)[0]
    if head in _FORMS:
        return _FORMS[head]
    if head[:1].isupper():
        return "a table"
    return head.replace("-", " ")


def _dotted(parts: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in parts)


def _union_problems(located: list[_Located]) -> list[ConfigProblem]:
    """Every member's errors at one union location: the errors of the member that applies,
    or one sentence naming the accepted forms."""
    by_member: dict[str, list[_Located]] = {}
    for item in located:
        by_member.setdefault(item.member or "", []).append(item)
    # A member whose errors all lie below the value accepted the value's type and got
    # further (a table with one bad field): its errors are the ones that say what to fix.
    # A lone member (a discriminated union picks one) is the one that applies.
    deeper = [m for m, items in by_member.items() if all(item.rest for item in items)]
    chosen = next(iter(by_member)) if len(by_member) == 1 else None
    if chosen is None and len(deeper) == 1:
        chosen = deeper[0]
    if chosen is not None:
        return [
            ConfigProblem(_dotted(item.real + item.rest), _sentence(item.error))
            for item in by_member[chosen]
        ]
    forms = list(dict.fromkeys(_form(m) for m in by_member))
    accepted = forms[0] if len(forms) == 1 else f"{', '.join(forms[:-1])} or {forms[-1]}"
    return [ConfigProblem(_dotted(located[0].real), f"not an accepted form: give {accepted}")]


def problems_from_validation_error(exc: ValidationError, data: object) -> list[ConfigProblem]:
    """One :class:`ConfigProblem` per location in ``data`` that pydantic refused.

    ``data`` is what was validated (the parsed TOML), used to tell the file's own keys from
    the union member names pydantic splices into locations. Order follows pydantic's; a
    problem repeated word for word is given once.
    """
    located = [_locate(error, data) for error in exc.errors()]
    unions: dict[tuple[str | int, ...], list[_Located]] = {}
    for item in located:
        if item.member is not None:
            unions.setdefault(item.real, []).append(item)
    problems: list[ConfigProblem] = []
    for item in located:
        if item.member is None:
            problems.append(ConfigProblem(_dotted(item.real), _sentence(item.error)))
        elif unions[item.real][0] is item:
            problems.extend(_union_problems(unions[item.real]))
    return list(dict.fromkeys(problems))


def validate_file_data(
    data: dict[str, Any],
    *,
    model: type[ModelT],
    cross_check: Callable[[ModelT], list[ConfigProblem]],
    error: type[ConfigFileError],
    source: str,
) -> ModelT:
    """Validate parsed TOML field by field, then across sections; ``error`` lists every problem."""
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        raise error(source, problems_from_validation_error(exc, data)) from None
    problems = cross_check(validated)
    if problems:
        raise error(source, problems)
    return validated


def load_file_data(path: Path | str, *, error: type[ConfigFileError]) -> dict[str, Any]:
    """``read_toml``, with its problem raised as ``error`` (the caller's own error type)."""
    try:
        return read_toml(path)
    except ConfigFileError as exc:
        raise error(exc.source, exc.problems) from None


def file_hash(path: Path | str) -> str:
    """SHA-256 of the file's bytes, short form: how a box or central names the file it runs."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
