"""The context examples of docs/infrastructure.md, read from the page itself so that the
page is the one list of examples the tests synthesize.

Every `cdk synth` / `cdk deploy` command (however the CLI is called: `npx cdk`, `cdk`,
`node_modules/.bin/cdk`) and every `make synth CDK_ARGS='...'` in a fenced `bash` block is
an example: `\\` continuations are joined, the line is split with shlex as a shell would,
and its `-c key=value` options are collected as the CDK CLI does (the value is the
string after the first `=`, keys starting with `aws:` are refused)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "infrastructure.md"
SHELL_FENCES = ("bash", "sh", "shell")
FENCE = re.compile(r"^```(?P<language>[\w-]*)[^\n]*\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
CDK_COMMANDS = ("synth", "deploy")
COMMAND_SEPARATORS = ("&&", "||", ";", "|")


class ExampleError(ValueError):
    """A command of the page that the CDK CLI would not accept either."""


@dataclass(frozen=True)
class Example:
    line: int
    """Line of the page where the command starts."""
    command: str
    """The command as written, continuations joined."""
    comment: str
    """The `# ...` lines right above the command, joined ("" if none)."""
    context: dict[str, str]
    """The command's `-c` options, as strings (as the CLI passes them)."""

    def __str__(self) -> str:
        described = f" ({self.comment})" if self.comment else ""
        return f"{DOC.name}:{self.line}{described}: {self.command}"

    @property
    def id(self) -> str:
        options = ",".join(self.context) or "default"
        return f"line{self.line}-{options}"


@dataclass(frozen=True)
class _LogicalLine:
    line: int
    text: str
    comment: str


def documented_examples(text: str | None = None) -> list[Example]:
    """Every example of the page (`text` replaces the page, for tests of the parser)."""
    text = DOC.read_text() if text is None else text
    examples = []
    for fence in FENCE.finditer(text):
        if fence.group("language") not in SHELL_FENCES:
            continue
        first_line = text.count("\n", 0, fence.start("body")) + 1
        for logical in _logical_lines(fence.group("body"), first_line):
            examples += _examples_of(logical)
    return examples


def _logical_lines(body: str, first_line: int) -> list[_LogicalLine]:
    """Commands with their `\\` continuations joined; the comment lines right above a
    command are its description."""
    found: list[_LogicalLine] = []
    comment = ""
    pending: list[str] = []
    start = first_line
    for number, raw in enumerate(body.splitlines(), start=first_line):
        if not pending:
            start = number
            if raw.lstrip().startswith("#"):
                comment = f"{comment} {raw.lstrip().lstrip('#').strip()}".strip()
                continue
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        pending.append(raw)
        text = " ".join(part.strip() for part in pending).strip()
        pending = []
        if text:
            found.append(_LogicalLine(start, text, comment))
        comment = ""
    if pending:
        raise ExampleError(f"{DOC.name}:{start}: the block ends inside a `\\` continuation")
    return found


def _examples_of(logical: _LogicalLine) -> list[Example]:
    try:
        tokens = shlex.split(logical.text, comments=True)
    except ValueError as exc:  # unbalanced quotes: a shell would not run it either
        raise ExampleError(f"{DOC.name}:{logical.line}: {exc}: {logical.text}") from None
    examples = []
    for command in _simple_commands(tokens):
        arguments = _cdk_arguments(command)
        if arguments is not None:
            context = _context_options(arguments, logical.line)
            examples.append(Example(logical.line, logical.text, logical.comment, context))
    return examples


def _simple_commands(tokens: list[str]) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in COMMAND_SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def _cdk_arguments(command: list[str]) -> list[str] | None:
    """The arguments after `cdk synth|deploy`, or of `make synth CDK_ARGS=...`; None
    for any other command."""
    for index, token in enumerate(command[:-1]):
        if Path(token).name == "cdk" and command[index + 1] in CDK_COMMANDS:
            return command[index + 2 :]
    if command[0] == "make" and "synth" in command[1:]:
        cdk_args = [t.removeprefix("CDK_ARGS=") for t in command if t.startswith("CDK_ARGS=")]
        return [argument for value in cdk_args for argument in shlex.split(value)]
    return None


def _context_options(arguments: list[str], line: int) -> dict[str, str]:
    context: dict[str, str] = {}
    for index, argument in enumerate(arguments):
        if argument in ("-c", "--context"):
            if index + 1 == len(arguments):
                raise ExampleError(f"{DOC.name}:{line}: {argument} without a value")
            assignment = arguments[index + 1]
        elif argument.startswith("--context="):
            assignment = argument.removeprefix("--context=")
        else:
            continue
        key, equals, value = assignment.partition("=")
        if not equals:
            raise ExampleError(f"{DOC.name}:{line}: -c {assignment} is not key=value")
        if key.startswith("aws:"):
            raise ExampleError(
                f"{DOC.name}:{line}: the CDK CLI refuses user context keys prefixed with "
                f"'aws:' ({key})"
            )
        context[key] = value
    return context
