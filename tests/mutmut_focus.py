"""Run focused test files against mutmut's mutants in one interpreter (docs/testing.md, "Mutation testing").

What mutmut does per mutant (``MUTANT_UNDER_TEST=<name>``, ``pytest -x``)
without starting an interpreter per mutant, for modules whose mutants are
too slow under the whole selection. Run it in ``mutants/`` after ``mutmut
run`` generated them::

    cd mutants && PYTHONPATH=src python ../tests/mutmut_focus.py OUT NAMES TESTS...

NAMES holds one mutant name a line; OUT gets ``name: killed|survived|timeout``.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = 60  # seconds a mutant may run; far above the ~1 s a focused file takes


class _Timeout(BaseException):
    pass


def _on_alarm(*_: Any) -> None:
    raise _Timeout


def main(out_path: str, names_path: str, *tests: str) -> None:
    names = [n.strip() for n in Path(names_path).read_text(encoding="utf-8").splitlines() if n.strip()]
    args = [*tests, "-x", "-q", "-p", "no:cacheprovider"]
    signal.signal(signal.SIGALRM, _on_alarm)
    # Import the test modules (and build their module-level data) under no mutant.
    os.environ["MUTANT_UNDER_TEST"] = "none"
    with contextlib.redirect_stdout(io.StringIO()):
        if pytest.main(args) != 0:
            sys.exit("the focused tests fail without a mutant")
    with open(out_path, "w", encoding="utf-8") as out:
        for name in names:
            os.environ["MUTANT_UNDER_TEST"] = name
            signal.alarm(TIMEOUT)
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    verdict = "survived" if pytest.main(args) == 0 else "killed"
            except _Timeout:
                verdict = "timeout"
            finally:
                signal.alarm(0)
            out.write(f"{name}: {verdict}\n")
            out.flush()


if __name__ == "__main__":
    main(*sys.argv[1:])
