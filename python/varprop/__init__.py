"""varprop: signal propagation in deep, randomly initialised networks,
simulated on the GPU (wgpu compute shaders) beside the mean-field theory.

    >>> import varprop
    >>> df = varprop.run(depth=100)          # one row per layer, a DataFrame
    >>> df[["layer", "q_post_mean", "q_post_theory"]].tail()
    >>> varprop.fixed_point(act="tanh", sigma_w2=1.5, sigma_b2=0.05)
    >>> varprop.edge_of_chaos(0.05, act="tanh")      # critical sigma_w2

``run`` equals ``pd.read_csv`` of ``varprop run --format csv`` for the same
arguments (keyword ``sigma_w2`` is flag ``--sigma-w2``). ``Simulator`` keeps
one GPU context across runs; the module-level functions share a default one
per device, created on first use. See ``help(varprop.run)`` for the columns.
"""

from ._api import (
    CHECK_NETWORKS,
    DEFAULT_CHUNK,
    CaseResult,
    CheckResult,
    Simulator,
    SuiteResult,
    check,
    check_suite,
    compare,
    default_simulator,
    devices,
    edge_of_chaos,
    fixed_point,
    phase,
    run,
    sweep,
    theory,
)
from ._plot import plot
from ._native import VERSION as __version__

__all__ = [
    "CHECK_NETWORKS",
    "DEFAULT_CHUNK",
    "CaseResult",
    "CheckResult",
    "Simulator",
    "SuiteResult",
    "check",
    "check_suite",
    "compare",
    "default_simulator",
    "devices",
    "edge_of_chaos",
    "fixed_point",
    "phase",
    "plot",
    "run",
    "sweep",
    "theory",
]
