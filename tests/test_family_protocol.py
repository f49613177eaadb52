"""The family protocol from the outside: a toy task kind, its suite, a method and a lens,
all defined in this test module (no library file edited), run through `unlearnbench evaluate`;
and bad input that fails before any model is loaded."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import numpy as np
import pytest
from typer.testing import CliRunner

from unlearnbench import registry
from unlearnbench.cli.app import app
from unlearnbench.errors import UserError
from unlearnbench.family import Family, Option
from unlearnbench.lenses.base import Lens
from unlearnbench.method import Method
from unlearnbench.records import PER_EXAMPLE_FILE
from unlearnbench.runner import RunSpec, run
from unlearnbench.suites.base import Suite
from unlearnbench.suites.common import MetricRow
from unlearnbench.task import LoadedModel, TaskSpec

cli = CliRunner()


# ------------------------------------------------------------------ a toy task kind: least squares
class Weights:
    """A 'model': the weight vector of y = x @ w."""

    def __init__(self, w):
        self.w = np.asarray(w, dtype=float)

    def predict(self, x):
        return x @ self.w


@dataclass
class ToyTask:
    spec: TaskSpec
    x: np.ndarray
    y: np.ndarray
    forget: np.ndarray  # boolean mask
    fingerprint: str = "toy-fingerprint"

    def fit(self, rows) -> Weights:
        return Weights(np.linalg.lstsq(self.x[rows], self.y[rows], rcond=None)[0])

    def load_target(self):
        return LoadedModel(self.fit(np.ones_like(self.forget)), None, "recipe:toy", "target")

    def load_oracle(self):
        return LoadedModel(self.fit(~self.forget), None, "recipe:toy", "oracle")


def make_toy_task(*, noise: float = 0.5, data_dir=None, model=None, oracle=None, quiet=False, **_):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    forget = np.arange(40) < 8
    y = x @ np.array([1.0, -2.0, 0.5]) + np.where(forget, 3.0, 0.0) + noise * rng.normal(size=40)
    return ToyTask(TaskSpec("toy/shifted", "toy", "1", (("noise", noise),)), x, y, forget)


class ToyFamily(Family):
    kind = "toy"
    description = "least-squares toys"
    options = (Option("noise", "label noise of the toy data", type=float),)

    def method_data(self, task, forget_role, target):
        return {"x_retain": task.x[~task.forget], "y_retain": task.y[~task.forget]}

    def copy_model(self, model, device):
        return copy.deepcopy(model)


class ToySuite(Suite):
    name = "toy-suite"

    def rows(self):
        return [MetricRow("forget_mse", "oracle", "behavior", "squared error on the forget rows"),
                MetricRow("retain_mse", "lower", "utility", "squared error on the retain rows")]

    def score(self, scorer, ctx):
        task = ctx.task
        err = (scorer.predict(task.x) - task.y) ** 2
        return {"forget": err[task.forget].tolist(), "retain": err[~task.forget].tolist()}

    def aggregate(self, per_example, oracle_per_example, *, seed=0):
        return {"forget_mse": float(np.mean(per_example["forget"])),
                "retain_mse": float(np.mean(per_example["retain"]))}, {}


class Refit(Method):
    """Refit on the retain rows: exact unlearning for least squares."""

    name = "toy-refit"
    kinds = ("toy",)

    @dataclass(frozen=True)
    class Params:
        ridge: float = 0.0

    def unlearn(self, model, data, params, ctx):
        x, y = data["x_retain"], data["y_retain"]
        model.w = np.linalg.solve(x.T @ x + params.ridge * np.eye(x.shape[1]), x.T @ y)
        ctx.log(f"toy-refit: refitted on {len(y)} retain rows")
        ctx.info["retain_rows"] = len(y)
        return model


class WeightNorm(Lens):
    """A model lens: the L2 norm of the weights (scored for the original and oracle too)."""

    name = "toy-norm"
    description = "L2 norm of the weights"
    order = 60
    kinds = ("toy",)

    def rows(self):
        return [MetricRow("weight_norm", "info", "toy-norm", "L2 norm of the weights")]

    def per_example(self, ctx, model, which):
        return {"w": model.w.tolist()}

    def aggregate(self, per_example, references=None, *, seed=0):
        return {"weight_norm": float(np.linalg.norm(per_example["w"]))}, {}


@pytest.fixture
def toy_kind():
    for kind in ("family", "suite", "lens", "task", "method"):
        registry.entries(kind)  # built-ins first
    registry.register_family("toy")(ToyFamily)
    registry.register_suite("toy-suite")(ToySuite)
    registry.register_lens("toy-norm")(WeightNorm)
    registry.register_method("toy-refit")(Refit)
    registry.register_task("toy/shifted", kind="toy", suite="toy-suite")(make_toy_task)
    yield
    for kind, name in (("family", "toy"), ("suite", "toy-suite"), ("lens", "toy-norm"), ("method", "toy-refit"),
                       ("task", "toy/shifted")):
        registry.unregister(kind, name)


def test_a_toy_task_kind_runs_through_evaluate_with_its_method_lens_and_option(toy_kind, tmp_path):
    result = cli.invoke(app, ["evaluate", "--task", "toy/shifted", "--method", "toy-refit", "--lens", "+toy-norm",
                              "--param", "ridge=0", "--noise", "0.25", "--out", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    # the defaults this kind's suite measures (it has no privacy rows), plus the toy lens
    assert record["status"] == "succeeded" and record["lenses"] == ["behavior", "utility", "toy-norm"]
    task = make_toy_task(noise=0.25)
    oracle = task.load_oracle().model
    expected = (oracle.predict(task.x) - task.y) ** 2
    # refitting on the retain rows is the oracle: the same forget error, the same weights
    assert record["metrics"]["forget_mse"] == pytest.approx(expected[task.forget].mean())
    assert record["metrics"]["forget_mse"] == pytest.approx(record["reference"]["oracle"]["forget_mse"])
    assert record["metrics"]["weight_norm"] == pytest.approx(np.linalg.norm(oracle.w))
    assert record["reference"]["original"]["weight_norm"] == pytest.approx(np.linalg.norm(task.load_target().model.w))
    assert record["task"]["options"] == {"noise": 0.25} and record["method"]["info"] == {"retain_rows": 32}
    run_dir = tmp_path / record["run_id"]
    assert "refitted on 32 retain rows" in (run_dir / "run.log").read_text()
    per_example = json.loads((run_dir / PER_EXAMPLE_FILE).read_text())
    assert set(per_example["lenses"]["toy-norm"]) == {"unlearned", "original", "oracle"}


def test_a_lens_of_another_kind_and_an_option_of_another_kind_are_refused(toy_kind, tmp_path):
    with pytest.raises(UserError, match="privacy lens.*do not apply to toy tasks; they have behavior, toy-norm, utility"):
        run(RunSpec(task="toy/shifted", method="toy-refit", lenses=("behavior", "privacy"), out=tmp_path))
    with pytest.raises(UserError, match="toy-norm lens.*do not apply to classifier tasks"):
        run(RunSpec(task="digits/random-10", method="original", lenses=("+toy-norm",), out=tmp_path))
    with pytest.raises(UserError, match="--noise is not an option of 'digits/random-10'.*toy tasks"):
        run(RunSpec(task="digits/random-10", method="original", options={"noise": "1"}, out=tmp_path))
    with pytest.raises(UserError, match="--noise 'loud': expected a float"):
        run(RunSpec(task="toy/shifted", method="toy-refit", options={"noise": "loud"}, out=tmp_path))


# ------------------------------------------------------------------ bad input before any model loads
@pytest.fixture
def no_loading(monkeypatch):
    """Any attempt to build a task or load a model fails the test."""
    from unlearnbench import family, runner

    def refuse(*args, **kwargs):
        raise AssertionError("a model or task was loaded before the spec was validated")

    monkeypatch.setattr(family.Family, "load_models", refuse)
    monkeypatch.setattr(family.Family, "load_task", refuse)
    monkeypatch.setattr(runner, "_build_task", refuse)


@pytest.mark.parametrize("task,fields,message", [
    ("tofu-synth/forget10", {"lenses": ("behaviour",)}, "Unknown lens 'behaviour'"),
    ("tofu-synth/forget10", {"lenses": ("+privacy-strong",)}, "privacy-strong lens.*language-model tasks"),
    ("digits/random-10", {"lenses": ("parametric",)}, "parametric lens.*classifier tasks"),
    ("tofu-synth/forget10", {"mode": "sustainability"}, "sust/forget_1..4"),
    ("digits/random-10", {"mode": "scalable"}, "Unknown mode 'scalable'"),
    ("tofu-synth/forget10", {"options": {"forget_indices": "x.json"}}, "for classifier and regression tasks"),
    ("diabetes/random-10", {"options": {"data_file": "x.csv"}}, "tabular-regression"),
    ("digits/random-10", {"options": {"mia_feature": "loss"}}, "Unknown mia feature 'loss'"),
    ("digits/random-10", {"options": {"strong_models": "3"}}, "--strong-models.*privacy-strong lens"),
    ("digits/random-10", {"params": {"lr": "fast"}}, "lr='fast'"),
    ("tofu-synth/forget10", {"metrics": ("forget_qualty",)}, "Unknown metric"),
])
def test_bad_input_fails_before_any_model_is_loaded(no_loading, tmp_path, task, fields, message):
    method = "ga"
    with pytest.raises(UserError, match=message):
        run(RunSpec(task=task, method=method, out=tmp_path / "runs", quiet=True, **fields))
    assert not (tmp_path / "runs").exists()  # and nothing is left behind


def test_lens_names_add_to_or_leave_out_of_the_defaults():
    from unlearnbench.runner import resolve_lenses

    assert resolve_lenses(None) == ("behavior", "privacy", "utility")
    assert resolve_lenses(("+parametric",)) == ("behavior", "privacy", "utility", "parametric")
    assert resolve_lenses(("-privacy", "+robustness")) == ("behavior", "utility", "robustness")
    assert resolve_lenses(("robustness", "behavior")) == ("behavior", "robustness")
    with pytest.raises(UserError, match="leaves no lens"):
        resolve_lenses(("-behavior", "-privacy", "-utility"))


def test_a_broken_plugin_fails_loudly_and_leaves_the_registry_as_it_was(monkeypatch):
    from importlib import metadata

    before = dict(registry.entries("method"))

    class BrokenEntryPoint:
        name, value, group = "broken", "nowhere:thing", "unlearnbench.methods"

        def load(self):
            registry.register_method("half-loaded")(type("Half", (Method,), {"name": "half-loaded"}))
            raise ImportError("No module named 'nowhere'")

    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points",
                        lambda group=None: [BrokenEntryPoint()] if group == "unlearnbench.methods" else real(group=group))
    monkeypatch.setattr(registry, "_loaded", set())
    with pytest.raises(RuntimeError, match="entry point 'broken'.*No module named 'nowhere'"):
        registry.entries("method")
    monkeypatch.undo()
    assert registry.entries("method").keys() == before.keys()
    assert "half-loaded" not in registry.entries("method")
