#!/usr/bin/env python3
"""The peer of `varprop bench`'s forward run, written the way a researcher
would write it with numpy: the same dense forward simulation (batch B of
inputs in correlated pairs, L layers of width n, fresh Gaussian weights
every layer, ReLU with He initialisation by default) and the same per-layer
statistics (q_pre, q_post, mean_pre, mean_post, kurt_pre, zero_frac, the
per-pair correlation c_pre, per-input log q_post). No renormalisation: He
keeps q near 1. Prints the wall time of the whole run (median of
--repeats) and GFLOP/s counting 2 B n^2 per layer, as varprop does.

    python3 benches/peer_numpy.py                      # B=256, n=1024, L=200
    python3 benches/peer_numpy.py --batch 32 --width 128 --depth 20
"""

import argparse
import time

import numpy as np

ACTIVATIONS = {
    "relu": (lambda h: np.maximum(h, 0), lambda h: h > 0, 2.0),
    "tanh": (np.tanh, lambda h: np.ones_like(h, dtype=bool), 1.0),
}


def simulate(batch, width, depth, act, seed, dtype, q0=1.0, c0=0.5):
    phi, deriv_nonzero, gain2 = ACTIVATIONS[act]
    rng = np.random.default_rng(seed)
    # inputs in pairs (2k, 2k+1) with second moment q0 and correlation c0
    z1 = rng.standard_normal((batch // 2, width), dtype=dtype)
    z2 = rng.standard_normal((batch // 2, width), dtype=dtype)
    x = np.empty((batch, width), dtype=dtype)
    x[0::2] = np.sqrt(q0) * z1
    x[1::2] = np.sqrt(q0) * (c0 * z1 + np.sqrt(1 - c0 * c0) * z2)
    std = np.sqrt(gain2 / width)  # He (fan_in) for relu, Xavier-like for tanh
    rows = []
    for layer in range(1, depth + 1):
        w = rng.standard_normal((width, width), dtype=dtype)
        w *= std
        h = x @ w.T
        x = phi(h)
        h2 = h * h
        q_pre = h2.mean()
        ha, hb = h[0::2], h[1::2]
        c_pre = np.mean((ha * hb).sum(1) / np.sqrt(h2[0::2].sum(1) * h2[1::2].sum(1)))
        sample_q_post = (x * x).mean(1)
        rows.append(
            {
                "layer": layer,
                "q_pre": float(q_pre),
                "q_post": float(sample_q_post.mean()),
                "mean_pre": float(h.mean()),
                "mean_post": float(x.mean()),
                "kurt_pre": float((h2 * h2).mean() / (q_pre * q_pre)),
                "zero_frac": float(1.0 - deriv_nonzero(h).mean()),
                "c_pre": float(c_pre),
                "log_q_post_sample_mean": float(np.log(sample_q_post).mean()),
            }
        )
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--depth", type=int, default=200)
    p.add_argument("--act", choices=sorted(ACTIVATIONS), default="relu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        rows = simulate(args.batch, args.width, args.depth, args.act, args.seed, np.dtype(args.dtype))
        times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    flops = 2.0 * args.batch * args.width * args.width * args.depth
    last = rows[-1]
    print(
        f"numpy {np.__version__} ({args.dtype}): B={args.batch} n={args.width} L={args.depth} {args.act}: "
        f"{seconds:.3f} s (median of {args.repeats}: {', '.join(f'{t:.3f}' for t in times)}), "
        f"{args.depth / seconds:.2f} layers/s, {flops / seconds / 1e9:.3f} GFLOP/s"
    )
    print(
        f"layer {last['layer']}: q_pre {last['q_pre']:.4f} q_post {last['q_post']:.4f} "
        f"c_pre {last['c_pre']:.4f} zero_frac {last['zero_frac']:.4f} kurt_pre {last['kurt_pre']:.3f}"
    )


if __name__ == "__main__":
    main()
