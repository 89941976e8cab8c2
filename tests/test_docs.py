"""The docs match the project: every relative link (and its anchor) resolves, every engine module is in docs/engine.md's table."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(markdown: Path) -> set[str]:
    """The anchors GitHub makes from a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc):
    missing = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # web addresses and anchors within the page
        path, _, anchor = target.partition("#")
        file = doc.parent / path
        if not file.exists():
            missing.append(target)
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            missing.append(target)
    assert not missing, f"{doc.name} links to files the project does not have: {missing}"


def test_engine_md_lists_every_engine_module():
    table = (REPO / "docs" / "engine.md").read_text(encoding="utf-8")
    modules = [p.name for p in (REPO / "engine").glob("*.py") if p.name != "__init__.py"]
    unlisted = [m for m in modules if f"`{m}`" not in table]
    assert not unlisted, f"docs/engine.md's module table lacks {unlisted}"
