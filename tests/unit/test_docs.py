"""The docs hold together: every relative link resolves, to a file and to a heading in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) or ![alt](target), with an optional "title" after the target.
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = ("http://", "https://", "mailto:")


def documents() -> list[Path]:
    """README.md, docs/*.md, bench/README.md and workers/README.md."""
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found += [ROOT / "bench" / "README.md", ROOT / "workers" / "README.md"]
    return [path for path in found if path.exists()]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file; a repeated one gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    """The link targets of a markdown file that are not on the web or an address."""
    targets = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            target = match.group(1)
            if not target.startswith(EXTERNAL):
                targets.append(target)
    return targets


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of the file whose file or heading does not exist, and why."""
    problems = []
    for target in links(path):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{path.relative_to(root)}: {target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{path.relative_to(root)}: {target}: no heading #{anchor}")
    return problems


def test_the_docs_are_all_walked() -> None:
    names = {str(path.relative_to(ROOT)) for path in documents()}
    assert {"README.md", "bench/README.md", "workers/README.md", "docs/README.md"} <= names


def test_every_relative_link_resolves() -> None:
    problems = [problem for path in documents() for problem in broken_links(path)]
    assert problems == []


def test_every_doc_is_in_the_index() -> None:
    index = set(links(ROOT / "docs" / "README.md"))
    missing = [
        path.name
        for path in sorted((ROOT / "docs").glob("*.md"))
        if path.name != "README.md" and path.name not in index
    ]
    assert missing == []


def test_the_tour_runs_the_stack_as_operations_says() -> None:
    """The README's commands for the real stack are the ones docs/operations.md explains."""

    def stack_block(path: Path) -> str:
        blocks = path.read_text(encoding="utf-8").split("```sh\n")
        return next(b.split("```")[0] for b in blocks if "rollout db upgrade" in b)

    assert stack_block(ROOT / "README.md") == stack_block(ROOT / "docs" / "operations.md")


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## A heading, with `code`\n\ntext\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Doc\n\n"
        "[fine](other.md) [fine](other.md#a-heading-with-code) [fine](#doc)\n"
        "[web](https://example.com) `[code](nowhere.md)`\n"
        "```\n[fenced](nowhere.md)\n```\n"
        "[gone](missing.md) [no heading](other.md#nope) [no anchor](#nope)\n"
    )
    assert broken_links(doc, root=tmp_path) == [
        "doc.md: missing.md: no such file",
        "doc.md: other.md#nope: no heading #nope",
        "doc.md: #nope: no heading #nope",
    ]


def test_slugs_follow_github() -> None:
    heading = "Paging: the owning team's on-call, first"
    assert slug(heading) == "paging-the-owning-teams-on-call-first"
    assert slug("`rollout show`") == "rollout-show"
    assert slug("Air-gapped entry") == "air-gapped-entry"
