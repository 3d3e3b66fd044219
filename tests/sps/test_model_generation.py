"""The committed model is exactly what the generator makes from the committed tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_model_is_regenerated_identically() -> None:
    """tools/gen_sps_model.py --check finds nothing to change in sps/model.py."""
    run = subprocess.run(
        [sys.executable, str(REPO / "tools/gen_sps_model.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_reachable_complex_type_has_a_class() -> None:
    """Every complex type reachable from the root, but the signature's, has its model class."""
    from greenlane.sps import tables
    from greenlane.sps.model import CLASSES

    reachable, queue = set(), [tables.ROOT.type]
    while queue:
        key = queue.pop()
        if key in reachable or key not in tables.COMPLEX_TYPES or key.startswith("ds:"):
            continue
        reachable.add(key)
        queue.extend(p.type for p in tables.COMPLEX_TYPES[key].particles)
    assert reachable == set(CLASSES)
    assert len(CLASSES) > 50
