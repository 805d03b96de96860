"""Sample sizes for the notebooks' ``parameters`` cells: CI runs small, handouts large.

``K8SNET_SAMPLES=large`` (set by ``scripts/study.sh``) asks for the handout sizes; the
test command leaves it unset, so nbval runs the notebooks quickly.
"""

from __future__ import annotations

import os


def large_samples() -> bool:
    """True when the notebooks should measure at handout size (``$K8SNET_SAMPLES == "large"``)."""
    return os.environ.get("K8SNET_SAMPLES", "").lower() == "large"
