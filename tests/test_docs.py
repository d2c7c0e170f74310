"""The README is a landing page and the guides in docs/ hold the rest: every link and picture resolves,
every guide is linked from the README, and every command in a shell block names real subcommands and
options (``gatys SUB --help``'s, read from the click command itself; a script's from its argparse ``--help``)."""
from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gatys.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDES = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *GUIDES]
SHELL_BLOCKS = {"bash", "sh", "shell", "console"}
README_MAX_LINES = 160

_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _blocks(text: str) -> tuple[list[tuple[str, int, list[str]]], list[tuple[int, str]]]:
    """(fenced blocks as (info, first line number, lines), prose lines as (line number, line))."""
    blocks, prose, current = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        fence = _FENCE.match(line)
        if current is None and fence:
            current = (fence.group(2), fence.group(3).lower(), number, [])
        elif current is not None and line.strip().startswith(current[0]) and not line.strip().strip(current[0][0]):
            blocks.append((current[1], current[2], current[3]))
            current = None
        elif current is not None:
            current[3].append(line)
        else:
            prose.append((number, line))
    assert current is None, f"unclosed code fence from line {current[2]}"
    return blocks, prose


def _links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and picture outside code, a link text that wraps a line too."""
    _, prose = _blocks(page.read_text())
    text = "\n".join(_INLINE_CODE.sub(lambda m: "x" * len(m.group(0)), line) for _, line in prose)
    return [(prose[text.count("\n", 0, match.start())][0], match.group(1)) for match in _LINK.finditer(text)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = _INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@functools.cache
def _anchors(page: Path) -> frozenset[str]:
    _, prose = _blocks(page.read_text())
    seen: dict[str, int] = {}
    anchors = set()
    for _, line in prose:
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = _slug(match.group(1))
            anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return frozenset(anchors)


# ---------------------------------------------------------------------------------------------
# the README and the links


def test_the_readme_is_a_landing_page():
    lines = README.read_text().splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines: move details to docs/"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_relative_link_and_picture_resolves(page: Path):
    broken = []
    for number, target in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):       # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{_rel(page)}:{number}: {target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{_rel(page)}:{number}: {target} (no heading with that anchor)")
    assert not broken, "\n".join(broken)


def test_every_guide_is_linked_from_the_readme():
    linked = {(ROOT / target.partition("#")[0]).resolve() for _, target in _links(README)
              if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I)}
    missing = [_rel(guide) for guide in GUIDES if guide.resolve() not in linked]
    assert GUIDES and not missing, f"guides the README does not link: {missing}"


# ---------------------------------------------------------------------------------------------
# commands in shell blocks


def _commands(info: str, lines: list[str]) -> list[str]:
    """The command lines of a shell block: continuation lines joined; in a console block only the
    lines after a prompt (`$ `, `head$ `), the rest being output."""
    commands, pending = [], None
    for line in lines:
        if pending is not None:
            pending += " " + line.strip()
        elif info == "console":
            prompt = re.match(r"^\s*[\w.@~:/-]*\$\s+(.*)$", line)
            if not prompt:
                continue
            pending = prompt.group(1)
        else:
            pending = line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        if pending.strip() and not pending.lstrip().startswith("#"):
            commands.append(pending.strip())
        pending = None
    return commands


def _segments(command: str) -> list[list[str]]:
    """Simple commands of a command line (split at &&, ||, ;, |), comments dropped, leading
    environment assignments and `export` dropped."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments, current = [], []
    for token in lexer:
        if token and set(token) <= set(";&|"):
            segments.append(current)
            current = []
        else:
            current.append(token)
    segments.append(current)
    cleaned = []
    for tokens in segments:
        while tokens and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]):
            tokens = tokens[1:]
        if tokens and tokens[0] != "export":
            cleaned.append(tokens)
    return cleaned


def _shell_commands() -> list[tuple[str, str, list[str]]]:
    """(where, the command line, one simple command's tokens) for every simple command in every
    shell block of the README and the guides."""
    found = []
    for page in PAGES:
        blocks, _ = _blocks(page.read_text())
        for info, first, lines in blocks:
            if info in SHELL_BLOCKS:
                for command in _commands(info, lines):
                    for tokens in _segments(command):
                        found.append((f"{_rel(page)}:{first}", command, tokens))
    return found


def _option_names(tokens: list[str]) -> list[str]:
    names = []
    for token in tokens:
        if token == "--":
            break
        token = token.strip("[]")
        if re.match(r"^--?[A-Za-z]", token):
            names.append(token.split("=", 1)[0])
    return names


@functools.cache
def _click_options(subcommand: str) -> frozenset[str]:
    command = cli.commands[subcommand]
    ctx = click.Context(command, info_name=subcommand, parent=click.Context(cli, info_name="gatys"))
    params = [*command.params, command.get_help_option(ctx)]
    return frozenset(opt for param in params if isinstance(param, click.Option)
                     for opt in (*param.opts, *param.secondary_opts))


@functools.cache
def _script_options(*target: str) -> frozenset[str] | None:
    """The options a script's argparse `--help` lists, or None where the script has no argparse
    (its --help would run it)."""
    if target[0] == "-m":
        module = ROOT.joinpath(*target[1].split("."))
        source = module / "__main__.py" if module.is_dir() else module.with_suffix(".py")
    else:
        source = ROOT / target[0]
    if "argparse" not in source.read_text():
        return None
    result = subprocess.run([sys.executable, *target, "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(target)} --help failed:\n{result.stderr[-2000:]}"
    return frozenset(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", result.stdout))


def _check(tokens: list[str]) -> list[str]:
    """What is wrong with one simple command: an unknown subcommand, option, file or module."""
    program = Path(tokens[0]).name
    if program == "gatys":
        if len(tokens) < 2 or tokens[1] in {"--help", "-h", "--version"} or tokens[1].isupper():
            return []                                            # `gatys SUBCOMMAND --help`: a placeholder
        if tokens[1] not in cli.commands:
            return [f"no subcommand {tokens[1]!r} (gatys has {sorted(cli.commands)})"]
        known = _click_options(tokens[1])
        return [f"gatys {tokens[1]} has no option {name}" for name in _option_names(tokens[2:])
                if name not in known]
    if program in {"python", "python3"} and len(tokens) > 1:
        if tokens[1] == "-m" and len(tokens) > 2:
            module = tokens[2]
            if module.split(".")[0] not in {"benchmarks", "examples", "gatys", "losses"}:
                return []                                        # pytest, venv, pip: not ours
            path = ROOT.joinpath(*module.split("."))
            if not (path.is_dir() and (path / "__main__.py").exists()) and not path.with_suffix(".py").exists():
                return [f"no module {module}"]
            target, rest = ("-m", module), tokens[3:]
        elif tokens[1].endswith(".py"):
            if not (ROOT / tokens[1]).is_file():
                return [f"no script {tokens[1]}"]
            target, rest = (tokens[1],), tokens[2:]
        else:
            return []
        names = _option_names(rest)
        known = _script_options(*target) if names else None
        if known is None:
            return []
        return [f"{' '.join(target)} has no option {name}" for name in names if name not in known]
    if program == "bash" and len(tokens) > 1 and tokens[1].endswith(".sh"):
        return [] if (ROOT / tokens[1]).is_file() else [f"no script {tokens[1]}"]
    return []


def _inline_commands() -> list[tuple[str, str, list[str]]]:
    """Commands quoted in prose (`gatys compare ... --batch N`, `python -m benchmarks --quick`), a
    code span that wraps a line read as one."""
    found = []
    for page in PAGES:
        _, prose = _blocks(page.read_text())
        text = "\n".join(line for _, line in prose)
        for match in re.finditer(r"(?<!`)`([^`]+)`(?!`)", text):
            code = " ".join(match.group(1).split())
            if re.match(r"(gatys [a-z]|python3? (-m )?(benchmarks|examples)\b|bash \S+\.sh)", code):
                found.extend((_rel(page), code, tokens) for tokens in _segments(code))
    return found


def test_the_extractor_reads_chains_continuations_and_prompts():
    assert _commands("bash", ["a \\", "  --x 1  # c", "# only a comment", "b | c"]) == ["a --x 1  # c", "b | c"]
    assert _commands("console", ["$ gatys info", "output", "head$   ray start \\", "  --head"]) == [
        "gatys info", "ray start --head"]
    assert _segments('X=1 gatys transfer a b --size 2 && pip install -e ".[test]" | tee log  # note') == [
        ["gatys", "transfer", "a", "b", "--size", "2"], ["pip", "install", "-e", ".[test]"], ["tee", "log"]]
    assert _check(["gatys", "transfer", "a.png", "b.png", "--sise", "2"]) == ["gatys transfer has no option --sise"]
    assert _check(["gatys", "transfr"])[0].startswith("no subcommand 'transfr'")
    assert _check(["gatys", "gallery", "s.toml", "--no-cuda-graph"]) == ["gatys gallery has no option --no-cuda-graph"]
    assert _check(["python", "examples/nothing.py"]) == ["no script examples/nothing.py"]
    assert _check(["python", "-m", "benchmarks.nothing"]) == ["no module benchmarks.nothing"]


@pytest.mark.parametrize("extract", [_shell_commands, _inline_commands], ids=["shell blocks", "prose"])
def test_every_documented_command_names_real_subcommands_and_options(extract):
    commands = extract()
    assert sum(tokens[0] == "gatys" for _, _, tokens in commands) >= 5, "the extractor found too few commands"
    problems = [f"{where}: {problem}\n    {command}" for where, command, tokens in commands
                for problem in _check(tokens)]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# the two set-up commands


def _setup_commands() -> list[str]:
    text = README.read_text()
    start = text.index("\n## Set up\n")
    end = text.find("\n## ", start + 1)
    blocks, _ = _blocks(text[start:end if end != -1 else None])
    shell = [block for block in blocks if block[0] in SHELL_BLOCKS]
    assert len(shell) == len(blocks) == 2, "the set-up section has exactly two command blocks"
    commands = [_commands(info, lines) for info, _, lines in shell]
    assert all(len(block) == 1 for block in commands), "each set-up block is one command to paste"
    return [block[0] for block in commands]


def _pip_install_args(segments: list[list[str]]) -> list[list[str]]:
    return [[t for t in tokens[2:] if not t.startswith("-")] for tokens in segments
            if tokens[:2] == ["pip", "install"]]


def test_two_setup_commands_install_then_run_the_job_and_the_tests():
    first, second = _setup_commands()
    first_segments, second_segments = _segments(first), _segments(second)
    job = [tokens for tokens in first_segments if tokens[:2] == ["gatys", "transfer"]]
    assert _pip_install_args(first_segments) and len(job) == 1
    inputs = [token for token in job[0][2:] if not token.startswith("-")][:2]
    assert all((ROOT / path).is_file() for path in inputs), f"the bundled images {inputs}"
    assert ["python", "-m", "pytest"] in second_segments


def test_ci_runs_the_second_setup_command():
    _, second = _setup_commands()
    readme = _segments(second)
    ci = [tokens for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#") for tokens in _segments(line)]
    assert _pip_install_args(readme) and _pip_install_args(readme)[0] in _pip_install_args(ci), \
        ".ci/run installs what the README's test command installs"
    assert any(tokens[:3] == ["python", "-m", "pytest"] for tokens in ci)
