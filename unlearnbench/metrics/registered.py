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

# Privacy (membership inference; higher attack score = more likely a member) and MUSE.
from unlearnbench.metrics import muse, privacy  # noqa: E402

_MIA_DIRECTION = "0.5 is ideal: AUC near 0.5 means forget looks like holdout"
_PRIVACY_AND_MUSE_METRICS = [
    ("mia_loss", privacy.loss_score, _MIA_DIRECTION, "privacy",
     "LOSS attack score -NLL; reported as the AUC forget vs holdout"),
    ("mia_zlib", privacy.zlib_score, _MIA_DIRECTION, "privacy",
     "zlib attack score -NLL / zlib length; reported as the AUC forget vs holdout"),
    ("mia_min_k", privacy.min_k_score, _MIA_DIRECTION, "privacy",
     "Min-K% Prob attack score (k = 0.4); reported as the AUC forget vs holdout"),
    ("mia_min_k_plus_plus", privacy.min_k_plus_plus_score, _MIA_DIRECTION, "privacy",
     "Min-K%++ attack score (k = 0.4); reported as the AUC forget vs holdout"),
    ("mia_reference", privacy.reference_score, _MIA_DIRECTION, "privacy",
     "reference-model attack score -(NLL - NLL_oracle); reported as the AUC forget vs holdout"),
    ("mia_gradnorm", privacy.gradnorm_score, _MIA_DIRECTION, "privacy",
     "gradient-norm attack score -||grad||; reported as the AUC forget vs holdout"),
    ("mia_auc", privacy.mia_auc, _MIA_DIRECTION, "privacy",
     "ROC AUC of an attack score, members (forget) labelled 1 vs non-members (holdout)"),
    ("privleak", privacy.privleak, "closest to 0", "privacy",
     "MUSE PrivLeak (AUC_u - AUC_r) / AUC_r x 100, Min-K% AUC in MUSE orientation, retrain = oracle"),
    ("verbmem_forget", muse.verbmem_scores, "lower", "behavior",
     "MUSE VerbMem: 100 x ROUGE-L F1 of a 128-token continuation of forget text"),
    ("knowmem_forget", muse.knowmem_scores, "lower", "behavior",
     "MUSE KnowMem on forget QA: 100 x ROUGE-L F1 of the few-shot answer"),
    ("knowmem_retain", muse.knowmem_scores, "higher", "utility",
     "MUSE KnowMem on retain QA: 100 x ROUGE-L F1 of the few-shot answer"),
]

for _name, _fn, _direction, _lens, _summary in _PRIVACY_AND_MUSE_METRICS:
    register_metric(_name, summary=_summary, direction=_direction, lens=_lens)(_fn)

# Parametric (concept vectors, answers, probes) and robustness (relearning, quantization).
from unlearnbench.metrics import parametric, robustness  # noqa: E402

_PARAMETRIC_AND_ROBUSTNESS_METRICS = [
    ("concept_jaccard", parametric.topk_jaccard, "lower means the vector changed more", "parametric",
     "Jaccard of the concept vector's top-k vocabulary-projection tokens before vs after (1 = unchanged)"),
    ("concept_cosine", parametric.cosine_similarity, "lower means the vector changed more", "parametric",
     "cosine similarity of the concept vector before vs after (1 = unchanged)"),
    ("concept_l2", parametric.l2_distance, "higher means the vector changed more", "parametric",
     "L2 distance of the concept vector before vs after (0 = unchanged)"),
    ("concept_token_retention", parametric.concept_token_retention, "lower means the concept left the vector",
     "parametric", "share of the concept tokens in the original top-k still in the top-k after unlearning"),
    ("concept_coefficient_ratio", parametric.coefficient_ratio,
     "far below 1 with an unchanged vector = suppressed, not erased", "parametric",
     "mean activation coefficient of the concept vector on concept prompts, after / before (signed)"),
    ("probe_accuracy", parametric.probe_accuracy, "lower on forget (high = shallow forgetting)", "parametric",
     "test accuracy of a logistic-regression probe on standardised hidden states"),
    ("answer_accuracy", parametric.multiple_choice_accuracy, "lower on forget, higher on retain", "parametric",
     "multiple-choice accuracy: the option with the lowest mean token NLL"),
    ("relearn_recovery_auc", robustness.recovery_auc, "lower", "robustness",
     "area under the recovery ratio vs relearning step, steps normalised by the last (constant 1 -> 1)"),
    ("quant_recovery", robustness.recovery_ratio, "lower", "robustness",
     "recovery ratio (M_quantized - M_unlearned) / (M_original - M_unlearned) after fake quantization"),
    ("quant_agreement", robustness.quantized_agreement, "lower (1 = quantization undoes the unlearning)",
     "robustness", "share of equal integer quantization codes, unlearned vs original model"),
]

for _name, _fn, _direction, _lens, _summary in _PARAMETRIC_AND_ROBUSTNESS_METRICS:
    register_metric(_name, summary=_summary, direction=_direction, lens=_lens)(_fn)

# Classifiers (SalUn tier and the NeurIPS 2023 challenge tier). UA / RA / TA / MIA-Efficacy are
# fractions from the functions; the suite reports them (and Avg. Gap) in percent.
from unlearnbench.metrics import classifier  # noqa: E402

_CLOSEST_TO_RETRAIN = "closest to the retrained model"
_CLASSIFIER_METRICS = [
    ("ua", classifier.unlearning_accuracy, _CLOSEST_TO_RETRAIN + " (higher = more of forget misclassified)",
     "behavior", "unlearning accuracy 1 - acc(forget) (SalUn UA)"),
    ("ra", classifier.accuracy, "higher", "utility", "retain accuracy (SalUn RA)"),
    ("ta", classifier.accuracy, "higher", "utility",
     "test accuracy; class-wise forgetting: test set without the forgotten class (SalUn TA)"),
    ("ta_forget_class", classifier.accuracy, _CLOSEST_TO_RETRAIN + " (near 0 = class forgotten)", "behavior",
     "class-wise forgetting: accuracy on the test examples of the forgotten class"),
    ("mia_efficacy", classifier.mia_efficacy, _CLOSEST_TO_RETRAIN + " (higher = forget looks unseen)", "privacy",
     "share of forget judged non-member by an rbf SVC (C=3) trained on confidence, retain vs test (SalUn)"),
    ("avg_gap", classifier.avg_gap, "lower", "behavior",
     "mean |metric - retrained metric| over UA, RA, TA, MIA-Efficacy, in percentage points (SalUn)"),
    ("forgetting_score", classifier.forgetting_score, "higher", "privacy",
     "NeurIPS 2023 challenge F: per-example epsilons in 0.5-wide buckets scoring 1, 1/2, 1/4, ..."),
    ("challenge_score", classifier.challenge_final_score, "higher", "privacy",
     "NeurIPS 2023 challenge final score F x RA_u/RA_r x TA_u/TA_r"),
]

for _name, _fn, _direction, _lens, _summary in _CLASSIFIER_METRICS:
    register_metric(_name, summary=_summary, direction=_direction, lens=_lens)(_fn)

# Regression (Deep Regression Unlearning, Tarun et al., 2023). Errors in the target's original
# units; the anamnesis index is a ratio of relearning step counts (unlearnbench.tabular.anamnesis).
from unlearnbench.metrics import regression  # noqa: E402

_REGRESSION_METRICS = [
    ("l1_retain", regression.l1, "lower", "utility", "mean absolute error on the retain rows (original units)"),
    ("l1_forget", regression.l1, _CLOSEST_TO_RETRAIN + " (higher = forget rows predicted worse)", "behavior",
     "mean absolute error on the forget rows (original units)"),
    ("l1_test", regression.l1, "lower", "utility", "mean absolute error on the test rows (original units)"),
    ("mse_test", regression.mse, "lower", "utility", "mean squared error on the test rows (squared units)"),
    ("w1_to_retrain", regression.w1_to_retrain, "lower", "behavior",
     "Wasserstein-1 distance between the forget-set predictions of the model and of the retrained model"),
    ("regression_mia", regression.regression_mia, _CLOSEST_TO_RETRAIN + " (higher = forget looks like training data)",
     "privacy", "share of forget rows judged members by an rbf SVC (C=3) on the standardised loss, retain vs test"),
    ("ain", regression.anamnesis_index, "closest to 1 (below 1 = relearns faster than the retrained model)",
     "robustness", "anamnesis index: relearning steps back within 5% of the original's forget loss, "
     "unlearned / retrained"),
]

for _name, _fn, _direction, _lens, _summary in _REGRESSION_METRICS:
    register_metric(_name, summary=_summary, direction=_direction, lens=_lens)(_fn)

# Generation (class-conditional diffusion; SalUn's and SFD's evaluation), read through the
# task's judge classifier. UA is the classifier row's name (``ua``), here on generated images.
from unlearnbench.metrics import generation  # noqa: E402

_GENERATION_METRICS = [
    ("kept_accuracy", generation.judge_accuracy, "higher", "utility",
     "% of images generated for the kept classes that the judge classifies as the class asked for"),
    ("kept_fd", generation.frechet_distance, "lower", "utility",
     "Fréchet distance of judge features, generated vs real, mean over kept classes (FID-style, not Inception)"),
    ("forget_fd", generation.frechet_distance, "info (higher = less like the forgotten class)", "behavior",
     "Fréchet distance of judge features of the forgotten class's images to its real images"),
    ("kept_precision", generation.precision_recall, "higher", "utility",
     "improved precision (k-NN manifolds, k=3) of generated judge features, mean over kept classes"),
    ("kept_recall", generation.precision_recall, "higher", "utility",
     "improved recall (k-NN manifolds, k=3) of generated judge features, mean over kept classes"),
]

for _name, _fn, _direction, _lens, _summary in _GENERATION_METRICS:
    register_metric(_name, summary=_summary, direction=_direction, lens=_lens)(_fn)
