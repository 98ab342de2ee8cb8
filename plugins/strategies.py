"""The built-in strategies' plugin module, registered by the plugin manager as ``builtin_strategies``."""

from __future__ import annotations

from selector_service.plugin import RegisterStrategy, hookimpl

from .fill_first import fill_first
from .least_loaded import least_loaded
from .reset_soonest import reset_soonest
from .round_robin import round_robin
from .sampling import p2c, uniform_random
from .weighted import weighted
from .zenith import zenith


@hookimpl
def register_strategies(register: RegisterStrategy) -> None:
    """Register ``round_robin``, ``fill_first``, ``random``, ``p2c``, ``least_loaded``, ``weighted``, ``zenith`` and
    ``reset_soonest``."""
    register("round_robin", round_robin)
    register("fill_first", fill_first)
    register("random", uniform_random)
    register("p2c", p2c)
    register("least_loaded", least_loaded)
    register("weighted", weighted)
    register("zenith", zenith)
    register("reset_soonest", reset_soonest)
