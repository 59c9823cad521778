"""asdex benchmarks: shared problems, one script per stage, and one runner.

Run everything from the repository root with `python -m benchmarks` (full sizes) or
`python -m benchmarks --quick` (small sizes, under two minutes); see `__main__.py`.
"""
