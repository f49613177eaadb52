"""The privacy lens of every language-model suite: six membership-inference attacks,
members = the forget set, non-members = a holdout set of the same kind.

``statistics`` asks the engine once per (model, split) for teacher-forced token statistics:
the same forward pass serves LOSS, Zlib, Min-K%, Min-K%++ (whose next-token moments the
engine computes in chunks) and, through the oracle's NLL, the Reference attack. Only GradNorm
needs gradients. ``per_example`` keeps one score per example and attack (what ROC curves are
drawn from); ``aggregate`` is pure and turns them into ``mia_<attack>_auc`` with bootstrap CIs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unlearnbench.metrics import privacy as attacks
from unlearnbench.suites.common import MetricRow

ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm")
GROUPS = ("forget", "holdout")  # members, non-members


def rows() -> list[MetricRow]:
    return [MetricRow(f"mia_{a}_auc", "oracle", "privacy", f"{attacks.ATTACKS[a]}: AUC forget vs holdout (0.5 = indistinguishable)")
            for a in ATTACKS]


def statistics(engine, members: list[tuple[str, str]], nonmembers: list[tuple[str, str]]) -> dict[str, Any]:
    """Token statistics and gradient norms of the member and non-member texts."""
    engine.score(members + nonmembers, description="privacy lens")
    norms = engine.gradnorms(members + nonmembers)
    out = {}
    for group, pairs, group_norms in (("forget", members, norms[: len(members)]), ("holdout", nonmembers, norms[len(members):])):
        scores = engine.score(pairs)
        out[group] = {
            "texts": [a for _, a in pairs],
            "nll": np.array([s.nll for s in scores]),
            # Min-K% and Min-K%++ read the text's own tokens; the LOSS, Zlib and Reference attacks the NLL
            "logprobs": [s.text_logprobs for s in scores],
            "mu": [s.text_mu for s in scores],
            "sigma": [s.text_sigma for s in scores],
            "gradnorm": np.asarray(group_norms, dtype=float),
        }
    return out


def per_example(stats: dict[str, Any]) -> dict[str, dict[str, list]]:
    """One score per example and attack (higher = more likely a member). The Reference
    attack needs the oracle's NLL, so it is formed in :func:`aggregate` from ``nll``."""
    out = {}
    for group, s in stats.items():
        out[group] = {
            "nll": s["nll"].tolist(),
            "loss": attacks.loss_score(s["nll"]).tolist(),
            "zlib": attacks.zlib_score(s["nll"], s["texts"]).tolist(),
            "min_k": attacks.min_k_score(s["logprobs"]).tolist(),
            "min_k_plus_plus": attacks.min_k_plus_plus_score(s["logprobs"], s["mu"], s["sigma"]).tolist(),
            "gradnorm": attacks.gradnorm_score(s["gradnorm"]).tolist(),
        }
    return out


def attack_scores(scores: dict, oracle_scores: dict | None, attack: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(member scores, non-member scores) of one attack; None for the Reference attack
    when no oracle scores are at hand."""
    if attack == "reference":
        if oracle_scores is None:
            return None
        return tuple(attacks.reference_score(scores[g]["nll"], oracle_scores[g]["nll"]) for g in GROUPS)
    return tuple(np.asarray(scores[g][attack], dtype=float) for g in GROUPS)


def aggregate(scores: dict, oracle_scores: dict | None, metrics: dict, ci: dict, *, seed: int = 0,
              n_resamples: int = 1000) -> None:
    """Add ``mia_<attack>_auc`` and its stratified bootstrap CI for every attack."""
    for attack in ATTACKS:
        pair = attack_scores(scores, oracle_scores, attack)
        if pair is None:
            continue
        name = f"mia_{attack}_auc"
        metrics[name] = attacks.mia_auc(*pair)
        ci[name] = list(attacks.attack_auc_bootstrap_ci(*pair, n_resamples=n_resamples, seed=seed))
