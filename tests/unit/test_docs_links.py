"""The documentation holds together: every relative link and anchor resolves, the README stays a
short front door that starts with the two commands and links every page of docs/."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 300

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})(.*)$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target "title") and ![alt](target); the target ends at a space or the closing paren
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, …


def documents() -> list[Path]:
    """The Markdown the checks cover: the README, docs/, deploy/ and the SDK's README."""
    found = [README, ROOT / "sdk" / "README.md", *sorted(DOCS.glob("*.md"))]
    return found + sorted(p for p in (ROOT / "deploy").rglob("*.md"))


def split(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The lines outside fenced code blocks (a link or heading in a block is only an example),
    and the (info string, body) of every block, in order."""
    lines: list[str] = []
    blocks: list[tuple[str, str]] = []
    fence, info = "", ""
    body: list[str] = []
    for line in text.splitlines():
        marker = FENCE.match(line)
        if not fence:
            if marker:
                fence, info, body = marker.group(1), marker.group(2).strip(), []
            else:
                lines.append(line)
        elif marker and _closes(marker, fence):
            blocks.append((info, "\n".join(body)))
            fence = ""
        else:
            body.append(line)
    return lines, blocks


def _closes(marker: re.Match[str], fence: str) -> bool:
    """A closing fence: the same character, at least as long, no info string."""
    run, rest = marker.group(1), marker.group(2)
    return run[0] == fence[0] and len(run) >= len(fence) and not rest.strip()


def prose(text: str) -> list[str]:
    return split(text)[0]


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    return split(text)[1]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (code spans, links and emphasis reduced to their
    words) lowercased, punctuation dropped, spaces turned into hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in `path`, repeats numbered as GitHub does (`-1`, `-2`, …)."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    """The link targets written in `path`'s prose (inline and reference-style), code spans
    left out."""
    found = []
    for line in prose(path.read_text()):
        reference = REFERENCE_LINK.match(line)
        if reference:
            found.append(reference.group(1))
            continue
        found += INLINE_LINK.findall(CODE_SPAN.sub("", line))
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of `path` that names no existing file (or directory), or an anchor
    that no heading of its file has, with why."""
    problems = []
    for target in links(path):
        if not target or EXTERNAL.match(target):
            continue
        where, _, anchor = target.partition("#")
        file = (path.parent / unquote(where)).resolve() if where else path
        if not file.exists():
            problems.append(f"{path.relative_to(root)}: {target}: no such file")
        elif anchor and file.suffix == ".md" and unquote(anchor).lower() not in anchors(file):
            problems.append(f"{path.relative_to(root)}: {target}: no heading #{anchor} there")
    return problems


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_the_checks_see_a_broken_link_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Its part, in `code`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md) [fine too](other.md#its-part-in-code) [here](#page)\n"
        "[gone](missing.md) [wrong anchor](other.md#nowhere) [external](https://example.com)\n"
        "```text\n[in a code block](also-missing.md)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "page.md: missing.md: no such file",
        "page.md: other.md#nowhere: no heading #nowhere there",
    ]


def test_slugs_follow_github() -> None:
    assert slug("From Python: the SDK") == "from-python-the-sdk"
    assert slug("`events.invalid`") == "eventsinvalid"
    assert slug("What stands in the way of 50% of the copier") == (
        "what-stands-in-the-way-of-50-of-the-copier"
    )
    assert slug("Where the collector's time goes") == "where-the-collectors-time-goes"


def test_the_readme_is_a_short_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_readme_starts_with_the_two_commands() -> None:
    info, body = fenced_blocks(README.read_text())[0]
    assert info == "bash"
    commands = [line.split("#")[0].strip() for line in body.splitlines()]
    assert commands == ["bash deploy/up.sh", "bash deploy/test.sh"]


def test_every_page_of_docs_is_linked_from_the_readme() -> None:
    linked = {
        (README.parent / unquote(target.partition("#")[0])).resolve()
        for target in links(README)
        if not EXTERNAL.match(target)
    }
    pages = {p.resolve() for p in DOCS.iterdir() if p.is_file()}
    assert pages, "docs/ is empty"
    assert sorted(p.name for p in pages - linked) == []
