"""``ga``: gradient ascent on the forget set (Jang et al., 2023), for classifiers.

Loss ``-CE(forget)``. SalUn's GA baseline uses SGD (momentum 0.9, weight decay 5e-4) for 5
epochs at lr in [1e-5, 1e-3] on ResNet-18 / CIFAR-10. A small GroupNorm CNN on a small forget
set (3 batches per epoch on digits) takes far fewer steps and barely moves at those rates, so
the default is 5 epochs at lr 0.02 (under half the training lr). On digits/class-3 that lowers
forget accuracy to ~0.8; at 0.025 it reaches 0 (and costs ~5 points of retain accuracy); at
0.1 only the early stop below keeps the model from collapsing: GA is very lr-sensitive and
must not run away silently. So it stops early, and says so in the run's ``info`` (``ga_stopped``: reason, step, epoch) and log, when

- the accuracy on the whole forget set reaches 0 (checked every ``check_every`` steps,
  by default about 4 times per epoch, and before the first step), or
- the loss explodes: the cross-entropy of a forget batch exceeds ``max_loss`` nats (for 10
  classes chance is 2.3; 20 means the true class gets ~1e-9 probability).

A non-finite loss still fails the run (:class:`~unlearnbench.errors.TrainingDivergedError`).
"""

import math
from dataclasses import dataclass

import numpy as np
from torch.nn import functional as F

from unlearnbench.arraytasks import AscentGuard
from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.vision.classifier import predict_proba, train_classifier
from unlearnbench.vision.recipes import SGDParams, sgd_config


@register_method("ga", summary="gradient ascent on the forget set")
class ClassifierGradientAscent(Method):
    name = "ga"
    needs = ("forget",)
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params(SGDParams):
        epochs: int = 5
        lr: float = 0.02
        max_loss: float = 20.0  # stop when a forget batch's CE exceeds this (nats)
        check_every: int = 0  # steps between forget-accuracy checks; 0: about 4 times per epoch

    def unlearn(self, model, data, params, ctx):
        x, y = data.x_forget, np.asarray(data.y_forget)
        guard = AscentGuard(ctx, len(y), params.batch_size, params.check_every)

        def loss_fn(m, xb, yb):
            if guard.due:
                accuracy = float((predict_proba(m, x, device=ctx.device).argmax(1) == y).mean())
                if accuracy == 0.0:
                    guard.stop("forget accuracy reached 0")
            ce = F.cross_entropy(m(xb), yb)
            value = float(ce.detach())
            if math.isfinite(value) and value > params.max_loss:
                guard.stop(f"forget loss {value:.3g} exceeded max_loss={params.max_loss:g}")
            guard.step += 1
            return -ce

        guard.run(lambda: train_classifier(model, x, y, sgd_config(params), ctx.seed, loss_fn=loss_fn,
                                           device=ctx.device, quiet=ctx.quiet, description="unlearning (ga)"))
        return model.eval()
