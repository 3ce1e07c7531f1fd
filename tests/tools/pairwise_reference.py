#!/usr/bin/env python3
"""An independent reference for core/util/pairwise.h, written from the published models.

Bradley-Terry (Bradley & Terry 1952) fitted by Hunter's MM algorithm (Hunter 2004, "MM algorithms
for generalized Bradley-Terry models", eq. 3) rather than the Newton's method the C++ uses: ties
(and "both bad") count half a win to each side, and every contestant plays one virtual tie
against an anchor whose strength is fixed at 1 (theta 0). Krippendorff's alpha for nominal data
from Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C (D_o and D_e).
The bootstrap draws its resamples from SplitMix64, index = next() % n, as the C++ does.

Reads JSON on stdin:
  {"contestants": K, "judgements": [{"first", "second", "outcome", "item", "rater"}],
   "resamples": B, "seed": S}
with outcome one of "first", "second", "tie", "both_bad", and prints
  {"theta": [...], "ratings": [{"rating", "ci95_low", "ci95_high"}], "alpha": a or null,
   "win_rates": [[wins_ij / n_ij or null]]}

With --self-check, checks itself on Krippendorff's published example (nominal alpha 0.743) and on
a fit whose answer is known in closed form (two contestants, anchor included).
"""
import json
import math
import sys

import numpy as np

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def tallies(k, judgements):
    wins = np.zeros((k, k))
    games = np.zeros((k, k))
    for j in judgements:
        a, b, outcome = j["first"], j["second"], j["outcome"]
        games[a, b] += 1
        games[b, a] += 1
        if outcome == "first":
            wins[a, b] += 1
        elif outcome == "second":
            wins[b, a] += 1
        else:
            wins[a, b] += 0.5
            wins[b, a] += 0.5
    return wins, games


def anchor_shift(theta):
    """The c maximising the anchor's ties' likelihood of theta + c: sum(1/2 - sigma(theta + c))
    = 0, by bisection (the other terms depend on differences only)."""
    low, high = -60.0, 60.0
    for _ in range(120):
        middle = (low + high) / 2
        if np.sum(0.5 - 1.0 / (1.0 + np.exp(-(theta + middle)))) > 0:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def fit(k, judgements):
    """Hunter's MM update with an anchor of strength 1 that every contestant ties once. The anchor
    alone sets the common level, which MM moves slowly (thousands of steps); each MM step is
    followed by the exact best shift of all strengths together, a block-coordinate step of the
    same objective, so the fit converges in tens of steps."""
    wins, games = tallies(k, judgements)
    total_wins = wins.sum(axis=1) + 0.5  # the anchor's tie: half a win
    gamma = np.ones(k)
    for _ in range(100000):
        denominator = (games / (gamma[:, None] + gamma[None, :])).sum(axis=1) + 1.0 / (gamma + 1.0)
        theta = np.log(total_wins / denominator)
        updated = np.exp(theta + anchor_shift(theta))
        if np.max(np.abs(np.log(updated) - np.log(gamma))) < 1e-14:
            gamma = updated
            break
        gamma = updated
    return np.log(gamma)


def elo(theta):
    return 1000.0 + 400.0 * theta / math.log(10.0)


def percentile(values, q):
    return float(np.percentile(np.array(values), q * 100.0))  # linear, numpy's default


def krippendorff_nominal(units):
    """units: {item: [value, ...]}; values compared for equality only."""
    pairable = {u: v for u, v in units.items() if len(v) >= 2}
    if not pairable:
        return None
    # Coincidences o_ck = sum over units of (number of c-k pairs) / (m_u - 1).
    o = {}
    for values in pairable.values():
        m = len(values)
        for a in range(m):
            for b in range(m):
                if a != b:
                    key = (values[a], values[b])
                    o[key] = o.get(key, 0.0) + 1.0 / (m - 1)
    categories = sorted({c for c, _ in o})
    n_c = {c: sum(o.get((c, k), 0.0) for k in categories) for c in categories}
    n = sum(n_c.values())
    d_o = sum(v for (c, k), v in o.items() if c != k) / n
    d_e = sum(n_c[c] * n_c[k] for c in categories for k in categories if c != k) / (n * (n - 1))
    if d_e == 0:
        return None
    return 1.0 - d_o / d_e


def agreement(judgements):
    units = {}
    for j in judgements:
        if j["outcome"] == "first":
            value = ("wins", j["first"])
        elif j["outcome"] == "second":
            value = ("wins", j["second"])
        else:
            value = (j["outcome"], None)
        units.setdefault(j["item"], []).append(value)
    return krippendorff_nominal(units)


def answer(request):
    k = request["contestants"]
    judgements = request["judgements"]
    theta = fit(k, judgements)
    ratings = [{"rating": elo(t), "ci95_low": elo(t), "ci95_high": elo(t)} for t in theta]
    resamples = request.get("resamples", 0)
    if judgements and resamples > 0:
        random = SplitMix64(request.get("seed", 0))
        drawn = [[] for _ in range(k)]
        n = len(judgements)
        for _ in range(resamples):
            sample = [judgements[random.next() % n] for _ in range(n)]
            refit = fit(k, sample)
            for i in range(k):
                drawn[i].append(elo(refit[i]))
        for i in range(k):
            ratings[i]["ci95_low"] = percentile(drawn[i], 0.025)
            ratings[i]["ci95_high"] = percentile(drawn[i], 0.975)
    wins, games = tallies(k, judgements)
    win_rates = [[(wins[i, j] / games[i, j]) if games[i, j] > 0 else None for j in range(k)]
                 for i in range(k)]
    return {"theta": list(theta), "ratings": ratings, "alpha": agreement(judgements),
            "win_rates": win_rates}


def self_check():
    # Krippendorff (2011), the reliability data of section C: 4 observers, 12 units, nominal
    # alpha = 0.743.
    rows = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = {}
    for row in rows:
        for u, v in enumerate(row):
            if v is not None:
                units.setdefault(u, []).append(v)
    alpha = krippendorff_nominal(units)
    assert abs(alpha - 0.743) < 0.0005, alpha
    # Two contestants, a beats b w times and loses l times: with the anchor, theta solves
    # d/dtheta = 0 for each; check the MM fit satisfies the likelihood equations.
    judgements = [{"first": 0, "second": 1, "outcome": "first"}] * 7 + \
                 [{"first": 0, "second": 1, "outcome": "second"}] * 3
    theta = fit(2, judgements)
    s = lambda x: 1.0 / (1.0 + math.exp(-x))
    g0 = 7 - 10 * s(theta[0] - theta[1]) + 0.5 - s(theta[0])
    g1 = 3 - 10 * s(theta[1] - theta[0]) + 0.5 - s(theta[1])
    assert abs(g0) < 1e-9 and abs(g1) < 1e-9, (g0, g1)
    print("pairwise_reference self-check: ok")


if __name__ == "__main__":
    if "--self-check" in sys.argv:
        self_check()
    else:
        print(json.dumps(answer(json.load(sys.stdin))))
