"""The Python API: run, check, theory, fixed_point, edge_of_chaos, devices
and the Simulator that keeps one GPU context across them."""

from __future__ import annotations

import inspect
import io
import json
import sys
import threading
import warnings

import pandas as pd

from . import _native
from ._args import (
    ArchFile,
    _DefaultInt,
    _DefaultStr,
    as_bool,
    as_device,
    as_float,
    as_int,
    as_str,
    network_settings,
    run_settings,
)

DEFAULT_CHUNK = _native.DEFAULT_CHUNK
CHECK_NETWORKS = _native.CHECK_NETWORKS

# The shared defaults: shown by help() as their values, not sent to the
# library (which applies them, and the defaults that depend on others).
_WIDTH = _DefaultInt(256)
_DEPTH = _DefaultInt(100)
_ACT = _DefaultStr("relu")
_INIT = _DefaultStr("he-normal")
_NETWORKS = _DefaultInt(4)
_CHECK_NETWORKS = _DefaultInt(CHECK_NETWORKS)


# --------------------------------------------------------------------------
# progress


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and hasattr(shell, "kernel")


_warned_no_tqdm = False


class _Progress:
    """A tqdm bar over rows (layers times networks), or a user callback
    ``progress(done, total)``, or nothing."""

    def __init__(self, progress, desc):
        self.bar = None
        self.callback = None
        if callable(progress) and not isinstance(progress, bool):
            self.callback = progress
            return
        if progress is None:
            progress = _in_notebook() or (
                hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
            )
        elif not isinstance(progress, bool):
            raise TypeError(
                f"progress: expected None, a bool or a callable, got {type(progress).__name__}"
            )
        if not progress:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            global _warned_no_tqdm
            if not _warned_no_tqdm:
                _warned_no_tqdm = True
                warnings.warn("progress=True needs tqdm (pip install tqdm); no bar shown")
            return
        self._tqdm = tqdm
        self.desc = desc

    def __call__(self, done, total):
        if self.callback is not None:
            self.callback(done, total)
            return
        if self.bar is None:
            self.bar = self._tqdm(total=total, desc=self.desc, unit="rows", leave=False)
        self.bar.update(done - self.bar.n)

    def native(self):
        """What the native side calls (None: nothing to report)."""
        return self if (self.callback is not None or hasattr(self, "_tqdm")) else None

    def close(self):
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------
# the simulator


class Simulator:
    """Runs on one device, creating its GPU context (adapter, device and
    compiled pipelines) once, on the first run, and reusing it.

    ``device``: ``"gpu"`` (the best wgpu adapter, the software Vulkan one
    included; RuntimeError when there is none), ``"cpu"`` (the f64 reference
    engine: small sizes) or ``"auto"`` (a GPU when wgpu finds one, else the
    CPU). ``adapter``: an index from :func:`devices` or part of its name
    (else ``WGPU_ADAPTER_NAME``, else the best).

    Its methods are the module's functions: ``run``, ``check``; the theory
    functions need no device and are the module's.
    """

    def __init__(self, device: str = "gpu", adapter: str | int | None = None):
        device = as_device(device)
        if adapter is not None and not isinstance(adapter, (str, int)) or isinstance(adapter, bool):
            raise TypeError(f"adapter: expected a str or an int, got {type(adapter).__name__}")
        self.device = device
        self.adapter = None if adapter is None else str(adapter)
        self._native = _native.NativeSimulator(device, self.adapter)

    @property
    def is_cpu(self) -> bool:
        """Whether runs go to the CPU reference engine."""
        return self._native.is_cpu

    @property
    def has_context(self) -> bool:
        """Whether the GPU context exists yet (created on the first run)."""
        return self._native.has_context

    def __repr__(self):
        where = "cpu" if self.is_cpu else f"gpu, adapter {self.adapter or 'best'}"
        return f"varprop.Simulator({where})"

    def run(self, **kwargs):  # signature and docstring: set below from run()
        bound = _RUN_SIGNATURE.bind(**kwargs)
        bound.apply_defaults()
        return _run(self, dict(bound.arguments))

    def check(self, **kwargs):  # signature and docstring: set below from check()
        bound = _CHECK_SIGNATURE.bind(**kwargs)
        bound.apply_defaults()
        return _check(self, dict(bound.arguments))


_shared: dict = {}
_shared_lock = threading.Lock()


def default_simulator(device: str = "gpu", adapter=None) -> Simulator:
    """The shared Simulator the module-level functions use for this device
    and adapter, created on first use."""
    key = (as_device(device), None if adapter is None else str(adapter))
    with _shared_lock:
        sim = _shared.get(key)
        if sim is None:
            sim = _shared[key] = Simulator(*key)
        return sim


# --------------------------------------------------------------------------
# run


def run(
    width=_WIDTH,
    depth=_DEPTH,
    act=_ACT,
    init=_INIT,
    sigma_w2=None,
    sigma_b2=None,
    batch=16,
    networks=_NETWORKS,
    seed=0,
    engine="auto",
    device="gpu",
    backward=False,
    jacobian=False,
    weight_grads=False,
    ntk=False,
    parametrisation=None,
    arch=None,
    spp=False,
    tokens=None,
    token_c0=None,
    widths=None,
    q0=1.0,
    c0=0.5,
    alpha=None,
    omega=None,
    dist=None,
    gain=None,
    fan_mode=None,
    convention=None,
    nonlinearity=None,
    kaiming_a=None,
    gain_from_act=False,
    bias=None,
    adapter=None,
    chunk=DEFAULT_CHUNK,
    checkpoint_every=None,
    max_memory=None,
    progress=None,
    per_network=False,
    arrays=False,
):
    r"""Simulate one configuration: S = ``networks`` independent random
    networks, each pushing ``batch`` inputs through its layers; one row per
    layer (row 0 is the input itself). The same run, and the same numbers,
    as ``varprop run --format csv`` with the same flags (keyword ``x_y`` is
    flag ``--x-y``).

    The network: x_0 has ``width`` (or ``widths[0]``) units, entries with
    second moment ``q0``; inputs come in pairs (2k, 2k+1) with correlation
    ``c0``. Layer l: h_l = W_l x_{l-1} + b_l, x_l = phi(h_l), with
    Var[W_ij] = sigma_w2 / fan_in (the ``init`` scheme's variance:
    he-normal 2/fan_in, xavier-normal 2/(fan_in + fan_out), ...) and
    Var[b_i] = sigma_b2. The scheme names mean what they mean in
    ``convention`` (``"pytorch"``, the default, ``"jax"`` or ``"flax"``;
    ``varprop inits`` lists them): under PyTorch he-* take kaiming's gain,
    calculate_gain(``nonlinearity``, ``kaiming_a``) with its defaults
    leaky_relu and 0 (sqrt 2, whatever ``act`` is), or calculate_gain of
    ``act`` with ``gain_from_act=True``; ``df.attrs["config"]["layer_laws"]``
    states the law every layer got.

    Returns a pandas DataFrame with the columns of the CLI's CSV:

    - ``layer``, ``width``;
    - ``q_pre_mean``, ``q_pre_se``: q_pre = sum_i h_i^2 / n averaged over the
      batch, its mean over the S networks and the standard error;
      ``q_post_*`` the same for x = phi(h);
    - ``log_q_post_mean``, ``log_q_post_std``: the mean and the standard
      deviation across networks of log q_post (natural log; carried
      exactly in f64 for homogeneous stacks, so deep vanishing stays
      finite);
    - ``c_pre_*``: the correlation of each input pair's h;
      ``zero_frac_mean`` the fraction of exact zeros of phi(h);
      ``kurt_pre_mean`` the kurtosis of h;
    - with ``backward``: ``g_*``, the mean square of delta_l =
      phi'(h_l) W_{l+1}^T delta_{l+1} (delta_L ~ N(0, I));
      with ``weight_grads``: ``gw_*``; with ``jacobian``: ``jac_m1_*``,
      ||J_l u||^2 / ||u||^2; with ``ntk``: ``ntk_layer_*`` and
      ``ntk_layer_c_*``, each layer's contribution to the neural tangent
      kernel of the readout w^T x_L / sqrt(n_L) and its pair correlation
      (``parametrisation``: ``"ntk"``, the default, or ``"standard"``);
      with ``spp`` (an ``arch`` only): the Signal Propagation Plot's
      ``spp_mean2_*``, ``spp_var_*`` and ``spp_branch_var_*`` (timm's
      average squared channel mean, channel variance and residual branch
      variance, over the batch and positions of each channel);
    - every column with a prediction has ``<name>_theory`` (the mean-field
      recurrence q_l = sigma_w2 E[phi(sqrt(q_{l-1}) z)^2] + sigma_b2,
      c-map likewise, exact finite-width corrections where known) and
      ``<name>_z`` = (mean - theory) / se.

    ``df.attrs["config"]``: the resolved configuration (the JSON config
    block of ``--format json``: engine, adapter, widths, variances, ...);
    ``df.attrs["summary"]``: with ``jacobian=True`` the whole-network
    Jacobian moments (m1, m2, spread m2/m1^2 - 1, with standard errors),
    else None; ``df.attrs["ntk"]``: with ``ntk=True`` the kernel's summary
    (``ntk_diag``, ``ntk_c``, ``ntk_cond``, ``nngp_cond``,
    ``ntk_fluctuation``, each with mean, se, theory, z) and every network's
    B x B kernel (``networks``), as ``run --ntk --format json`` writes it,
    else None; ``df.attrs["warnings"]``: messages about non-finite layers
    (also issued as RuntimeWarning).

    ``per_network=True`` returns a tuple ``(df, per_network_df)``: the
    second is long format, one row per (``network``, ``layer``), with
    ``width`` and every network's own values (``log_q_pre``,
    ``log_q_post``, ``q_pre``, ``q_post``, ``mean_pre``, ``mean_post``,
    ``kurt_pre``, ``zero_frac``, ``c_pre``, ``log1m_c_pre``, ``log_g``,
    ``log_gw``, ``log_jac_m1``, ...), for statistics of your own. (A tuple
    rather than an entry of ``df.attrs``: pandas copies and compares attrs
    on every operation.)

    ``arrays=True`` appends a dict of numpy arrays to what is returned
    (``(df, arrays)``, or ``(df, per_network_df, arrays)``), for what a
    table does not fit: every per-network value of the long format as an
    (S, L + 1) array (``arrays["log_q_post"][s, l]``: network s, layer l;
    keys as the long format's columns), ``layer`` and ``width`` (L + 1,);
    the whole-network Jacobian per network, ``jac_log_m1`` (log of the mean
    over probes of ||J u||^2 / ||u||^2), ``jac_log_m2`` (the same of
    ||J^T J u||^2 / ||u||^2) and ``jac_spread`` (m2 / m1^2 - 1), each (S,),
    NaN without ``jacobian=True``; and ``jac_summary``, the summary as a
    (3, 2) array: rows m1, m2, spread, columns mean over networks and its
    standard error (NaN without ``jacobian=True``).

    ``width``, ``depth``, ``act``, ``init`` and ``networks`` left out (or
    None) take the command line's defaults, including those that depend on
    other settings (``init="siren"`` implies ``act="sin"``, ``sigma_w2``
    implies ``init="custom"``, ``widths`` and ``arch`` set the shape).

    ``arch``: an architecture (dense, conv, normalisation, residual,
    highway blocks, ResNet stages, attention and transformer blocks on
    sequences; see architectures/) as a path, as TOML text, or as a dict of
    the same schema; it sets the widths, activations and inits itself. On
    sequences (``input = { tokens = T, width = d }``) ``tokens`` changes T,
    ``token_c0`` correlates a sequence's tokens, and the frame has
    ``token_cos_*``, ``stable_rank_*``, ``attn_entropy_*`` and, with
    ``backward``, ``grad_wq_*``, ``grad_wk_*``, ``grad_wv_*`` (the README's
    Transformers section).
    ``engine``: ``"auto"``, ``"dense"``, ``"gram"`` or ``"blocks"`` (GPU;
    blocks for ``arch``, which gram also runs where it holds only dense
    and normalisation layers). ``device``:
    ``"gpu"``, ``"cpu"`` (f64 reference, small sizes) or ``"auto"``.
    ``chunk``, ``checkpoint_every``, ``max_memory``: GPU options that do
    not change what is computed. ``progress``: a tqdm bar (True; default
    on in a terminal or a notebook, when tqdm is installed), False, or a
    callable ``progress(done, total)`` over rows (layers times networks).

    The GIL is released during the run; Ctrl-C raises KeyboardInterrupt at
    once and stops the engine after the chunk of layers in flight.
    Bad values raise ValueError naming the keyword (``width: must be >=
    1``), wrong types TypeError; no GPU adapter raises RuntimeError.
    """
    sim = default_simulator(device, adapter)
    args = dict(locals())
    del args["sim"], args["device"], args["adapter"]
    return _run(sim, args)


def _settings(a: dict, arch_path) -> dict:
    return run_settings(
        width=a["width"], depth=a["depth"], widths=a["widths"], act=a["act"],
        alpha=a["alpha"], omega=a["omega"], init=a["init"], sigma_w2=a["sigma_w2"],
        sigma_b2=a["sigma_b2"], dist=a["dist"], gain=a["gain"], fan_mode=a["fan_mode"],
        convention=a["convention"], nonlinearity=a["nonlinearity"],
        kaiming_a=a["kaiming_a"], gain_from_act=a["gain_from_act"],
        q0=a["q0"], c0=a["c0"], batch=a["batch"], networks=a["networks"],
        seed=a["seed"], engine=a["engine"], backward=a["backward"],
        jacobian=a["jacobian"], weight_grads=a["weight_grads"], bias=a["bias"],
        arch_path=arch_path, ntk=a.get("ntk", False), parametrisation=a.get("parametrisation"),
        tokens=a.get("tokens"), token_c0=a.get("token_c0"),
    )


def _gpu_options(a: dict) -> dict:
    return dict(
        chunk=as_int("chunk", a["chunk"]),
        checkpoint_every=as_int("checkpoint_every", a["checkpoint_every"], optional=True),
        max_memory=as_int("max_memory", a["max_memory"], optional=True),
    )


def _issue_warnings(ws):
    for w in ws:
        warnings.warn(w, RuntimeWarning, stacklevel=3)


def _run(sim: Simulator, a: dict):
    per_network = as_bool("per_network", a["per_network"])
    want_arrays = as_bool("arrays", a["arrays"])
    with ArchFile(a["arch"]) as arch:
        settings = json.dumps(_settings(a, arch.path))
        options = _gpu_options(a)
        bar = _Progress(a["progress"], "varprop run")
        try:
            out = sim._native.run(
                settings, per_network=per_network or want_arrays, progress=bar.native(),
                spp=as_bool("spp", a["spp"]), **options
            )
        except ValueError as e:
            raise arch.rewrite(e) from None
        finally:
            bar.close()
    df = pd.read_csv(io.StringIO(out["csv"]))
    df.attrs["config"] = json.loads(out["config"])
    df.attrs["summary"] = None if out["summary"] is None else json.loads(out["summary"])
    df.attrs["ntk"] = None if out["ntk"] is None else json.loads(out["ntk"])
    df.attrs["warnings"] = list(out["warnings"])
    _issue_warnings(out["warnings"])
    if not (per_network or want_arrays):
        return df
    per = pd.read_csv(io.StringIO(out["per_network"]))
    import numpy as np

    per.insert(5, "q_pre", np.exp(per["log_q_pre"]))
    per.insert(6, "q_post", np.exp(per["log_q_post"]))
    if not want_arrays:
        return df, per
    arrays = _arrays(df, per, out["tops"])
    return (df, per, arrays) if per_network else (df, arrays)


def _arrays(df, per, tops) -> dict:
    """The numpy arrays of ``run(arrays=True)``."""
    import numpy as np

    rows = len(df)
    networks = len(per) // rows if rows else 0
    out = {"layer": df["layer"].to_numpy(), "width": df["width"].to_numpy()}
    # the long format is network-major, layer-minor
    for col in per.columns:
        if col not in ("network", "layer", "width"):
            out[col] = per[col].to_numpy(dtype=float).reshape(networks, rows)
    t = np.asarray(tops, dtype=float).reshape(-1, 2)
    out["jac_log_m1"] = t[:, 0].copy()
    out["jac_log_m2"] = t[:, 1].copy()
    out["jac_spread"] = np.exp(t[:, 1] - 2 * t[:, 0]) - 1
    s = df.attrs["summary"] or {}
    out["jac_summary"] = np.array(
        [[s.get(f"jac_{k}_{m}", np.nan) for m in ("mean", "se")] for k in ("m1", "m2", "spread")],
        dtype=float,
    )
    return out


# --------------------------------------------------------------------------
# check


class CheckResult:
    """The outcome of :func:`check`: ``passed``; ``max_z``, the largest |z|
    of the comparisons made; ``bound``, the |z| beyond which a comparison
    fails; ``table``, a DataFrame of every comparison (layer, column,
    measured, se, theory, z, exact, failed); ``run``, the run's DataFrame
    (as :func:`run` returns it); ``bool(result)`` is ``passed``."""

    def __init__(self, out):
        self.passed = bool(out["passed"])
        self.bound = float(out["bound"])
        comps = json.loads(out["comparisons"])
        cols = ["layer", "column", "measured", "se", "theory", "z", "exact"]
        table = pd.DataFrame(comps, columns=cols)
        table["failed"] = table["z"].abs() > self.bound
        self.table = table
        self.max_z = float(table["z"].abs().max()) if len(table) else 0.0
        self.run = pd.read_csv(io.StringIO(out["csv"]))
        self.run.attrs["config"] = json.loads(out["config"])
        self.config = self.run.attrs["config"]
        self.warnings = list(out["warnings"])

    @property
    def failures(self) -> pd.DataFrame:
        return self.table[self.table["failed"]]

    def __bool__(self):
        return self.passed

    def __repr__(self):
        verdict = "passed" if self.passed else f"FAILED ({len(self.failures)} comparisons)"
        return (
            f"CheckResult({verdict}: {len(self.table)} comparisons, "
            f"max |z| = {self.max_z:.3g}, bound {self.bound:.3g})"
        )


def check(
    width=_WIDTH,
    depth=_DEPTH,
    act=_ACT,
    init=_INIT,
    sigma_w2=None,
    sigma_b2=None,
    batch=16,
    networks=_CHECK_NETWORKS,
    seed=0,
    engine="auto",
    device="gpu",
    backward=False,
    jacobian=False,
    weight_grads=False,
    arch=None,
    widths=None,
    q0=1.0,
    c0=0.5,
    alpha=None,
    omega=None,
    dist=None,
    gain=None,
    fan_mode=None,
    convention=None,
    nonlinearity=None,
    kaiming_a=None,
    gain_from_act=False,
    bias=None,
    adapter=None,
    chunk=DEFAULT_CHUNK,
    checkpoint_every=None,
    max_memory=None,
    progress=None,
    max_z=None,
    theory_sigma_w2=None,
):
    r"""Simulate (as :func:`run`, with 32 networks unless told) and compare
    every layer with theory, as ``varprop check`` does: z = (mean - theory)
    / se for every comparison the rules allow (exact finite-width
    statements always; infinite-width predictions where their finite-width
    bias |m| Var[log q] is below the SE; means of positive quantities only
    where the log-normal skewness keeps the SE honest; near c = 1 on the
    log(1 - c) scale). The run fails when any |z| exceeds the bound:
    ``max_z`` when given (the ``--max-z`` flag), else Bonferroni over the K
    comparisons with Student-t(S - 1) tails at half the family rate 1e-4,
    so that a correct simulator fails less than once in 10,000 runs.

    Returns a :class:`CheckResult` (``.passed``, ``.max_z`` the largest
    |z| measured, ``.bound``, ``.table``, ``bool(result)``).
    ``theory_sigma_w2``: test-only, computes the theory with this sigma_w2
    instead of the simulated one (a wrong theory that check must catch;
    with ``init="custom"``, i.e. ``sigma_w2`` given, as the CLI's hidden
    ``--theory-sigma-w2``).
    """
    sim = default_simulator(device, adapter)
    args = dict(locals())
    del args["sim"], args["device"], args["adapter"]
    return _check(sim, args)


def _check(sim: Simulator, a: dict) -> CheckResult:
    with ArchFile(a["arch"]) as arch:
        settings = json.dumps(_settings(a, arch.path))
        options = _gpu_options(a)
        bar = _Progress(a["progress"], "varprop check")
        try:
            out = sim._native.check(
                settings,
                max_z=as_float("max_z", a["max_z"]),
                theory_sigma_w2=as_float("theory_sigma_w2", a["theory_sigma_w2"]),
                progress=bar.native(),
                **options,
            )
        except ValueError as e:
            raise arch.rewrite(e) from None
        finally:
            bar.close()
    _issue_warnings(out["warnings"])
    return CheckResult(out)


def _method_signature(fn):
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.name not in ("device", "adapter")]
    return sig.replace(parameters=params)


_RUN_SIGNATURE = _method_signature(run)
_CHECK_SIGNATURE = _method_signature(check)
Simulator.run.__signature__ = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in _RUN_SIGNATURE.parameters.values()]
)
Simulator.run.__doc__ = "As :func:`varprop.run`, on this simulator's device.\n\n" + run.__doc__
Simulator.check.__signature__ = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in _CHECK_SIGNATURE.parameters.values()]
)
Simulator.check.__doc__ = "As :func:`varprop.check`, on this simulator's device.\n\n" + check.__doc__


# --------------------------------------------------------------------------
# theory


def _net(width, depth, act, init, sigma_w2, sigma_b2, widths, q0, c0, alpha,
         omega, dist, gain, fan_mode, **init_keys) -> str:
    return json.dumps(network_settings(
        width=width, depth=depth, widths=widths, act=act, alpha=alpha, omega=omega,
        init=init, sigma_w2=sigma_w2, sigma_b2=sigma_b2, dist=dist, gain=gain,
        fan_mode=fan_mode, q0=q0, c0=c0, **init_keys,
    ))


def theory(
    width=_WIDTH, depth=_DEPTH, act=_ACT, init=_INIT, sigma_w2=None, sigma_b2=None,
    widths=None, q0=1.0, c0=0.5, alpha=None, omega=None, dist=None, gain=None,
    fan_mode=None, convention=None, nonlinearity=None, kaiming_a=None, gain_from_act=False,
    ntk=False, parametrisation=None,
) -> pd.DataFrame:
    r"""The mean-field recurrences alone (no device), one row per layer: the
    DataFrame of ``varprop theory --format csv``, its predictions named as
    :func:`run` names them beside the measurements. Columns:
    ``q_pre_theory`` (q_l
    = sigma_w2 E[phi(sqrt(q_{l-1}) z)^2] + sigma_b2, z ~ N(0, 1)),
    ``q_post_theory`` (E[phi(h)^2]), ``c_pre_theory`` (the c-map: c_l = (sigma_w2
    E[phi(u1) phi(u2)] + sigma_b2) / q_l with (u1, u2) of correlation
    c_{l-1}), ``mean_post_theory`` (E[phi(h)]), ``log_q_post_sample_theory``,
    ``log_q_post_sample_std_theory`` (the law of one input's log q at finite width where
    it is known), ``backward_factor`` (chi = sigma_w2 E[phi'(h)^2], the
    per-layer factor of the mean square gradient).

    ``ntk=True``: the infinite-width neural tangent kernel instead
    (``varprop theory --ntk``): per depth l, ``ntk_diag_theory`` and
    ``ntk_c_theory`` of the network cut at l with the readout
    w^T x_l / sqrt(n_l), and ``ntk_layer_theory``, ``ntk_layer_c_theory``,
    layer l's contribution to the whole network's kernel; ``parametrisation``
    ``"ntk"`` (default) or ``"standard"``."""
    net = _net(width, depth, act, init, sigma_w2, sigma_b2, widths,
               q0, c0, alpha, omega, dist, gain, fan_mode,
               convention=convention, nonlinearity=nonlinearity,
               kaiming_a=kaiming_a, gain_from_act=gain_from_act)
    p = as_str("parametrisation", parametrisation)
    if as_bool("ntk", ntk):
        text = _native.ntk_theory_csv(net, p or "ntk")
    elif p is not None:
        raise ValueError(
            "parametrisation: chooses how ntk=True counts parameters; without ntk it would be ignored"
        )
    else:
        text = _native.theory_csv(net)
    return pd.read_csv(io.StringIO(text))


def fixed_point(
    act=_ACT, sigma_w2=None, sigma_b2=None, init=_INIT, width=_WIDTH, depth=_DEPTH,
    widths=None, q0=1.0, c0=0.5, alpha=None, omega=None, dist=None, gain=None,
    fan_mode=None, convention=None, nonlinearity=None, kaiming_a=None, gain_from_act=False,
) -> dict:
    r"""The fixed-point summary of a constant-width stack (``varprop theory
    --summary``): ``q_star`` (q* = sigma_w2 E[phi(sqrt(q*) z)^2] +
    sigma_b2), ``c_star``, ``chi1`` (chi_1 = sigma_w2 E[phi'(sqrt(q*)
    z)^2]), the depth scales ``xi_q`` and ``xi_c`` (xi_c = -1 / log chi_c at
    c*), ``phase`` (``"ordered"`` chi_1 < 1, ``"chaotic"`` > 1, or
    ``"critical"``), with ``sigma_w2``, ``sigma_b2`` and ``note``."""
    text = _native.fixed_point(_net(width, depth, act, init, sigma_w2, sigma_b2, widths,
                                    q0, c0, alpha, omega, dist, gain, fan_mode,
                                   convention=convention, nonlinearity=nonlinearity,
                                   kaiming_a=kaiming_a, gain_from_act=gain_from_act))
    return json.loads(text)


def edge_of_chaos(sigma_b2=None, act=_ACT, sigma_w2=None, alpha=None, omega=None,
                  full=False):
    r"""The edge of chaos, chi_1 = sigma_w2 E[phi'(sqrt(q*) z)^2] = 1, for
    ``act`` (``varprop theory --edge-of-chaos``): given ``sigma_b2``, the
    critical sigma_w2; given ``sigma_w2`` instead, the sigma_b2 (ValueError
    when none >= 0 exists). Returns a float, or with ``full=True`` the dict
    ``{sigma_w2, sigma_b2, q_star}``."""
    as_float("sigma_b2", sigma_b2)
    as_float("sigma_w2", sigma_w2)
    s = {"act": as_str("act", act) if not isinstance(act, _DefaultStr) else None,
         "alpha": as_float("alpha", alpha), "omega": as_float("omega", omega),
         "sigma-w2": sigma_w2, "sigma-b2": sigma_b2, "q0": 1.0, "c0": 0.5}
    s = {k: v for k, v in s.items() if v is not None}
    out = json.loads(_native.edge_of_chaos(json.dumps(s)))
    if full:
        return out
    return out["sigma_w2"] if sigma_w2 is None else out["sigma_b2"]


def devices() -> list:
    """The adapters wgpu sees, best first (``varprop devices --format
    json``): dicts with index, name, backend, device_type, driver,
    driver_info, max_buffer_size, max_storage_buffer_binding_size. Empty
    when there is none (``device="cpu"`` still runs)."""
    return json.loads(_native.devices())


# --------------------------------------------------------------------------
# compare, phase, sweep, check_suite: many runs on one simulator


def _base_settings(kwargs: dict, forbidden=()):
    """The run keywords of a many-run function as the base settings (the
    CLI's run flags): checked against ``run``'s signature, so that an
    unknown keyword is a TypeError. Returns (settings args, bound args)."""
    for name in ("per_network", "arrays", "spp") + tuple(forbidden):
        if name in kwargs:
            raise TypeError(f"unexpected keyword argument '{name}'")
    bound = _RUN_SIGNATURE.bind(**kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _base_json(a: dict, arch_path) -> str:
    s = _settings(a, arch_path)
    # the command line leaves --engine unset unless given: auto
    if s.get("engine") == "auto":
        del s["engine"]
    return json.dumps(s)


def _names(name: str, value):
    """A list keyword as the CLI's comma-separated text."""
    if value is None or isinstance(value, str):
        return value
    try:
        items = list(value)
    except TypeError:
        raise TypeError(
            f"{name}: expected a list of str (or comma-separated text), "
            f"got {type(value).__name__} {value!r}"
        ) from None
    return ",".join(as_str(name, v, optional=False) for v in items)


def _numbers(name: str, value):
    if value is None or isinstance(value, str):
        return value
    try:
        items = list(value)
    except TypeError:
        raise TypeError(
            f"{name}: expected a list of numbers (or comma-separated text), "
            f"got {type(value).__name__} {value!r}"
        ) from None
    return ",".join(repr(as_float(name, v, optional=False)) for v in items)


def _range(name: str, value) -> str:
    """``"A:B:N"``, ``(A, B, N)`` or one number, as the CLI's text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        if len(value) != 3:
            raise ValueError(f"{name}: expected (A, B, N), got {len(value)} items")
        a, b, n = value
        return (f"{as_float(name, a, optional=False)!r}:"
                f"{as_float(name, b, optional=False)!r}:{as_int(name, n)}")
    return repr(as_float(name, value, optional=False))


def _many(sim: Simulator, method: str, a: dict, desc: str, **call):
    """Runs a native many-run method with the base settings of ``a``."""
    with ArchFile(a["arch"]) as arch:
        settings = _base_json(a, arch.path)
        options = _gpu_options(a)
        bar = _Progress(a["progress"], desc)
        try:
            out = getattr(sim._native, method)(
                settings_json=settings, progress=bar.native(), **call, **options
            )
        except ValueError as e:
            raise arch.rewrite(e) from None
        finally:
            bar.close()
    _issue_warnings(out.get("warnings", []))
    return out


def _compare(sim: Simulator, inits, acts, sigma_w2s, kwargs) -> pd.DataFrame:
    a = _base_settings(kwargs)
    out = _many(sim, "compare", a, "varprop compare",
                inits=_names("inits", inits), acts=_names("acts", acts),
                sigma_w2s=_numbers("sigma_w2s", sigma_w2s))
    df = pd.read_csv(io.StringIO(out["csv"]))
    df.attrs["schemes"] = json.loads(out["schemes"])
    df.attrs["warnings"] = list(out["warnings"])
    return df


def _phase(sim: Simulator, sigma_w2_range, sigma_b2_range, kwargs) -> pd.DataFrame:
    a = _base_settings(kwargs)
    out = _many(sim, "phase", a, "varprop phase",
                sigma_w2_range=_range("sigma_w2_range", sigma_w2_range),
                sigma_b2_range=_range("sigma_b2_range", sigma_b2_range))
    df = pd.read_csv(io.StringIO(out["csv"]))
    df.attrs["act"] = out["act"]
    df.attrs["depth"] = out["depth"]
    df.attrs["warnings"] = list(out["warnings"])
    return df


def _shard(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return f"{as_int('shard', value[0])}/{as_int('shard', value[1])}"
    raise TypeError(f"shard: expected 'I/N' or (I, N), got {type(value).__name__} {value!r}")


def _path(name: str, value) -> str:
    import os

    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise TypeError(f"{name}: expected a path, got {type(value).__name__} {value!r}")


def _sweep(sim: Simulator, path, out_dir, shard, force, chunk, checkpoint_every,
           max_memory, progress) -> pd.DataFrame:
    options = _gpu_options(dict(chunk=chunk, checkpoint_every=checkpoint_every,
                                max_memory=max_memory))
    bar = _Progress(progress, "varprop sweep")
    try:
        out = sim._native.sweep(
            _path("path", path), _path("out_dir", out_dir), _shard(shard),
            as_bool("force", force), progress=bar.native(), **options,
        )
    finally:
        bar.close()
    _issue_warnings(out["warnings"])
    df = pd.read_csv(out["summary"])
    for k in ("summary", "configurations", "computed", "skipped", "message"):
        df.attrs[k] = out[k]
    return df


class CaseResult(CheckResult):
    """One case of :func:`check_suite`: a :class:`CheckResult` (its
    ``passed`` includes the golden comparison) with ``name`` and
    ``golden``: None without ``golden=``, else a dict with
    ``comparisons``, ``bound``, ``failures`` (a DataFrame of layer, column,
    z of the measurements that moved) and ``written`` (the file recorded,
    with ``bless=True``)."""

    def __init__(self, out):
        super().__init__(out)
        self.name = out["name"]
        g = out["golden"]
        if g is not None:
            g = dict(g)
            g["failures"] = pd.DataFrame(list(g["failures"]), columns=["layer", "column", "z"])
        self.golden = g

    def __repr__(self):
        return f"CaseResult({self.name!r}: " + super().__repr__()[len("CheckResult("):]


class SuiteResult:
    """The outcome of :func:`check_suite`: a sequence of
    :class:`CaseResult` (index by position or by case name), ``passed``
    (every case, theory and golden), ``bool(result)``, ``report`` (the
    text ``varprop check --config`` prints) and ``report_json`` (the dict
    of its ``--format json``)."""

    def __init__(self, out):
        self.cases = [CaseResult(c) for c in out["cases"]]
        self.passed = bool(out["passed"])
        self.report = out["text"]
        self.report_json = json.loads(out["json"])

    def __bool__(self):
        return self.passed

    def __len__(self):
        return len(self.cases)

    def __iter__(self):
        return iter(self.cases)

    def __getitem__(self, key):
        if isinstance(key, str):
            for c in self.cases:
                if c.name == key:
                    return c
            raise KeyError(key)
        return self.cases[key]

    def __repr__(self):
        return "SuiteResult(\n" + self.report.rstrip("\n") + "\n)"


def _suite_source(suite):
    """(TOML text, label) of a suite given as a path, TOML text, a dict of
    the file's schema ({"case": [...], "max_z": ...}) or a list of cases."""
    import os

    if isinstance(suite, os.PathLike) or (isinstance(suite, str) and "\n" not in suite):
        path = os.fspath(suite)
        try:
            with open(path, encoding="utf-8") as f:
                return f.read(), path
        except OSError as e:
            raise OSError(f"{path}: {e.strerror or e}") from None
    if isinstance(suite, str):
        return suite, "<suite text>"
    if isinstance(suite, (list, tuple)):
        suite = {"case": list(suite)}
    if isinstance(suite, dict):
        try:
            text = _native.arch_toml_from_json(json.dumps(suite))
        except TypeError as e:
            raise TypeError("suite: " + str(e).removeprefix("arch: ")) from None
        return text, "<suite dict>"
    raise TypeError(
        "suite: expected a path, TOML text, a dict ({'case': [...]}) or a list of cases, "
        f"got {type(suite).__name__}"
    )


def _check_suite(sim: Simulator, suite, golden, bless, max_z, theory_sigma_w2,
                 kwargs) -> SuiteResult:
    text, label = _suite_source(suite)
    golden = None if golden is None else _path("golden", golden)
    if as_bool("bless", bless) and golden is None:
        raise ValueError("bless: records golden outputs: needs golden=DIR")
    a = _base_settings(kwargs, forbidden=("max_z", "theory_sigma_w2"))
    out = _many(sim, "check_suite", a, "varprop check", suite=text, label=label,
                golden=golden, bless=bless, max_z=as_float("max_z", max_z),
                theory_sigma_w2=as_float("theory_sigma_w2", theory_sigma_w2))
    for c in out["cases"]:
        _issue_warnings([f"{c['name']}: {w}" for w in c["warnings"]])
    return SuiteResult(out)


def compare(inits=None, acts=None, sigma_w2s=None, **run_kwargs) -> pd.DataFrame:
    r"""Several schemes on one shape, one seed and one batch, side by side
    (``varprop compare``): every combination of ``acts``, ``inits`` and
    ``sigma_w2s`` (lists, or the CLI's comma-separated text; activations
    outermost), each run with the other keywords of :func:`run` (its
    defaults). Returns the DataFrame of ``varprop compare --format csv``:
    every layer of every scheme, with a ``scheme`` column first (e.g.
    ``"he-normal"``, ``"tanh/xavier-normal"``, ``"sigma_w2=1.5"``), then the
    columns of :func:`run`. ``df.attrs["schemes"]``: per scheme its
    ``config`` and ``headline`` (log q at layer L and its theory, the
    late slope d log q / d layer, g_1/g_L, c_L, the largest |z| against
    theory and its bound): the ``schemes`` of ``--format json``;
    ``pd.DataFrame([s["headline"] for s in df.attrs["schemes"]])`` is
    the CLI's summary table."""
    sim = default_simulator(run_kwargs.pop("device", "gpu"), run_kwargs.pop("adapter", None))
    return _compare(sim, inits, acts, sigma_w2s, run_kwargs)


def phase(act=_ACT, sigma_w2_range="0.5:4:8", sigma_b2_range="0:0.2:5",
          **run_kwargs) -> pd.DataFrame:
    r"""The order-to-chaos diagram of ``act`` (``varprop phase``): one run
    per point of the grid (sigma_b2 outermost), weights of variance
    sigma_w2/fan_in and biases of variance sigma_b2, with the other
    keywords of :func:`run` (not ``init``, ``sigma_w2``, ``sigma_b2``).
    Ranges: ``"A:B:N"`` or ``(A, B, N)`` (N points from A to B) or one
    number. Returns the DataFrame of ``varprop phase --format csv``, one
    row per point: ``sigma_w2``, ``sigma_b2``, the mean-field fixed point
    ``chi1`` (chi_1 = sigma_w2 E[phi'(sqrt(q*) z)^2]), ``q_star``,
    ``c_star``, ``xi_c``; ``c_last`` (c at layer L, mean over networks),
    ``c_last_se``, ``c_last_theory``, ``c_last_z``; ``log_q_last``,
    ``log_q_last_se``, ``log_q_last_theory``. Deep enough, c_last is 1
    where chi_1 < 1 (ordered) and c* where chi_1 > 1 (chaotic)."""
    sim = default_simulator(run_kwargs.pop("device", "gpu"), run_kwargs.pop("adapter", None))
    run_kwargs["act"] = act
    return _phase(sim, sigma_w2_range, sigma_b2_range, run_kwargs)


def sweep(path, out_dir, shard=None, force=False, device="gpu", adapter=None,
          chunk=DEFAULT_CHUNK, checkpoint_every=None, max_memory=None,
          progress=None) -> pd.DataFrame:
    r"""Every configuration of a sweep file (``varprop sweep FILE --out-dir
    DIR``): fixed settings at the top, lists under ``[grid]``. Writes
    DIR/ID.json per configuration (ID: the first 16 hex digits of the
    SHA-256 of its canonical settings) exactly as the command does,
    atomically, and skips those already there (``force=True``
    recomputes): an interrupted sweep resumes. ``shard``: ``"I/N"`` or
    ``(I, N)``, configuration k belonging to shard k mod N (default: the
    array job's, from SLURM_ARRAY_* or SGE_TASK_*, else the whole grid).
    Returns the summary (DIR/summary.csv, or a shard's
    DIR/summary-shard-I-of-N.csv) as a DataFrame: ``id``, the settings,
    the headline numbers. ``df.attrs``: ``summary`` (its path),
    ``configurations``, ``computed``, ``skipped``, ``message``."""
    sim = default_simulator(device, adapter)
    return _sweep(sim, path, out_dir, shard, force, chunk, checkpoint_every,
                  max_memory, progress)


def check_suite(suite, golden=None, bless=False, max_z=None, theory_sigma_w2=None,
                **run_kwargs) -> SuiteResult:
    r"""A regression suite (``varprop check --config FILE [--golden DIR]
    [--bless]``): every case is a :func:`check` (32 networks unless told),
    compared with theory; with ``golden=DIR`` also with its recorded output
    DIR/NAME.json (each measured mean against the recorded one, z =
    difference / sqrt(se_now^2 + se_then^2), Bonferroni bound), or, with
    ``bless=True``, recorded there (the same bytes the CLI writes).
    ``suite``: a path, TOML text, a dict of the file's schema
    (``{"max_z": 8.0, "case": [{"name": "tanh", "act": "tanh", ...}]}``)
    or a list of cases. Other keywords (those of :func:`run`) are the
    defaults of every case, as the CLI's flags are. Returns a
    :class:`SuiteResult` (``.passed``, ``bool()``, ``.report``, and a
    :class:`CaseResult` per case)."""
    sim = default_simulator(run_kwargs.pop("device", "gpu"), run_kwargs.pop("adapter", None))
    return _check_suite(sim, suite, golden, bless, max_z, theory_sigma_w2, run_kwargs)


def _sim_compare(self, inits=None, acts=None, sigma_w2s=None, **run_kwargs):
    return _compare(self, inits, acts, sigma_w2s, run_kwargs)


def _sim_phase(self, act=_ACT, sigma_w2_range="0.5:4:8", sigma_b2_range="0:0.2:5",
               **run_kwargs):
    run_kwargs["act"] = act
    return _phase(self, sigma_w2_range, sigma_b2_range, run_kwargs)


def _sim_sweep(self, path, out_dir, shard=None, force=False, chunk=DEFAULT_CHUNK,
               checkpoint_every=None, max_memory=None, progress=None):
    return _sweep(self, path, out_dir, shard, force, chunk, checkpoint_every,
                  max_memory, progress)


def _sim_check_suite(self, suite, golden=None, bless=False, max_z=None,
                     theory_sigma_w2=None, **run_kwargs):
    return _check_suite(self, suite, golden, bless, max_z, theory_sigma_w2, run_kwargs)


for _name, _fn, _public in [("compare", _sim_compare, compare), ("phase", _sim_phase, phase),
                            ("sweep", _sim_sweep, sweep),
                            ("check_suite", _sim_check_suite, check_suite)]:
    _fn.__name__ = _name
    _fn.__qualname__ = f"Simulator.{_name}"
    _fn.__doc__ = f"As :func:`varprop.{_name}`, on this simulator's device.\n\n" + _public.__doc__
    setattr(Simulator, _name, _fn)
