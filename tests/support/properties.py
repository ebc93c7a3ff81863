"""How many inputs each property test tries (docs/guarantees.md quotes these numbers).

A few hundred per property keeps the quick tier fast; ``deadline=None``
because CI's machine is shared and a slow example is no failure. Hypothesis
keeps the examples that failed once in ``.hypothesis/`` and tries them first.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

#: Generated config files: bytes, text, YAML documents of wrong types.
CONFIG_EXAMPLES = 300
#: Anchor bombs and nesting, built from (depth, fan-out): fewer, each bigger.
BOMB_EXAMPLES = 60
#: Queue bodies, table items and container outputs run through the real jobs.
JOB_EXAMPLES = 300


def tried(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
