"""Forget-set selection for classifiers: random, whole class, cheap proxies and worst case.

Every selector returns sorted row indices into the training arrays (numpy ``x`` float32
``[N, C, H, W]``, ``y`` int64). :func:`select` dispatches on a strategy name and also
returns an ``info`` dict with the cost of the selection (wall seconds, forward/backward
example counts), so a benchmark can report what a forget set cost to find.

Strategies
----------
``random``          ``round(size_fraction * N)`` rows drawn uniformly without replacement.
``class``           every row of ``forget_class`` (``size_fraction`` is not used).
``proxy-loss``      the rows with the LOWEST cross-entropy under the original model: well
                    learned rows, the hardest to forget (Fan et al., 2024, list loss and
                    confidence as cheap proxies for the worst case).
``proxy-gradnorm``  the rows with the LOWEST per-example gradient norm ``||d CE_i / d theta||``
                    under the original model. Direction: a confidently fitted row has
                    ``softmax - onehot ~ 0``, hence a tiny gradient; gradient-ascent style
                    unlearning starts from these rows with almost no signal and moves them
                    slowly, so they are hard to forget (the same side as the lowest-loss
                    proxy and as the worst-case objective). High-norm rows are atypical or
                    mislabelled ones, which ascent forgets quickly: the easy direction.
``worst``           the bi-level "Challenging Forgets" selection (:func:`worst_case_indices`).

All model evaluations run in eval mode (no dropout, BatchNorm on its running statistics)
through :func:`torch.func.functional_call`, so the model passed in is never modified.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from unlearnbench.errors import UnknownNameError, UserError
from unlearnbench.progress import progress_bar

STRATEGIES = ("random", "class", "worst", "proxy-loss", "proxy-gradnorm")

# per-example gradients materialise chunk * n_params floats; keep that under this many elements
_PER_EXAMPLE_GRAD_BUDGET = 2**26

Params = dict[str, torch.Tensor]


# ---------------------------------------------------------------------------------------------
# sizes and the simple strategies


def forget_size(n_train: int, size_fraction: float) -> int:
    """``round(size_fraction * n_train)``; a UserError unless it is strictly between 0 and N."""
    try:
        fraction = float(size_fraction)
    except (TypeError, ValueError):
        raise UserError(f"Forget-set size must be a fraction in (0, 1), got {size_fraction!r}.") from None
    if not math.isfinite(fraction) or fraction <= 0 or fraction >= 1:
        raise UserError(
            f"Forget-set size {size_fraction!r} is not a fraction strictly between 0 and 1 "
            "(0% forgets nothing, 100% leaves no retain set); pass e.g. 0.1 for 10%."
        )
    m = int(round(fraction * n_train))
    if m <= 0 or m >= n_train:
        raise UserError(
            f"Forget-set size {fraction} of {n_train} training rows rounds to {m} rows; "
            f"it must select between 1 and {n_train - 1} rows. Choose a larger or smaller fraction."
        )
    return m


def random_indices(n_train: int, size_fraction: float, seed: int) -> np.ndarray:
    """``round(size_fraction * n_train)`` distinct rows drawn uniformly, sorted."""
    m = forget_size(n_train, size_fraction)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_train, size=m, replace=False)).astype(np.int64)


def class_indices(y_train: np.ndarray, k: int) -> np.ndarray:
    """Every row labelled ``k``, sorted."""
    return np.flatnonzero(np.asarray(y_train) == int(k)).astype(np.int64)


def _lowest(scores: np.ndarray, m: int) -> np.ndarray:
    """The m rows with the lowest score (ties: lower index first), sorted by index."""
    order = np.lexsort((np.arange(len(scores)), scores))
    return np.sort(order[:m]).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# functional evaluation helpers


def _device_of(model: nn.Module, device=None) -> torch.device:
    if device is not None:
        return torch.device(device)
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def model_params(model: nn.Module) -> Params:
    """Detached copies of the model's parameters (the starting point of inner unlearning)."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _buffers(model: nn.Module) -> Params:
    return {name: b.detach() for name, b in model.named_buffers()}


def _chunks(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(n, start + batch_size)


def _as_batch(x: np.ndarray, y: np.ndarray, rows, device):
    xb = torch.as_tensor(np.ascontiguousarray(x[rows]), dtype=torch.float32, device=device)
    yb = torch.as_tensor(np.asarray(y[rows]), dtype=torch.long, device=device)
    return xb, yb


class _Eval:
    """Put a module in eval mode for the duration, restoring its previous mode afterwards."""

    def __init__(self, model: nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self):
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was_training)


def per_example_losses(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, params: Params | None = None,
    batch_size: int = 512, device=None, rows: np.ndarray | None = None,
) -> np.ndarray:
    """Cross-entropy of each row (float64 ``[len(rows)]``), in eval mode, without gradients.

    ``params`` (a dict from :func:`model_params` or :func:`inner_unlearn`) replaces the
    model's own parameters; ``rows`` restricts to those rows (default: all)."""
    dev = _device_of(model, device)
    rows = np.arange(len(y)) if rows is None else np.asarray(rows)
    out = np.empty(len(rows), dtype=np.float64)
    buffers = _buffers(model)
    with _Eval(model), torch.no_grad():
        for a, b in _chunks(len(rows), batch_size):
            xb, yb = _as_batch(x, y, rows[a:b], dev)
            logits = model(xb) if params is None else functional_call(model, (params, buffers), (xb,))
            out[a:b] = F.cross_entropy(logits.float(), yb, reduction="none").double().cpu().numpy()
    return out


def per_example_grad_norms(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, batch_size: int = 512, device=None,
) -> np.ndarray:
    """``||d CE_i / d theta||_2`` over all parameters for each row (float64 ``[N]``), eval mode.

    Per-example gradients come from ``torch.func.vmap(grad(...))`` in chunks small enough that
    ``chunk * n_params`` stays bounded; a model that vmap cannot handle falls back to a loop."""
    dev = _device_of(model, device)
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = _buffers(model)
    n_params = sum(p.numel() for p in params.values())
    chunk = max(1, min(batch_size, _PER_EXAMPLE_GRAD_BUDGET // max(1, n_params)))

    def loss_one(p, b, xi, yi):
        logits = functional_call(model, (p, b), (xi.unsqueeze(0),))
        return F.cross_entropy(logits.float(), yi.unsqueeze(0))

    per_example = vmap(grad(loss_one), in_dims=(None, None, 0, 0))
    out = np.empty(len(y), dtype=np.float64)
    use_vmap = True
    with _Eval(model):
        for a, b in _chunks(len(y), chunk):
            xb, yb = _as_batch(x, y, np.arange(a, b), dev)
            norms = None
            if use_vmap:
                try:
                    grads = per_example(params, buffers, xb, yb)
                    norms = torch.sqrt(sum(g.flatten(1).double().pow(2).sum(1) for g in grads.values()))
                except (RuntimeError, NotImplementedError, ValueError):
                    use_vmap = False  # e.g. an in-place op vmap does not support: loop instead
            if norms is None:
                live = [p.detach().requires_grad_(True) for p in params.values()]
                named = dict(zip(params, live))
                norms = torch.empty(b - a, dtype=torch.float64)
                for i in range(b - a):
                    g = torch.autograd.grad(loss_one(named, buffers, xb[i], yb[i]), live)
                    norms[i] = torch.sqrt(sum(t.double().pow(2).sum() for t in g))
            out[a:b] = norms.cpu().numpy()
    return out


def proxy_loss_indices(model: nn.Module, x: np.ndarray, y: np.ndarray, m: int, *,
                       batch_size: int = 512, device=None) -> np.ndarray:
    """The m rows with the LOWEST cross-entropy under ``model`` (well learned, hardest to forget), sorted."""
    _check_m(m, len(y))
    return _lowest(per_example_losses(model, x, y, batch_size=batch_size, device=device), m)


def proxy_gradnorm_indices(model: nn.Module, x: np.ndarray, y: np.ndarray, m: int, *,
                           batch_size: int = 512, device=None) -> np.ndarray:
    """The m rows with the LOWEST per-example gradient norm under ``model``, sorted.

    Lowest, not highest: a row the model fits confidently has ``softmax - onehot ~ 0`` and a
    small gradient, so gradient-ascent unlearning barely moves it at first: these rows are the
    hard-to-forget ones, matching the lowest-loss proxy and the worst-case objective."""
    _check_m(m, len(y))
    return _lowest(per_example_grad_norms(model, x, y, batch_size=batch_size, device=device), m)


def _check_m(m: int, n: int) -> None:
    if not (0 < int(m) < n):
        raise UserError(f"A forget set must have between 1 and {n - 1} of the {n} training rows, got {m}.")


# ---------------------------------------------------------------------------------------------
# worst case (Challenging Forgets, Fan et al. 2024)


def project_capped_simplex(v: np.ndarray, m: float, *, iters: int = 100) -> np.ndarray:
    """Euclidean projection of ``v`` onto ``{w in [0, 1]^N : sum w = m}``.

    The KKT conditions give ``w = clip(v - tau, 0, 1)`` for the scalar shift ``tau`` that makes
    the sum m; ``sum clip(v - tau, 0, 1)`` is non-increasing in tau, so tau is found by
    bisection, then made exact on its linear piece (the rows strictly between the bounds)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    n = v.size
    m = float(m)
    if not (0.0 <= m <= n):
        raise ValueError(f"capped simplex needs 0 <= m <= N, got m={m}, N={n}")
    if m == 0:
        return np.zeros(n)
    if m == n:
        return np.ones(n)

    def total(tau: float) -> float:
        return float(np.clip(v - tau, 0.0, 1.0).sum())

    lo, hi = float(v.min()) - 1.0, float(v.max())  # total(lo) = n >= m, total(hi) = 0 <= m
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if total(mid) > m:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * max(1.0, abs(lo)):
            break
    tau = 0.5 * (lo + hi)
    # exact tau on the linear piece: sum_{free}(v - tau) + #ones = m
    shifted = v - tau
    ones = shifted >= 1.0
    free = (shifted > 0.0) & ~ones
    if free.any():
        exact = (v[free].sum() - (m - ones.sum())) / free.sum()
        w = np.clip(v - exact, 0.0, 1.0)
        if abs(w.sum() - m) <= abs(np.clip(shifted, 0.0, 1.0).sum() - m) + 1e-12:
            return w
    return np.clip(shifted, 0.0, 1.0)


def inner_unlearn(
    model: nn.Module, x: np.ndarray, y: np.ndarray, w: np.ndarray, m: float, *,
    steps: int = 5, lr: float = 1e-3, retain_weight: float = 1.0, retain_batch: int = 256,
    batch_size: int = 512, seed: int = 0, device=None, counters: dict | None = None,
) -> Params:
    """The lower level: ``steps`` sign-SGD steps from the model's parameters on

        ``L(theta) = -(1/m) sum_i w_i CE_i(theta) + retain_weight * mean_{j in R} (1 - w_j) CE_j(theta)``

    (gradient ascent on the weighted forget loss; R is a fresh uniform sample of
    ``retain_batch`` rows per step, drawn with ``seed``). The forget term is exact over the rows
    with ``w_i > 0``, accumulated in batches of ``batch_size``. Returns the unlearned parameters;
    the model is untouched. ``counters`` (forward/backward example counts) is updated in place."""
    dev = _device_of(model, device)
    w = np.asarray(w, dtype=np.float64)
    n = len(y)
    support = np.flatnonzero(w > 0)
    params = model_params(model)
    buffers = _buffers(model)
    gen = np.random.default_rng(seed)
    counters = counters if counters is not None else {}
    with _Eval(model):
        for _ in range(steps):
            live = {k: p.requires_grad_(True) for k, p in params.items()}
            total = [torch.zeros_like(p) for p in live.values()]

            def accumulate(rows: np.ndarray, weights: np.ndarray, scale: float) -> None:
                for a, b in _chunks(len(rows), batch_size):
                    xb, yb = _as_batch(x, y, rows[a:b], dev)
                    wb = torch.as_tensor(weights[a:b], dtype=torch.float32, device=dev)
                    logits = functional_call(model, (live, buffers), (xb,))
                    loss = scale * (wb * F.cross_entropy(logits.float(), yb, reduction="none")).sum()
                    for t, g in zip(total, torch.autograd.grad(loss, list(live.values()))):
                        t.add_(g)
                    counters["forward_examples"] = counters.get("forward_examples", 0) + (b - a)
                    counters["backward_examples"] = counters.get("backward_examples", 0) + (b - a)

            accumulate(support, w[support], -1.0 / m)
            if retain_weight > 0 and retain_batch > 0:
                rows = gen.choice(n, size=min(retain_batch, n), replace=False)
                accumulate(rows, 1.0 - w[rows], retain_weight / len(rows))
            with torch.no_grad():
                params = {k: (p.detach() - lr * torch.sign(g)) for (k, p), g in zip(live.items(), total)}
    return params


def worst_case_indices(
    model: nn.Module, x: np.ndarray, y: np.ndarray, m: int, *,
    retain_weight: float = 1.0, steps: int = 10, inner_steps: int = 5, inner_lr: float = 1e-3,
    gamma: float = 0.1, lr: float = 0.1, retain_batch: int = 256, binarize_every: int | None = None,
    batch_size: int = 512, seed: int = 0, device=None, quiet: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The m rows that stay best remembered after unlearning them: the worst-case forget set.

    Bi-level (Fan et al., 2024, "Challenging Forgets"): weights ``w in [0, 1]^N`` with
    ``sum w = m``, initialised uniform (``m / N``). Each of ``steps`` outer steps

    1. lower level: ``theta_u(w)`` = :func:`inner_unlearn` (``inner_steps`` sign-SGD steps of
       size ``inner_lr`` from the original model, ascent on the w-weighted forget CE plus
       ``retain_weight`` times CE on a sample of rows weighted by ``1 - w``);
    2. upper level: ``min_w sum_i w_i CE_i(theta_u(w)) + gamma ||w||^2``, with the implicit
       gradient through ``theta_u`` dropped, so ``d/dw_i = CE_i(theta_u) + 2 gamma w_i``
       (one forward pass over all N rows); ``w <- project_capped_simplex(w - lr * grad, m)``.

    At the end w is binarised to its top m (ties: lower final loss, then lower index) and that
    set is scored once: one more lower level on the binary weights, then the mean loss of the
    m rows (``info["selected_loss_after_unlearning"]``). ``binarize_every=k`` (as in the
    reference code) also replaces w by its top-m binarisation after every k-th step; each
    binary iterate is then scored by the next step, and the best-scoring binary set is
    returned (without it, the only binary set is the final one, so this is the final top m).

    Cost per outer step: ``inner_steps`` forward+backward passes over the support of w (at
    most N rows) plus ``retain_batch`` rows, then one forward pass over N rows; memory is one
    batch of ``batch_size`` rows at a time. Returns (sorted indices, info) with
    ``wall_seconds``, ``outer_steps``, ``forward_examples``, ``backward_examples`` (and the same
    divided by N as ``*_epochs``) and the upper objective per step."""
    n = len(y)
    _check_m(m, n)
    start = time.perf_counter()
    counters = {"forward_examples": 0, "backward_examples": 0}
    lower = dict(steps=inner_steps, lr=inner_lr, retain_weight=retain_weight, retain_batch=retain_batch,
                 batch_size=batch_size, device=device, counters=counters)
    w = np.full(n, m / n)
    objective: list[float] = []
    best: tuple[float, np.ndarray] | None = None  # (mean loss after unlearning, indices) of binary sets
    losses = np.zeros(n)
    with progress_bar("worst-case forget set", total=steps, quiet=quiet) as advance:
        for step in range(steps):
            params = inner_unlearn(model, x, y, w, m, seed=seed * 100_003 + step, **lower)
            losses = _finite(per_example_losses(model, x, y, params=params, batch_size=batch_size, device=device))
            counters["forward_examples"] += n
            objective.append(float(w @ losses + gamma * w @ w))
            if step > 0 and _is_binary(w):
                rows = np.flatnonzero(w > 0.5)
                best = _better(best, float(losses[rows].mean()), rows)
            w = project_capped_simplex(w - lr * (losses + 2.0 * gamma * w), m)
            if binarize_every and (step + 1) % binarize_every == 0:
                w = _binarize(w, losses, m)
            advance(objective=objective[-1] / m, support=int((w > 0).sum()))
    final = _binarize(w, losses, m)
    rows = np.flatnonzero(final > 0.5)
    params = inner_unlearn(model, x, y, final, m, seed=seed * 100_003 + steps, **lower)
    selected = _finite(per_example_losses(model, x, y, params=params, rows=rows, batch_size=batch_size, device=device))
    counters["forward_examples"] += m
    best = _better(best, float(selected.mean()), rows)
    info = {
        "strategy": "worst",
        "size": int(m),
        "wall_seconds": time.perf_counter() - start,
        "outer_steps": int(steps),
        "inner_steps": int(inner_steps),
        **counters,
        "forward_epochs": counters["forward_examples"] / n,
        "backward_epochs": counters["backward_examples"] / n,
        "objective": objective,
        "selected_loss_after_unlearning": best[0],
        "params": {"retain_weight": retain_weight, "steps": steps, "inner_steps": inner_steps,
                   "inner_lr": inner_lr, "gamma": gamma, "lr": lr, "retain_batch": retain_batch,
                   "binarize_every": binarize_every, "seed": seed},
        "fractional_rows": int(((w > 1e-9) & (w < 1 - 1e-9)).sum()),
    }
    return np.sort(best[1]).astype(np.int64), info


def _finite(losses: np.ndarray) -> np.ndarray:
    """Non-finite losses (a diverged lower level) count as huge: such rows were forgotten."""
    return np.nan_to_num(losses, nan=1e30, posinf=1e30, neginf=0.0)


def _is_binary(w: np.ndarray) -> bool:
    return bool(np.all((w == 0.0) | (w == 1.0)))


def _better(best, score: float, rows: np.ndarray):
    return (score, rows) if best is None or score < best[0] else best


def _binarize(w: np.ndarray, losses: np.ndarray, m: int) -> np.ndarray:
    """0/1 weights on the top m of w (ties: lower loss, then lower index)."""
    order = np.lexsort((np.arange(len(w)), losses, -w))
    out = np.zeros(len(w))
    out[order[:m]] = 1.0
    return out


# ---------------------------------------------------------------------------------------------
# dispatcher


def select(
    strategy: str, *, model: nn.Module | None = None, x: np.ndarray, y: np.ndarray,
    size_fraction: float | None, seed: int, forget_class: int | None = None,
    quiet: bool = False, batch_size: int = 512, device=None, **options,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Pick a forget set with ``strategy`` (one of :data:`STRATEGIES`); returns (sorted indices, info).

    ``size_fraction`` in (0, 1) sets ``m = round(size_fraction * N)`` (0 or >= 1 is a UserError);
    ``class`` ignores it and takes every row of ``forget_class``. ``options`` go to
    :func:`worst_case_indices` (``steps``, ``gamma``, ...) and are only accepted for ``worst``."""
    if strategy not in STRATEGIES:
        raise UnknownNameError("strategy", str(strategy), STRATEGIES)
    if options and strategy != "worst":
        raise UserError(f"Strategy {strategy!r} takes no options; got {sorted(options)}.")
    if options:
        known = ("retain_weight", "steps", "inner_steps", "inner_lr", "gamma", "lr", "retain_batch", "binarize_every")
        for name in options:
            if name not in known:
                raise UnknownNameError("parameter", name, known)
    y = np.asarray(y)
    n = len(y)
    start = time.perf_counter()
    if strategy == "class":
        if forget_class is None:
            raise UserError("Strategy 'class' needs a forget class; pass forget_class (e.g. 0).")
        indices = class_indices(y, forget_class)
        if len(indices) == 0:
            raise UserError(f"Forget class {forget_class} has no training rows (0% of the data); "
                            f"classes present: {sorted(set(np.unique(y).tolist()))}.")
        if len(indices) >= n:
            raise UserError(f"Forget class {forget_class} is 100% of the training rows; nothing would be retained.")
        return indices, _info("class", indices, start, forget_class=int(forget_class))
    m = forget_size(n, size_fraction)
    if strategy == "random":
        indices = random_indices(n, size_fraction, seed)
        return indices, _info("random", indices, start)
    if model is None:
        raise UserError(f"Strategy {strategy!r} needs the original model to score the training rows.")
    if strategy == "worst":
        return worst_case_indices(model, x, y, m, seed=seed, quiet=quiet, batch_size=batch_size,
                                  device=device, **options)
    selector: Callable = proxy_loss_indices if strategy == "proxy-loss" else proxy_gradnorm_indices
    indices = selector(model, x, y, m, batch_size=batch_size, device=device)
    backward = n if strategy == "proxy-gradnorm" else 0
    return indices, _info(strategy, indices, start, forward_examples=n, backward_examples=backward, n=n)


def _info(strategy: str, indices: np.ndarray, start: float, *, forward_examples: int = 0,
          backward_examples: int = 0, n: int | None = None, **extra) -> dict[str, Any]:
    info = {
        "strategy": strategy,
        "size": int(len(indices)),
        "wall_seconds": time.perf_counter() - start,
        "outer_steps": 0,
        "forward_examples": int(forward_examples),
        "backward_examples": int(backward_examples),
        "forward_epochs": forward_examples / n if n else 0.0,
        "backward_epochs": backward_examples / n if n else 0.0,
    }
    info.update(extra)
    return info
