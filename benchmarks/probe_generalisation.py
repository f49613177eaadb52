"""Random-label forgetting's two questions (Zhang et al., 2024, "Unforgettable Generalization in
Language Models") on the synthetic TOFU world: did the forgetting reach forget questions that
were never trained on, and is it shallow (a linear probe still reads the attribute)?

    python benchmarks/probe_generalisation.py --unlearned RUNS/<run_id>/model [--task tofu-synth/forget10]

``--unlearned`` is a model saved by ``unlearnbench evaluate --save-model``. For the original
target, the oracle and that model, on every attribute of the world's forget authors: the
multiple-choice answer accuracy (the answer under each value of the attribute, lowest NLL;
what the parametric lens's ``answer_accuracy`` is for the genre) and the best-layer accuracy
of a linear probe fitted on the retain authors' hidden states (its ``probe_accuracy``), once
on the two question phrasings the forget set trains on and once on the third, held out of
every training set (the world's paraphrased question). Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

GROUPS = {"trained phrasings": (0, 1), "held-out phrasing": (2,)}


def scores(engine, probe: dict, seed: int) -> dict[str, tuple[float, float]]:
    from unlearnbench.metrics import parametric as pm

    retain, forget = probe["retain"], probe["forget"]
    train = engine.hidden_states([(r["question"], r["prefix"]) for r in retain])
    test = engine.hidden_states([(r["question"], r["prefix"]) for r in forget])
    nll = [[s.nll for s in engine.score([(r["question"], o) for o in r["options"]])] for r in forget]
    out = {}
    for name, phrasings in GROUPS.items():
        rows = [i for i in range(len(forget)) if i % 3 in phrasings]  # three phrasings per author, in order
        y = [forget[i]["label"] for i in rows]
        probe_acc = max(pm.layer_probe_accuracies([train[:, k] for k in range(train.shape[1])], [r["label"] for r in retain],
                                                  [test[rows, k] for k in range(test.shape[1])], y, seed=seed))
        answer_acc = pm.multiple_choice_accuracy([nll[i] for i in rows], y)
        out[name] = (float(answer_acc), float(probe_acc))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="tofu-synth/forget10")
    parser.add_argument("--unlearned", required=True, help="a model folder saved by --save-model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("UNLEARNBENCH_QUIET", "1")
    import torch

    from unlearnbench.lm.modeling import load_causal_lm
    from unlearnbench.lm.scoring import ScoringEngine
    from unlearnbench.lm.worlds import tofu_synth
    from unlearnbench.tasks.tofu import make_tofu_synth_task, synth_config

    split = args.task.split("/", 1)[1]
    task = make_tofu_synth_task(split, quiet=True)
    config = synth_config(None)
    world = tofu_synth.WorldConfig(n_authors=config.n_authors, n_holdout_authors=config.n_holdout_authors, seed=config.world_seed)
    models = {"original": task.load_target().model, "oracle": task.load_oracle().model,
              "unlearned": load_causal_lm(args.unlearned)[0]}
    tokenizer = task.load_target().tokenizer
    device = torch.device("cpu")
    table: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for label, model in models.items():
        engine = ScoringEngine(model.eval(), tokenizer, task.prompt_format, device, quiet=True, label=label)
        for key in tofu_synth.ATTRIBUTE_KEYS:
            for group, values in scores(engine, tofu_synth.attribute_probe(world, split, key), args.seed).items():
                table.setdefault(label, {}).setdefault(group, []).append(values)
                print(f"{label:10s} {key:14s} {group:18s} answer {values[0]:.2f}  probe {values[1]:.2f}", flush=True)
    print("\nmean over the attributes (forget authors):")
    print(f"{'model':10s} {'questions':18s} {'answer accuracy':>16s} {'probe accuracy':>15s}")
    for label, groups in table.items():
        for group, values in groups.items():
            answer, probe = np.mean(values, axis=0)
            print(f"{label:10s} {group:18s} {answer:16.3f} {probe:15.3f}")


if __name__ == "__main__":
    main()
