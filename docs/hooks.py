"""MkDocs hook: publish the benchmark tables and plots of `benchmarks/results/`.

The benchmark runner (`python -m benchmarks`) writes its markdown tables and PNG plots
to `benchmarks/results/`. This hook adds them to the site under `benchmarks/`, so the
documentation shows the committed results without keeping a second copy in `docs/`.
"""

from __future__ import annotations

import pathlib
from typing import Any

from mkdocs.structure.files import File, Files

RESULTS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def on_files(files: Files, config: Any) -> Files:
    """Add every table and plot of `benchmarks/results/` to the site's files."""
    for path in sorted(RESULTS.glob("*.md")) + sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"benchmarks/{path.name}", abs_src_path=str(path)))
    return files
