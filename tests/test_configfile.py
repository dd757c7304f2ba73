"""site_model.configfile: TOML reading and pydantic errors as one path + sentence per place."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from edge.config import ConfigError, ConfigProblem, load_config
from site_model.configfile import (
    ConfigFileError,
    problems_from_validation_error,
    read_toml,
)
from site_model.configfile import ConfigProblem as SharedProblem
from site_model.site import SiteError, SiteProblem, load_site


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Model):
    count: int = Field(ge=0)
    pattern: str


class Cat(_Model):
    kind: Literal["cat"]
    lives: int


class Dog(_Model):
    kind: Literal["dog"]
    bark: str


def _pet_kind(value: Any) -> str | None:
    return value.get("kind") if isinstance(value, dict) else None


class Holder(_Model):
    name: str
    size: int | list[Annotated[str, Field(pattern=r"^\w+$")]] | Range
    pets: list[
        Annotated[Annotated[Cat, Tag("cat")] | Annotated[Dog, Tag("dog")], Discriminator(_pet_kind)]
    ] = Field(default_factory=list)
    table: dict[Annotated[str, Field(pattern=r"^[a-z]+$")], int] = Field(default_factory=dict)


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        Holder.model_validate(data)
    except ValidationError as exc:
        return [(p.path, p.message) for p in problems_from_validation_error(exc, data)]
    return []


@pytest.mark.parametrize(
    ("data", "expected_path", "words"),
    [
        pytest.param(
            {"name": "a", "size": "big"}, "size", "a whole number, a list or a table", id="no-form"
        ),
        pytest.param({"name": "a", "size": 2.5}, "size", "not an accepted form", id="float"),
        pytest.param(
            {"name": "a", "size": {"count": -1, "pattern": "p"}},
            "size.count",
            "greater than or equal to 0",
            id="table-bad-field",
        ),
        pytest.param(
            {"name": "a", "size": ["ok", "not ok"]},
            "size.1",
            "should match pattern",
            id="list-bad-item",
        ),
        pytest.param(
            {"name": "a", "size": 1, "pets": [{"kind": "cat", "lives": "nine"}]},
            "pets.0.lives",
            "valid integer",
            id="discriminated-member",
        ),
        pytest.param(
            {"name": "a", "size": 1, "pets": [{"kind": "dog", "bark": "w", "tail": 1}]},
            "pets.0.tail",
            "unknown setting",
            id="discriminated-extra",
        ),
    ],
)
def test_configfile_union_errors_become_one_problem(
    data: dict[str, Any], expected_path: str, words: str
) -> None:
    """A union refusing a value gives exactly one problem, at a real path, with no member names."""
    got = problems(data)
    assert len(got) == 1, got
    path, message = got[0]
    assert path == expected_path
    assert words in message
    for internal in ("int", "list[", "Range", "constrained", "cat.", "dog."):
        assert internal not in path


def test_configfile_plain_errors_keep_their_paths_and_words() -> None:
    """Missing, unknown and bad dict-key settings read as before, each at its path."""
    got = problems({"size": 3, "colour": "red", "table": {"UPPER": 1, "ok": "x"}})
    assert ("name", "required setting is missing") in got
    assert ("colour", "unknown setting (misspelt, or in the wrong section?)") in got
    assert any(path == "table.UPPER.[key]" and "pattern" in msg for path, msg in got)
    assert any(path == "table.ok" and "valid integer" in msg for path, msg in got)
    assert len(got) == 4


def test_configfile_key_named_like_a_member_is_a_key() -> None:
    """A file key that happens to equal a member name ('int') is still the file's key."""
    got = problems({"name": "a", "size": {"int": 1, "count": 1, "pattern": "p"}})
    assert got == [("size.int", "unknown setting (misspelt, or in the wrong section?)")]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param(b"a = [1,", "not valid TOML", id="not-toml"),
        pytest.param(b"a = '\xff'", "not UTF-8", id="not-utf8"),
    ],
)
def test_configfile_read_toml_refuses_with_one_problem(
    tmp_path: Path, content: bytes, words: str
) -> None:
    """A file that is not TOML text: one problem with no path, the file named as the source."""
    path = tmp_path / "x.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigFileError) as caught:
        read_toml(path)
    assert caught.value.source == str(path)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].path == ""
    assert words in caught.value.problems[0].message


def test_configfile_read_toml_missing_file(tmp_path: Path) -> None:
    """A missing file: 'cannot read the file' and the reason."""
    with pytest.raises(ConfigFileError, match="cannot read the file: No such file"):
        read_toml(tmp_path / "absent.toml")


def test_configfile_read_toml_gives_the_document(tmp_path: Path) -> None:
    """Good TOML: the parsed document."""
    path = tmp_path / "x.toml"
    path.write_text('[a]\nb = "c"\n', encoding="utf-8")
    assert read_toml(path) == {"a": {"b": "c"}}


def test_configfile_both_loaders_keep_their_public_names(tmp_path: Path) -> None:
    """edge's ConfigError/ConfigProblem and central's SiteError/SiteProblem still work."""
    path = tmp_path / "bad.toml"
    path.write_text("a = [", encoding="utf-8")
    with pytest.raises(ConfigError) as edge:
        load_config(path)
    with pytest.raises(SiteError) as site:
        load_site(path)
    for caught in (edge.value, site.value):
        assert isinstance(caught, ConfigFileError)
        assert isinstance(caught, ValueError)
        assert caught.source == str(path)
        assert "not valid TOML" in str(caught)
    assert ConfigProblem is SharedProblem
    assert SiteProblem("lots.P1", "x") == ConfigProblem("lots.P1", "x")
    assert str(SiteProblem("lots.P1", "x")) == "lots.P1: x"
