"""Registration of the importable metric functions, with their direction and lens.

The functions themselves live in :mod:`unlearnbench.metrics.behavior` and are pure: call them
on numbers computed anywhere. Record names combine a split and a metric
(``forget_truth_ratio``, ``retain_probability``); ``--metrics`` takes these base names.
"""

from unlearnbench.metrics import behavior
from unlearnbench.registry import register_metric

_METRICS = [
    ("probability", behavior.answer_probability, "higher on retain, lower on forget", "behavior",
     "P(a|q) = exp(-mean token NLL); normalised over the options on real authors / world facts"),
    ("normalized_probability", behavior.normalized_probability, "higher", "utility",
     "P(a|q) / (P(a|q) + sum_j P(pert_j|q))"),
    ("rouge_l_recall", behavior.rouge_l_recall, "higher on retain, lower on forget", "behavior",
     "ROUGE-L recall of the greedy answer against the reference"),
    ("truth_ratio", behavior.truth_ratio, "higher", "behavior",
     "exp(-mean_j L(pert_j)) / exp(-L(correct)); summarised per split"),
    ("forget_quality", behavior.forget_quality, "higher", "behavior",
     "KS-test p-value between the forget truth ratios of the model and of the oracle"),
    ("model_utility", behavior.model_utility, "higher", "utility",
     "harmonic mean of the nine retain / real-authors / world-facts numbers"),
    ("exact_memorization", behavior.exact_memorization, "lower on forget", "behavior",
     "share of answer tokens the teacher-forced argmax reproduces"),
    ("extraction_strength", behavior.extraction_strength, "lower on forget", "behavior",
     "1 - k*/|y|, k* the shortest prefix after which the argmax reproduces the rest"),
]

for _name, _fn, _direction, _lens, _summary in _METRICS:
    register_metric(_name, summary=_summary, direction=_direction, lens=_lens)(_fn)
