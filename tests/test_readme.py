"""The README's and docs/'s commands use flags that exist: every `ldm-video COMMAND ... --flag` in them (code
blocks and inline code) names an option of that command's parser, in its current spelling (not a deprecated one);
every page under docs/ is linked from the README, and every relative link between them leads to a file."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ldm_video.cli import COMMANDS, build_parser
from ldm_video.flags import DeprecatedFlag

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def _commands(text: str) -> list[tuple[str, str]]:
    """(command, the rest of its command line) for each `ldm-video COMMAND ...` in the README."""
    found = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.DOTALL):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            found += re.findall(r"ldm-video ([a-z][a-z-]*)((?: [^#`|]*)?)", line.split("#")[0])
    for inline in re.findall(r"`([^`\n]*ldm-video [^`\n]*)`", text):
        found += re.findall(r"ldm-video ([a-z][a-z-]*)((?: [^`|]*)?)", inline)
    return [(cmd, rest) for cmd, rest in found if cmd in COMMANDS]


def _options(parser: argparse.ArgumentParser, words: list[str]) -> tuple[set[str], set[str]]:
    """(current, deprecated) option strings of the parser a command line reaches (sub-commands followed)."""
    current, deprecated = set(), set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = next((w for w in words if w in action.choices), None)
            if chosen:
                return _options(action.choices[chosen], words)
        target = deprecated if isinstance(action, DeprecatedFlag) else current
        target.update(action.option_strings)
    return current, deprecated


def test_readme_and_docs_flags_exist_in_current_spelling():
    pages = [README, *DOCS]
    commands = {page: _commands(page.read_text()) for page in pages}
    assert len(commands[README]) > 10 and sum(map(len, commands.values())) > 60  # the extraction works
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    problems = []
    for page, found in commands.items():
        name = page.relative_to(ROOT)
        for command, rest in found:
            words = rest.split()
            current, deprecated = _options(sub.choices[command], words)
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest):
                if flag in deprecated:
                    problems.append(f"{name}: ldm-video {command} uses the deprecated {flag}")
                elif flag not in current and flag != "--help":
                    problems.append(f"{name}: ldm-video {command} uses {flag}, which the command does not have")
    assert not problems, "\n".join(sorted(set(problems)))


def test_docs_linked_from_readme_and_links_resolve():
    assert len(DOCS) >= 8
    readme = README.read_text()
    assert not [d.name for d in DOCS if f"](docs/{d.name})" not in readme], "docs pages the README does not link"
    broken = []
    for page in [README, *DOCS]:
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).is_file():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "\n".join(broken)
