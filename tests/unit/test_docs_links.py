"""The documents link to each other correctly, and the README stays a short entry point.

A reader who follows a link from the README into ``docs/`` must land on the
section it names; a link to a file outside the clone (as the README once had
to the platform's contract) leaves them with nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The README is the entry point; the operator material lives in docs/.
README_MAX_LINES = 200

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_CODE = re.compile(r"`[^`]*`")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, where a ``#`` is a heading and ``[x](y)`` a link."""
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    targets: list[str] = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        targets.extend(_LINK.findall(_INLINE_CODE.sub("", line)))
    return targets


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of ``path`` whose file or heading does not exist under ``root``."""
    broken: list[str] = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.is_relative_to(root):
            broken.append(f"{target}: outside the repository")
        elif not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
    return broken


@pytest.mark.parametrize("path", documents(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path: Path) -> None:
    assert links(path), f"{path.name} links nowhere: the documents should point at each other"
    assert broken_links(path) == []


def test_the_docs_folder_holds_the_documents_the_readme_names() -> None:
    names = {path.name for path in (ROOT / "docs").glob("*.md")}

    assert {
        "operating.md",
        "configuration.md",
        "troubleshooting.md",
        "guarantees.md",
        "performance.md",
    } <= names


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    # The checker itself: a link to a missing file, a missing heading or a
    # file outside the repository is reported; a good one is not.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guarantees.md").write_text("# Guarantees\n\n## The data contract\n", encoding="utf-8")
    probe = docs / "probe.md"
    probe.write_text(
        "# Probe\n\n"
        "[good](guarantees.md#the-data-contract) [self](#probe) `[code](no.md)`\n"
        "[file](missing.md) [anchor](guarantees.md#no-such-heading) [out](../../elsewhere.md)\n"
        "```\n[in a code block](not-a-link.md)\n# not a heading\n```\n",
        encoding="utf-8",
    )

    problems = broken_links(probe, root=tmp_path)

    assert problems == [
        "missing.md: no such file",
        "guarantees.md#no-such-heading: no heading with anchor #no-such-heading in guarantees.md",
        "../../elsewhere.md: outside the repository",
    ]


def test_the_readme_stays_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()

    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail into docs/"
    )
