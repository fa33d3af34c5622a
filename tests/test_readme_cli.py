"""The README and the CLI say the same thing: exit codes (one source, `ExitCode`), the command list, and every
flag the README or a command's --help example uses — checked by introspecting the Click group."""

from __future__ import annotations

import re
import shlex

import click
import pytest

import amz2erp.cli as cli_module
from amz2erp.cli import EXIT_CODES_HELP, cli
from amz2erp.errors import ExitCode
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _options(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}


def _mentions(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def _examples() -> list[tuple[str, str]]:
    """(where, command line) of every `amz2erp …` line in the README's shell blocks and the --help examples."""
    lines: list[tuple[str, str]] = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        lines += [("README", ln.split(" #")[0].strip()) for ln in block.splitlines()
                  if ln.strip().startswith("amz2erp ")]
    for name, command in cli.commands.items():
        for example in re.findall(r"Example: (amz2erp .*)", command.help or ""):
            lines.append((f"{name} --help", example.strip()))
    return lines


def test_readme_exit_code_table_is_the_enum() -> None:
    rows = re.findall(r"^\| (\d+) \| (.*?) \|$", _section("Exit codes"), re.M)
    assert [(int(code), text.replace("`", "")) for code, text in rows] == [(int(c), c.meaning) for c in ExitCode]


def test_help_epilog_and_module_docstring_list_every_exit_code() -> None:
    doc = cli_module.__doc__ or ""
    for code in ExitCode:
        line = f"{int(code):<4}{code.meaning}"
        assert line in EXIT_CODES_HELP and line in doc


def test_help_output_shows_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_module.run(["--help"]) == 0
    out = capsys.readouterr().out
    for code in ExitCode:
        assert re.search(rf"^\s+{int(code)}\s+{re.escape(code.meaning)}$", out, re.M), code


def test_internal_error_exits_70(capsys: pytest.CaptureFixture[str]) -> None:
    @click.command("boom-for-test")
    def boom() -> None:
        raise RuntimeError("simulated bug")

    cli.add_command(boom)
    try:
        assert cli_module.run(["boom-for-test"]) == ExitCode.INTERNAL == 70
    finally:
        cli.commands.pop("boom-for-test")
    assert "internal error: RuntimeError: simulated bug" in capsys.readouterr().err


def test_readme_documents_every_command_and_no_other() -> None:
    headings = re.findall(r"^### (.*)$", _section("Commands"), re.M)
    documented = {name for heading in headings for name in re.findall(r"`amz2erp ([\w-]+)`", heading)}
    assert documented == set(cli.commands)


def test_every_command_flag_is_documented_in_its_readme_section() -> None:
    commands = _section("Commands")
    global_opts = _options(cli)  # accepted after every command too; documented once, under "Commands"
    missing = []
    for name, command in cli.commands.items():
        match = re.search(rf"^### [^\n]*`amz2erp {re.escape(name)}`.*?(?=^### |\Z)", commands, re.M | re.S)
        assert match, name
        text = match.group(0) + (_section("Modes") if name in ("sync-orders", "backfill") else "")
        missing += [f"{name} {opt}" for opt in sorted(_options(command))
                    if opt.startswith("--") and opt != "--help" and opt not in global_opts
                    and not _mentions(text, opt)]
    assert missing == []


def test_every_global_option_is_documented() -> None:
    commands = _section("Commands")
    assert [opt for opt in sorted(_options(cli)) if opt.startswith("--") and not _mentions(commands, opt)
            and opt not in ("--help", "--version")] == []


@pytest.mark.parametrize(("where", "line"), _examples())
def test_every_example_uses_options_the_cli_has(where: str, line: str) -> None:
    args = shlex.split(line)[1:]
    global_opts = _options(cli)
    i = 0
    while i < len(args) and args[i].startswith("-"):
        assert args[i] in global_opts, f"{where}: {line}: {args[i]} is not a global option"
        i += 2 if args[i] in ("--config",) else 1
    assert i < len(args), f"{where}: {line}: no command"
    assert args[i] in cli.commands, f"{where}: {line}: no command {args[i]!r}"
    command = cli.commands[args[i]]
    for token in args[i + 1:]:
        if token.startswith("--"):
            assert token.split("=")[0] in _options(command), f"{where}: {line}: {args[i]} has no option {token}"
    # Click itself accepts the line (types, required options), without running the command
    ctx = cli.make_context("amz2erp", args[: i + 1])
    with ctx:
        command.make_context(args[i], args[i + 1:], parent=ctx)


def test_examples_were_found() -> None:
    where = [w for w, _ in _examples()]
    assert where.count("README") >= len(cli.commands)  # every command has a README example
    assert {w.removesuffix(" --help") for w in where if w != "README"} == set(cli.commands)
