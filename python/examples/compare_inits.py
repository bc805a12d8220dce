"""Xavier, He and orthogonal initialisation of a deep ReLU stack, one figure:
log q against depth, measured (+- 2 SE) beside the mean-field theory.

    python python/examples/compare_inits.py [--depth 1000] [--width 256] [--out inits.png]

Xavier's q halves every layer (sigma_w2 = 1 for relu), He's keeps its mean
(sigma_w2 = 2), and orthogonal weights (gain 1) vanish like Xavier's.
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import varprop  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=1000)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--out", default="compare_inits.png")
    a = p.parse_args()
    sim = varprop.Simulator(device="auto")  # one context for the three runs
    fig, ax = plt.subplots(figsize=(7, 4))
    for init in ["xavier-normal", "he-normal", "orthogonal"]:
        df = sim.run(width=a.width, depth=a.depth, init=init)
        varprop.plot(df, quantity="q_post", ax=ax, label=init)
        last = df.iloc[-1]
        print(f"{init:>14}: layer {a.depth}: q_post = {last.q_post_mean:.4g} "
              f"(theory {last.q_post_theory:.4g}), mean log q = {last.log_q_post_mean:.2f}")
    ax.set_title(f"ReLU, width {a.width}: q after each layer")
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
