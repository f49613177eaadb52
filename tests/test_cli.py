"""The CLI through typer's runner: listing, evaluating, and every bad input named in the spec."""

import json

from typer.testing import CliRunner

from unlearnbench.cli.app import app

runner = CliRunner()

METHODS = ["original", "retrain", "ga", "graddiff", "npo", "simnpo", "idkdpo", "needle", "ft", "rl", "l1sparse", "bs", "be",
           "salun", "iu", "scrub", "laf", "sisa", "gaussian", "blindspot", "external", "rmu",
           "flat", "undial", "wga", "satimp", "ceu", "pdu", "esd", "sfd", "s3t", "concept-poisoning"]
LM_TASKS = ["tofu/forget01", "tofu/forget05", "tofu/forget10", "tofu-synth/forget01", "tofu-synth/forget05",
            "tofu-synth/forget10", "muse/news", "muse/books", "muse-synth/news", "wmdp/bio", "wmdp/cyber", "wmdp-synth/bio"]
TASKS = LM_TASKS + [f"digits/class-{k}" for k in range(10)] + [f"digits/{s}-{p}" for s in ("random", "worst") for p in (1, 5, 10, 20, 50)] \
    + [f"{c}/{v}" for c in ("cifar10", "cifar100") for v in [f"class-{k}" for k in range(10)]
       + [f"{s}-{p}" for s in ("random", "worst") for p in (1, 5, 10)]] \
    + [f"diabetes/random-{p}" for p in (5, 10, 20, 30)] + [f"diabetes/range-{r}" for r in ("25-100", "150-200", "200-350")] \
    + ["tabular-regression"] \
    + [f"{w}-diffusion/class-{k}" for w in ("digits", "cifar10") for k in range(10)]


def test_list_methods_shows_every_method_once():
    result = runner.invoke(app, ["list", "methods", "--format", "json"])
    assert result.exit_code == 0
    names = [m["name"] for m in json.loads(result.stdout)]
    assert sorted(names) == sorted(METHODS) and len(names) == len(set(names))


def test_list_methods_gives_each_kind_its_own_hyperparameter_block():
    result = runner.invoke(app, ["list", "methods", "--format", "json"])
    ga = next(m for m in json.loads(result.stdout) if m["name"] == "ga")
    blocks = ga["hyperparameters (defaults, per kind)"].split("; ")
    assert [b.split(":")[0] for b in blocks] == ["language-model", "regression", "classifier"]
    assert "max_ratio=5.0" in blocks[1] and "max_ratio" not in blocks[2]


def test_list_methods_shows_a_name_of_two_kinds_with_each_kinds_summary_and_hyperparameters():
    result = runner.invoke(app, ["list", "methods", "--format", "json"])
    rl = next(m for m in json.loads(result.stdout) if m["name"] == "rl")
    assert rl["task_kinds"] == "diffusion / language-model / classifier"
    _, lm, classifier = rl["hyperparameters (defaults, per kind)"].split("; ")
    assert "prompt_fraction=0.5" in lm and "momentum=0.9" in classifier and "prompt_fraction" not in classifier
    assert "language-model: random-label forgetting" in rl["summary"] and "; classifier: random wrong labels" in rl["summary"]
def test_list_methods_shows_s3t_for_language_models_and_classifiers():
    result = runner.invoke(app, ["list", "methods", "--format", "json"])
    s3t = next(m for m in json.loads(result.stdout) if m["name"] == "s3t")
    blocks = s3t["hyperparameters (defaults, per kind)"].split("; ")
    assert sorted(b.split(":")[0] for b in blocks) == ["classifier", "language-model"]
    assert all("orders=" in b and "min_active=" in b for b in blocks)


def test_list_tasks_shows_tofu_muse_and_synthetic_variants():
    result = runner.invoke(app, ["list", "tasks", "--format", "json"])
    names = [t["name"] for t in json.loads(result.stdout)]
    assert sorted(names) == sorted(TASKS) and len(names) == len(set(names))


def test_list_tasks_of_one_kind():
    result = runner.invoke(app, ["list", "tasks", "--kind", "regression", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [t["name"] for t in json.loads(result.stdout)] == [t for t in TASKS if t.startswith(("diabetes", "tabular"))]
    bad = runner.invoke(app, ["list", "tasks", "--kind", "vision"])
    assert bad.exit_code == 2 and "language-model, regression, classifier" in bad.stderr


def test_list_metrics_table_has_directions():
    result = runner.invoke(app, ["list", "metrics"])
    assert result.exit_code == 0
    assert "forget_quality" in result.stdout and "direction" in result.stdout


def test_unknown_task_lists_known_tasks_and_closest_match(tmp_path):
    result = runner.invoke(app, ["evaluate", "--task", "tofu-synth/forget1", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "Unknown task 'tofu-synth/forget1'" in result.stderr
    assert "Did you mean 'tofu-synth/forget10'" in result.stderr or "Did you mean 'tofu-synth/forget01'" in result.stderr
    assert "tofu/forget05" in result.stderr
    assert not list(tmp_path.iterdir())  # bad input leaves no record behind


def test_unknown_method_names_the_closest():
    result = runner.invoke(app, ["evaluate", "--method", "npoo"])
    assert result.exit_code == 2
    assert "Did you mean 'npo'" in result.stderr and "simnpo" in result.stderr


def test_unknown_parameter_lists_the_method_parameters():
    result = runner.invoke(app, ["evaluate", "--method", "npo", "--param", "betta=0.2"])
    assert result.exit_code == 2
    assert "Unknown parameter 'betta'" in result.stderr and "Did you mean 'beta'" in result.stderr


def test_parameter_of_the_wrong_type_is_named():
    result = runner.invoke(app, ["evaluate", "--method", "npo", "--param", "epochs=many"])
    assert result.exit_code == 2
    assert "epochs='many'" in result.stderr and "int" in result.stderr


def test_malformed_param_says_key_value():
    result = runner.invoke(app, ["evaluate", "--param", "lr"])
    assert result.exit_code == 2 and "key=value" in result.stderr


def test_unknown_metric_lists_known_metrics():
    result = runner.invoke(app, ["evaluate", "--metrics", "forget_qualty"])
    assert result.exit_code == 2
    assert "Unknown metric 'forget_qualty'" in result.stderr and "Did you mean 'forget_quality'" in result.stderr


