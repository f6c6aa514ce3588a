"""attnc.authoring: tools for writing programs by hand.

- skeleton.py: `attnc new` — a commented starting program, or a renamed copy of one.
- windows.py: generated windows (hypothesis strategies, edge cases) for property tests.
- properties.py: `attnc check --props` — property tests with shrunk counterexamples.
- show.py / render.py: `attnc show` — a program next to a real head, with the IoU.
"""
