"""The in-cluster probe: a stdlib-only script shipped to pods in a ConfigMap.

``probe.py`` must run unmodified in any ``python`` image, so it imports nothing from
k8snet; the helper only reads its text (:func:`script`) to put it in a ConfigMap.
"""

from __future__ import annotations

from pathlib import Path

SCRIPT = Path(__file__).with_name("probe.py")


def script() -> str:
    """The probe's source, as shipped in the ConfigMap."""
    return SCRIPT.read_text()
