"""The documentation builds, and every example in it and in the README runs as printed.

Each page's ```python blocks run in order in one namespace (in a temporary working
directory). A ```text block right after a ```python block is the output that block
prints: it must match the real output. To refresh the printed outputs after a change,
run `python tests/test_docs.py --update` and review the diff.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(
    r"^```python\n(?P<code>.*?)^```\n(?:\s*^```text\n(?P<output>.*?)^```\n)?",
    re.DOTALL | re.MULTILINE,
)


def _normalize(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def run_page(page: pathlib.Path, workdir: pathlib.Path) -> list[tuple[re.Match, str]]:
    """Run the python blocks of `page` in `workdir`; return each block with its output."""
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {"__name__": "__docs__"}
    results = []
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        for match in BLOCK.finditer(page.read_text()):
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                exec(compile(match["code"], f"{page.name}:block", "exec"), namespace)
            results.append((match, stdout.getvalue()))
    finally:
        os.chdir(cwd)
    return results


EXAMPLE_SECTION = re.compile(
    r'<span class="doc-section-title">(?P<title>Examples?):</span></p>\s*(?P<next><\w+[^>]*>)'
)


@pytest.mark.skipif(shutil.which("mkdocs") is None, reason="mkdocs is not installed")
def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        ["mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sections = 0
    for html in sorted((site / "reference").rglob("*.html")):
        text = html.read_text()
        for collapsed in ('<details class="example"', 'class="admonition example"'):
            assert collapsed not in text, f"an 'Example:' admonition in {html.relative_to(site)}"
        for section in EXAMPLE_SECTION.finditer(text):
            sections += 1
            where = f"{html.relative_to(site)}: {section['next']}"
            assert section["title"] == "Examples", f"singular 'Example:' section in {where}"
            assert section["next"] == '<div class="highlight">', f"example not code in {where}"
    assert sections > 50, "the API reference renders almost no example sections"


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if "```python" in p.read_text()],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_examples_run_as_printed(page, tmp_path):
    for match, output in run_page(page, tmp_path):
        if match["output"] is not None:
            assert _normalize(output) == _normalize(match["output"]), match["code"]


def update(page: pathlib.Path, workdir: pathlib.Path) -> None:
    """Rewrite the ```text output blocks of `page` with the real outputs."""
    text = page.read_text()
    for match, output in reversed(run_page(page, workdir)):
        if match["output"] is not None:
            start, end = match.span("output")
            text = text[:start] + _normalize(output) + "\n" + text[end:]
    page.write_text(text)


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:2] != ["--update"]:
        sys.exit("usage: python tests/test_docs.py --update [PAGE ...]")
    targets = [pathlib.Path(p).resolve() for p in sys.argv[2:]] or PAGES
    for target in targets:
        with tempfile.TemporaryDirectory() as directory:
            update(target, pathlib.Path(directory))
        print("updated", target.relative_to(ROOT))
