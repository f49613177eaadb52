"""``concept-poisoning``: class unlearning via concept inference and data poisoning (Chang et al.,
"Class Machine Unlearning for Complex Data via Concepts Inference and Data Poisoning", 2024).

1. **Concepts** (:mod:`unlearnbench.vision.concepts`). A post-hoc concept bottleneck on the
   target's penultimate features (the input of its head ``fc``, every training row): the concept
   vectors are ``n_concepts`` non-negative parts of those features (NMF; digits and CIFAR come
   without concept annotations, so the bank is learned, as ICE / CRAFT do), a row's concept
   scores its projections on them, and a multinomial logistic regression predicts the class
   from the scores. Integrated gradients of each class's probability with respect to the scores
   (baseline: no concept present), averaged over the class's rows, say which concepts make the
   class; the forget class's ``top_concepts`` are its concepts.
2. **Poisoning.** The forget rows are relabelled, ``variant=random``: uniformly among the other
   classes (this labelling is SalUn's ``rl``; the concept analysis is then reported, not used);
   ``variant=targeted``: with the class nearest to the forget class in concept space (the class
   whose rows' mean scores on the forget class's concepts lie closest to the forget class's),
   so the forget class's concepts are re-linked to the class that shares them. A forget set of
   several classes (``random-<p>``) gets one target per class.
3. **Fine-tuning** on the poisoned forget rows, shuffled together with the retain rows
   (``with_retain``, to keep the other classes) by the shared loop, SGD at a constant rate
   (SalUn's RL recipe scaled to the small models: 5 epochs at 0.01).

``ctx.info`` keeps, per forget class, its concepts with their attributions and its target
class, and how well the bottleneck predicts the labels (``bottleneck_accuracy``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.vision.classifier import train_classifier
from unlearnbench.vision.concepts import (
    Bottleneck, class_importance, concept_bank, concept_scores, nearest_class, penultimate_features, top_concepts,
)
from unlearnbench.vision.recipes import SGDParams, random_wrong_labels, relabelled_training_set, sgd_config

VARIANTS = ("random", "targeted")


@register_method("concept-poisoning",
                 summary="concepts located by a concept bottleneck + integrated gradients, then forget rows "
                         "poisoned with random or concept-nearest labels")
class ConceptPoisoning(Method):
    name = "concept-poisoning"
    needs = ("forget", "retain", "train")
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params(SGDParams):
        epochs: int = 5
        lr: float = 0.01
        variant: str = "targeted"  # or "random"
        n_concepts: int = 16
        top_concepts: int = 4
        ig_steps: int = 32
        with_retain: bool = True

    def unlearn(self, model, data, params, ctx):
        if params.variant not in VARIANTS:
            raise UserError(f"concept-poisoning variant {params.variant!r} is not known; use one of {', '.join(VARIANTS)}.")
        if data.x_train is not None:  # every training row (no copy of a large training set)
            x, y = data.x_train, np.asarray(data.y_train, dtype=np.int64)
        else:
            x = np.concatenate([np.asarray(data.x_forget), np.asarray(data.x_retain)])
            y = np.concatenate([np.asarray(data.y_forget), np.asarray(data.y_retain)]).astype(np.int64)
        model = model.to(ctx.device)
        features = penultimate_features(model, x, device=ctx.device)
        scores = concept_scores(features, concept_bank(features, params.n_concepts, ctx.seed))
        bottleneck = Bottleneck.fit(scores, y, data.num_classes, ctx.seed)
        importance = class_importance(bottleneck, scores, y, data.num_classes, params.ig_steps)

        y_forget = np.asarray(data.y_forget, dtype=np.int64)
        classes = {}
        for c in np.unique(y_forget).tolist():
            concepts = top_concepts(importance, c, params.top_concepts)
            classes[str(c)] = {"concepts": concepts, "attribution": [round(float(importance[c, k]), 6) for k in concepts],
                               "target": nearest_class(scores, y, c, concepts)}
        if params.variant == "targeted":
            labels = np.array([classes[str(c)]["target"] for c in y_forget.tolist()], dtype=np.int64)
        else:
            labels = random_wrong_labels(y_forget, data.num_classes, ctx.seed)
        ctx.info.update({"variant": params.variant, "concepts": params.n_concepts,
                         "bottleneck_accuracy": round(bottleneck.accuracy(scores, y), 4), "forget_classes": classes})
        if params.variant == "targeted" and len(classes) <= 3:
            ctx.log("concept-poisoning: " + "; ".join(f"class {c}: concepts {v['concepts']} -> target class {v['target']}"
                                                      for c, v in classes.items()))
        if params.with_retain:
            x_train, y_train = relabelled_training_set(data, ctx.seed, labels)
        else:
            x_train, y_train = np.asarray(data.x_forget), labels
        return train_classifier(model, x_train, y_train, sgd_config(params), ctx.seed, device=ctx.device,
                                quiet=ctx.quiet, description=f"unlearning (concept-poisoning, {params.variant})")
