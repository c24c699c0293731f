"""pycytominer's own tests of ``aggregate``, ``normalize`` and ``feature_select``, run against
cellbench's functions.

pycytominer's test files are not copied into this project: give a checkout of its repository
(``git clone https://github.com/cytomining/pycytominer``; the numbers in benchmarks/RESULTS.md
are for the commit named there). The three test files are copied into a temporary folder beside
a ``conftest.py`` that replaces ``pycytominer.aggregate / normalize / feature_select`` (the
package attributes and the submodules' names) before the tests import them, then pytest runs.

Modes:

* ``reference``: no replacement (pycytominer itself; tests that fail here are not applicable);
* ``strict``: cellbench's functions called with pycytominer's arguments as they are;
* ``adapter``: a thin translation of the arguments cellbench does not take (file paths in and
  out, ``features="infer"`` resolved by pycytominer's CellProfiler-prefix rule, ``subset_data_df``,
  ``Blocklist`` objects and named lists, ``drop_cosmicqc_rows``), no numerics.

    python benchmarks/pycytominer_suite.py --repo ../pycytominer [--out benchmarks/results/pycytominer_suite.csv]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

FILES = ("test_aggregate.py", "test_normalize.py", "test_feature_select.py")

CONFTEST = '''
import sys
sys.path.insert(0, {here!r})
import _pycytominer_adapter
_pycytominer_adapter.install({mode!r})
'''


def run(repo: Path, mode: str, work: Path) -> list[dict]:
    tests = work / mode / "tests"
    tests.mkdir(parents=True)
    for name in FILES:
        shutil.copy(repo / "tests" / name, tests / name)
    (tests / "test_data").symlink_to(repo / "tests" / "test_data")
    if mode != "reference":
        (tests / "conftest.py").write_text(CONFTEST.format(here=str(Path(__file__).resolve().parent), mode=mode))
    report = work / f"{mode}.xml"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                    str(tests)], cwd=work / mode, env=env, capture_output=True, text=True)
    rows = []
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, (child.get("message") or "").splitlines()[0][:200] if child.get("message") else ""
        rows.append({"mode": mode, "file": case.get("classname", "").split(".")[-1], "test": case.get("name"),
                     "outcome": outcome, "message": message})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True, help="a checkout of github.com/cytomining/pycytominer")
    ap.add_argument("--out", default="benchmarks/results/pycytominer_suite.csv")
    args = ap.parse_args()
    import pandas as pd

    repo = Path(args.repo).resolve()
    missing = [n for n in FILES if not (repo / "tests" / n).is_file()]
    if missing:
        raise SystemExit(f"--repo {repo}: no tests/{missing[0]} (a pycytominer checkout expected)")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [r for mode in ("reference", "strict", "adapter") for r in run(repo, mode, Path(tmp))]
    table = pd.DataFrame(rows)
    wide = table.pivot_table(index=["file", "test"], columns="mode", values="outcome", aggfunc="first")
    applicable = wide[wide["reference"] == "passed"]
    print(f"{len(wide)} tests; {len(applicable)} pass on pycytominer itself (applicable)")
    for mode in ("strict", "adapter"):
        print(f"{mode}: {(applicable[mode] == 'passed').sum()} of {len(applicable)} applicable tests pass")
    failing = table[(table["mode"] == "adapter") & (table["outcome"] != "passed")]
    failing = failing[failing["test"].isin(applicable.index.get_level_values("test"))]
    for _, r in failing.iterrows():
        print(f"  adapter fails: {r['file']}::{r['test']}: {r['message']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
