"""attnc benchmarks: each module has `main(argv) -> int` and a function returning its JSON record.

Run them through `attnc bench NAME` or `python -m benchmarks.NAME_bench`. Every
benchmark measures the variants it compares side by side in one run
(interleaved repetitions, medians) and records the machine it ran on.
"""
