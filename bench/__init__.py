"""opcatflow benchmarks, run on demand with ``python -m bench`` (never by the test suite).

See bench/README.md for what each part measures and how to read the figures.
"""
