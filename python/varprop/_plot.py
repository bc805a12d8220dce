"""varprop.plot: log q against depth, as ``varprop run --plot`` draws it
(matplotlib, an optional dependency)."""

from __future__ import annotations


def plot(df, quantity: str = "q_post", ax=None, label=None):
    """Draws ``quantity`` (``"q_post"``, ``"q_pre"``, ``"g"``, ...) of a
    :func:`varprop.run` DataFrame against the layer on a log scale: the
    measured mean with a band of +- 2 standard errors (on the log axis mean / (1 + 2 SE/mean) where
    mean - 2 SE <= 0), and the theory (``<quantity>_theory``) dashed.
    Returns the matplotlib Axes."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover
        raise ImportError("varprop.plot needs matplotlib: pip install matplotlib") from e
    import numpy as np

    mean_col, se_col = f"{quantity}_mean", f"{quantity}_se"
    if mean_col not in df.columns:
        raise ValueError(
            f"quantity: no column {mean_col!r}; the DataFrame has "
            + ", ".join(c[:-5] for c in df.columns if c.endswith("_mean"))
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    layer = df["layer"].to_numpy()
    mean = df[mean_col].to_numpy(dtype=float)
    line = ax.plot(layer, mean, label=label or f"{quantity} (measured)")[0]
    if se_col in df.columns:
        se = df[se_col].to_numpy(dtype=float)
        # mean - 2 SE where positive, else mean / (1 + 2 SE/mean): on the log
        # axis the band stays around the mean instead of falling to zero
        lower = np.where(mean - 2 * se > 0, mean - 2 * se, mean / (1 + 2 * se / mean))
        ax.fill_between(layer, lower, mean + 2 * se, color=line.get_color(),
                        alpha=0.25, linewidth=0)
    theory_col = f"{quantity}_theory"
    if theory_col in df.columns:
        shown = any(l.get_label() == "theory" for l in ax.get_lines())
        ax.plot(layer, df[theory_col], "--", color="k", linewidth=1,
                label="_nolegend_" if shown else "theory")
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel(quantity)
    ax.legend()
    return ax
