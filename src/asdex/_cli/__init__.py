"""The command line, `python -m asdex demo | inspect`: one module per command and helper."""
