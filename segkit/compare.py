"""``python -m segkit.compare``: the runs of an experiment (or of one sweep) as a table of key
params and final metrics, best first (``segkit.app.compare``)."""

from __future__ import annotations

from segkit.app.compare import main

if __name__ == "__main__":
    main()
