"""Random name suffixes as apimachinery's pkg/util/rand makes them: for ``generateName``,
the ``kube-api-access-<x>`` volume, and (hashed) the pod-template-hash."""

from __future__ import annotations

import random

# No vowels (no words) and no look-alikes (0/o, 1/l, 3/e): rand.String's alphabet.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(NAME_ALPHABET) for _ in range(n))
