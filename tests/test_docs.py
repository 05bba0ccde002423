"""README.md documents the command tree as it is: every command, and no command that is not."""

from __future__ import annotations

import re

import click
import pytest

from tests.conftest import ROOT
from workbench.cli import main

Path_ = tuple[str, ...]

# `$ workbench jury add ...` on a console line, or `workbench jury add ...` in backticks.
CONSOLE_LINE = re.compile(r"^\$ workbench((?: \S+)*)", re.MULTILINE)
CODE_SPAN = re.compile(r"`workbench((?: [^`\s]+)+)`")


def command_tree(group: click.Group, prefix: Path_ = ()) -> dict[Path_, click.Command]:
    """Every command and subcommand under `group`, walked recursively, by its path."""
    tree: dict[Path_, click.Command] = {}
    for name, command in group.commands.items():
        if command.hidden:
            continue
        path = (*prefix, name)
        tree[path] = command
        if isinstance(command, click.Group):
            tree.update(command_tree(command, path))
    return tree


def mentions(text: str) -> list[list[str]]:
    """The words after `workbench` in every command line the text shows."""
    found = [m.group(1).split() for m in CONSOLE_LINE.finditer(text)]
    found += [m.group(1).split() for m in CODE_SPAN.finditer(text)]
    return found


def documented(text: str, root: click.Group) -> tuple[set[Path_], set[Path_]]:
    """(the command paths the text documents, the documented paths that do not exist).

    The words of a mention are read as long as they name a command: under a group the
    next word must be one of its subcommands (`workbench jury frobnicate` is a documented
    command that does not exist), a plain command takes the rest as its arguments, and an
    option (`workbench --help`) ends the path. A path documents its groups too.
    """
    paths: set[Path_] = set()
    unknown: set[Path_] = set()
    for words in mentions(text):
        command: click.Command = root
        path: Path_ = ()
        for word in words:
            if not isinstance(command, click.Group) or word.startswith("-"):
                break
            sub = command.commands.get(word)
            if sub is None:
                unknown.add((*path, word))
                break
            command, path = sub, (*path, word)
        paths.update(path[:n] for n in range(1, len(path) + 1))
    return paths, unknown


def unknown_options(text: str, root: click.Group) -> set[tuple[str, str]]:
    """(command, option) for every `--option` the text shows that its command does not take."""
    bad = set()
    for words in mentions(text):
        command: click.Command = root
        path: list[str] = []
        for word in words:
            if isinstance(command, click.Group) and word in command.commands:
                command = command.commands[word]
                path.append(word)
            elif word.startswith("-"):
                option = word.split("=")[0]
                known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
                if option not in known | {"--help", "-h"}:
                    bad.add((" ".join(path), option))
    return bad


@pytest.fixture(scope="module")
def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_command_tree_is_walked_into_groups() -> None:
    tree = command_tree(main)
    assert ("jury",) in tree and ("jury", "add") in tree and ("jury", "list") in tree
    assert all(len(path) == 1 or path[:-1] in tree for path in tree)


def test_readme_documents_every_command_and_subcommand(readme: str) -> None:
    paths, _ = documented(readme, main)
    missing = sorted(" ".join(p) for p in set(command_tree(main)) - paths)
    assert missing == [], f"README.md does not document: {missing}"


def test_every_command_the_readme_documents_exists(readme: str) -> None:
    _, unknown = documented(readme, main)
    assert sorted(" ".join(p) for p in unknown) == []


def test_every_option_the_readme_shows_exists(readme: str) -> None:
    assert unknown_options(readme, main) == set()


def _section(text: str, heading: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = text.index(f"{heading}\n")
    rest = text[start + len(heading) + 1 :]
    end = re.search(rf"^#{{1,{len(level)}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def test_readme_lists_the_isolation_levels_of_the_registry(readme: str) -> None:
    from workbench.runner.isolation import isolation_levels

    section = _section(readme, "## Isolation")
    assert sorted(re.findall(r"^- `([a-z]+)`", section, re.MULTILINE)) == isolation_levels.names()


def test_readme_names_every_dossier_state(readme: str) -> None:
    from workbench.dossiers import STATES

    section = _section(readme, "### `workbench decide` — move a dossier through its states")
    assert {s for s in STATES if f"`{s}`" not in section} == set()


def test_readme_says_how_to_try_and_test(readme: str) -> None:
    assert "make demo" in readme and "make test" in readme


@click.group()
def _toy() -> None:
    """A command tree for checking the README reader itself."""


@_toy.command()
@click.argument("call")
@click.option("--json", "as_json", is_flag=True)
def run(call: str, as_json: bool) -> None: ...


@_toy.group()
def db() -> None: ...


@db.command()
def upgrade() -> None: ...


@db.command()
def current() -> None: ...


def test_the_reader_follows_groups_and_stops_at_arguments_and_options() -> None:
    text = (
        "### `workbench run` — run\n"
        "```console\n$ workbench run diat/x --json\n$ workbench db upgrade\n```\n"
        "`workbench --help` lists them. See also `workbench db current`.\n"
        "$ git clone x workbench && cd workbench\n"
    )
    paths, unknown = documented(text, _toy)
    assert paths == {("run",), ("db",), ("db", "upgrade"), ("db", "current")}
    assert unknown == set()


def test_the_reader_reports_a_subcommand_missing_from_the_docs() -> None:
    paths, _ = documented("$ workbench db upgrade\n$ workbench run x\n", _toy)
    assert set(command_tree(_toy)) - paths == {("db", "current")}


def test_the_reader_reports_documented_commands_that_do_not_exist() -> None:
    text = "$ workbench frobnicate diat\nUse `workbench db downgrade` then `workbench run x`.\n"
    _, unknown = documented(text, _toy)
    assert unknown == {("frobnicate",), ("db", "downgrade")}


def test_the_reader_reports_options_a_command_does_not_take() -> None:
    text = "$ workbench run x --json --jsno\n$ workbench db upgrade --to head\n"
    assert unknown_options(text, _toy) == {("run", "--jsno"), ("db upgrade", "--to")}
