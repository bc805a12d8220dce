# An independent float64 reference for deep 1 - c (issue 12), written from
# the model's definition in numpy, not from varprop's code.
# Usage: python3 scripts/weight_free_mc.py WIDTH DEPTH NETWORKS SEED
# Weight-free f64 Monte Carlo of a deep relu/He net, written from the model's
# definition (fresh Gaussian weights each layer): rows of h_{l+1} are iid
# N(0, sigma_w^2 phi(H_l)^T phi(H_l) / n). One pair per network (the law of
# a pair does not depend on the rest of the batch).
import numpy as np, sys
n, depth, S, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(seed)
sw2 = 2.0
# inputs: q0 = 1, c0 = 0, the same construction as varprop's
x = rng.standard_normal((S, n, 2))
G = np.einsum('sia,sib->sab', x, x) / n
rows = [r for r in (1, 10, 100, 300, 1000, depth) if r <= depth]
rows = sorted(set(rows))
out = {}
for l in range(1, depth + 1):
    K = sw2 * G
    qa, qb = K[:, 0, 0], K[:, 1, 1]
    c = K[:, 0, 1] / np.sqrt(qa * qb)
    z = rng.standard_normal((S, n, 2))
    ha = np.sqrt(qa)[:, None] * z[:, :, 0]
    hb = np.sqrt(qb)[:, None] * (c[:, None] * z[:, :, 0] + np.sqrt((1 - c) * (1 + c))[:, None] * z[:, :, 1])
    if l in rows:
        na, nb = np.sqrt((ha**2).sum(1)), np.sqrt((hb**2).sum(1))
        cm = (ha * hb).sum(1) / (na * nb)
        d = np.sqrt(((ha / na[:, None] - hb / nb[:, None])**2).sum(1))
        omc = d * d / 2  # 1 - c, computed without cancellation
        out[l] = omc
        print(f"row {l}: 1-c mean {omc.mean():.4e} se {omc.std(ddof=1)/np.sqrt(S):.2e}  log mean {np.log(omc).mean():.4f} se {np.log(omc).std(ddof=1)/np.sqrt(S):.3f}", flush=True)
    pa, pb = np.maximum(ha, 0), np.maximum(hb, 0)
    G = np.empty((S, 2, 2))
    G[:, 0, 0] = (pa * pa).sum(1) / n; G[:, 1, 1] = (pb * pb).sum(1) / n
    G[:, 0, 1] = G[:, 1, 0] = (pa * pb).sum(1) / n
