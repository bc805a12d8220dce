"""Keyword arguments to the settings record the Rust library reads.

Every keyword is checked for its type here (TypeError naming the keyword);
its value is checked by the library, with the command line's messages
(ValueError, ``width: must be >= 1`` for ``--width: must be >= 1``).
"""

from __future__ import annotations

import json
import numbers
import operator
import os
import tempfile

from . import _native

U64_MAX = 2**64 - 1


class _DefaultInt(int):
    """A default that shows as its value in ``help()`` but is not sent to
    the library, which applies the same default (and the defaults that
    depend on other settings: with ``init="siren"`` the activation is sin,
    with ``sigma_w2`` the init is custom, with ``widths`` or ``arch`` there
    is no width or depth)."""

    __slots__ = ()


class _DefaultStr(str):
    __slots__ = ()


def is_default(value) -> bool:
    return isinstance(value, (_DefaultInt, _DefaultStr))


def _is_bool(value) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def as_int(name: str, value, *, optional: bool = False, upper: int = U64_MAX):
    if value is None and optional:
        return None
    if _is_bool(value):
        raise TypeError(f"{name}: expected an int, got bool {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name}: expected an int, got {type(value).__name__} {value!r}"
        ) from None
    if v < 0:
        raise ValueError(f"{name}: must be a non-negative integer, got {v}")
    if v > upper:
        raise ValueError(f"{name}: at most {upper}, got {v}")
    return int(v)


def as_float(name: str, value, *, optional: bool = True):
    if value is None and optional:
        return None
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name}: expected a number, got {type(value).__name__} {value!r}"
        )
    return float(value)


def as_str(name: str, value, *, optional: bool = True):
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a str, got {type(value).__name__} {value!r}")
    return str(value)


def as_bool(name: str, value) -> bool:
    if not _is_bool(value):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def as_widths(value):
    """``widths="784,1024x3,10"`` or a sequence of ints."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        items = list(value)
    except TypeError:
        raise TypeError(
            f"widths: expected a str like '784,1024x3,10' or a sequence of ints, "
            f"got {type(value).__name__} {value!r}"
        ) from None
    return ",".join(str(as_int("widths", w)) for w in items)


def as_device(value) -> str:
    device = as_str("device", value, optional=False)
    if device not in ("gpu", "cpu", "auto"):
        raise ValueError(f"device: unknown '{device}'; accepted: gpu, cpu, auto")
    return device


class ArchFile:
    """``arch=`` as a path for the library: a path as given; TOML text or a
    dict written to a temporary file (removed on exit), after validating it
    under a readable label so that errors name it, not the temporary path."""

    def __init__(self, arch):
        self.path = None
        self._tmp = None
        self.label = None
        if arch is None:
            return
        if isinstance(arch, os.PathLike):
            self.path = os.fspath(arch)
            return
        if isinstance(arch, dict):
            text = _native.arch_toml_from_json(json.dumps(arch))
            self.label = "<arch dict>"
        elif isinstance(arch, str):
            looks_like_text = "\n" in arch or "[" in arch or "=" in arch
            if not looks_like_text:
                self.path = arch
                return
            text = arch
            self.label = "<arch text>"
        else:
            raise TypeError(
                "arch: expected a path, TOML text or a dict of the architecture "
                f"schema, got {type(arch).__name__}"
            )
        _native.parse_arch(self.label, text)
        self._tmp = tempfile.TemporaryDirectory(prefix="varprop-arch-")
        self.path = os.path.join(self._tmp.name, "arch.toml")
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(text)

    def rewrite(self, err: Exception) -> Exception:
        if self._tmp is not None and self.path in str(err):
            return type(err)(str(err).replace(self.path, self.label))
        return err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._tmp is not None:
            self._tmp.cleanup()


def network_settings(
    *, width, depth, widths, act, alpha, omega, init, sigma_w2, sigma_b2, dist,
    gain, fan_mode, q0, c0, convention=None, nonlinearity=None, kaiming_a=None,
    gain_from_act=False,
) -> dict:
    """The network's keys (kebab-case, as RunSettings reads them); defaults
    left out so that the library applies the command line's."""
    # None, as the default, leaves a setting to the library
    s = {}
    if not is_default(width):
        s["width"] = as_int("width", width, optional=True)
    if not is_default(depth):
        s["depth"] = as_int("depth", depth, optional=True)
    if widths is not None:
        s["widths"] = as_widths(widths)
    if not is_default(act):
        s["act"] = as_str("act", act)
    if not is_default(init):
        s["init"] = as_str("init", init)
    for name, key, value in [
        ("alpha", "alpha", alpha),
        ("omega", "omega", omega),
        ("sigma_w2", "sigma-w2", sigma_w2),
        ("sigma_b2", "sigma-b2", sigma_b2),
        ("gain", "gain", gain),
        ("kaiming_a", "kaiming-a", kaiming_a),
    ]:
        v = as_float(name, value)
        if v is not None:
            s[key] = v
    for name, key, value in [
        ("dist", "dist", dist),
        ("fan_mode", "fan-mode", fan_mode),
        ("convention", "convention", convention),
        ("nonlinearity", "nonlinearity", nonlinearity),
    ]:
        v = as_str(name, value)
        if v is not None:
            s[key] = v
    if as_bool("gain_from_act", gain_from_act):
        s["gain-from-act"] = True
    s["q0"] = as_float("q0", q0, optional=False)
    s["c0"] = as_float("c0", c0, optional=False)
    return {k: v for k, v in s.items() if v is not None}


def run_settings(
    *, batch, networks, seed, engine, backward, jacobian, weight_grads, bias, arch_path,
    ntk=False, parametrisation=None, tokens=None, token_c0=None, **net,
) -> dict:
    s = network_settings(**net)
    s["batch"] = as_int("batch", batch)
    s = {k: v for k, v in s.items() if v is not None}
    if not is_default(networks):
        s["networks"] = as_int("networks", networks, optional=True)
    s["seed"] = as_int("seed", seed)
    s["engine"] = as_str("engine", engine, optional=False)
    s["backward"] = as_bool("backward", backward)
    s["jacobian"] = as_bool("jacobian", jacobian)
    s["weight-grads"] = as_bool("weight_grads", weight_grads)
    if as_bool("ntk", ntk):
        s["ntk"] = True
    p = as_str("parametrisation", parametrisation)
    if p is not None:
        s["parametrisation"] = p
    b = as_str("bias", bias)
    if b is not None:
        s["bias"] = b
    if arch_path is not None:
        s["arch"] = arch_path
    t = as_int("tokens", tokens, optional=True)
    if t is not None:
        s["tokens"] = t
    tc = as_float("token_c0", token_c0)
    if tc is not None:
        s["token-c0"] = tc
    return s
