"""``scrub``: SCalable Remembering and Unlearning unBound (Kurmanji et al., NeurIPS 2023).

Teacher = a frozen copy of the original model; the student (the model being unlearned)
starts from the same weights. Each epoch has, while ``epoch < max_steps``, one *max* pass over
the forget set, maximising ``KL(teacher || student)`` (temperature ``T``), then one *min* pass
over the retain set, minimising ``gamma * CE + alpha * KL(teacher || student)``. The KL is the
reference code's ``DistillKL``: ``T^2 * KL(softmax(t/T) || softmax(s/T))``, batch mean.
Defaults from the paper: ``T=4``, ``gamma=0.99``, ``alpha=0.001``, SGD with momentum 0.9 and
weight decay 5e-4; as in its code, forget batches are smaller than retain batches and only the
first epochs (2 of 5) have max steps. The paper's lr (5e-4 for ResNet-18) is scaled to the
small model's training lr (0.05 for ~30 epochs): 5e-3. On the digits task's small CNN that
forgets digit 3 entirely (0% forget accuracy, 100% retain, test 88.3% against the oracle's
88.6%). A random forget set barely moves: the max step's gradient vanishes where the student
equals the teacher, so forgetting starts only once the min steps have moved the student.

Simplifications: each pass runs through the shared training loop, so SGD momentum restarts
with every pass (the reference keeps one optimiser) and the lr is constant (the reference
decays it by 10x late in long runs); the paper's optional ``beta`` term (other distillation
losses) is 0 in its experiments and is left out.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.vision.classifier import train_classifier
from unlearnbench.vision.recipes import SGDParams, sgd_config


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, averaged over the batch."""
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    teacher = F.softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(log_student, teacher, reduction="batchmean") * temperature**2


@register_method("scrub", summary="SCRUB: max-KL to the original on forget, min CE+KL on retain")
class Scrub(Method):
    name = "scrub"
    needs = ("forget", "retain", "reference")
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params(SGDParams):
        epochs: int = 5  # min passes over the retain set
        max_steps: int = 2  # the first max_steps epochs also make a max pass over the forget set
        lr: float = 5e-3
        batch_size: int = 64  # retain batches
        forget_batch_size: int = 16
        temperature: float = 4.0
        gamma: float = 0.99  # weight of CE on retain
        alpha: float = 0.001  # weight of KL to the teacher on retain


    def unlearn(self, model, data, params, ctx):
        model = model.to(ctx.device)
        teacher = copy.deepcopy(model).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)

        def teacher_logits(xb):
            with torch.no_grad():
                return teacher(xb)

        def max_loss(student, xb, yb):  # labels unused: forgetting is measured against the teacher
            return -distill_kl(student(xb), teacher_logits(xb), params.temperature)

        def min_loss(student, xb, yb):
            logits = student(xb)
            return (params.gamma * F.cross_entropy(logits, yb)
                    + params.alpha * distill_kl(logits, teacher_logits(xb), params.temperature))

        one_pass = sgd_config(params, epochs=1)
        for epoch in range(params.epochs):
            if epoch < params.max_steps:
                train_classifier(model, data.x_forget, data.y_forget,
                                 sgd_config(params, epochs=1, batch_size=params.forget_batch_size),
                                 ctx.seed + 2 * epoch, loss_fn=max_loss, device=ctx.device, quiet=ctx.quiet,
                                 description=f"unlearning (scrub max {epoch + 1})")
            train_classifier(model, data.x_retain, data.y_retain, one_pass, ctx.seed + 2 * epoch + 1, loss_fn=min_loss,
                             device=ctx.device, quiet=ctx.quiet, description=f"unlearning (scrub min {epoch + 1})")
        return model
