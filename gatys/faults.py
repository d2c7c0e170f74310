"""Fault injection at named points of a job's write order, for the tests of what a kill leaves.

GATYS_FAULT=<point> makes the process SIGKILL itself when it reaches that point (after-claim,
after-image, after-manifest); <point>@<p> does so with probability p each time (a stress test's
random kills), and several may be given, comma-separated. Unset, fault_point does nothing.
"""
from __future__ import annotations

import os
import random
import signal

FAULT_VARIABLE = "GATYS_FAULT"
FAULT_POINTS = ("after-claim", "after-image", "after-manifest")


def fault_point(name: str) -> None:
    """Die here, as a killed worker would, when GATYS_FAULT names this point (and its chance comes up)."""
    for entry in os.environ.get(FAULT_VARIABLE, "").split(","):
        point, _, chance = entry.strip().partition("@")
        if point == name and (not chance or random.random() < float(chance)):
            os.kill(os.getpid(), signal.SIGKILL)
