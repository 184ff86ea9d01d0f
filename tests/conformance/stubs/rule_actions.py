"""The stand-in for every action an Attune rule fixture starts that Treadle does not ship.

It hands back what it was given, so a test sees exactly the parameters the rule's action
received (after templating against the trigger's payload). No I/O.
"""

from __future__ import annotations

from typing import Any


def received(**given: Any) -> dict[str, Any]:
    """``{"received": <the input>}``."""
    return {"received": given}
