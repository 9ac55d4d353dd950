"""Print where the MLflow UI shows a store's runs table (``make ui`` prints it before starting).

MLflow 3's UI opens on its GenAI home page; the runs of a training experiment are at
``#/experiments/<id>/runs``.

    python scripts/ui_url.py --uri sqlite:///mlflow.db --experiment segkit --url http://127.0.0.1:5000
"""

from __future__ import annotations

import argparse

from segkit.tracking.store import runs_table_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", default="sqlite:///mlflow.db", help="the tracking store")
    parser.add_argument("--experiment", default="segkit", help="tracking.experiment")
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="where the UI listens")
    args = parser.parse_args()
    url = runs_table_url(args.url, args.uri, args.experiment)
    where = "runs table" if "#/experiments/" in url else "UI (no runs yet in this store)"
    print(f"MLflow {where} of experiment {args.experiment!r}: {url}", flush=True)


if __name__ == "__main__":
    main()
