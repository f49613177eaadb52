"""The diffusion task kind: the generation metrics against references, the methods' losses
computed by hand, SalUn's frozen weights, and a tiny digits world through ``evaluate``
(the suite's aggregate recomputed from the per-example scores, the report's sample grid)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
from _tiny_runs import TINY_DIFFUSION_MODEL as TINY_MODEL
from _tiny_runs import tiny_diffusion_run

pytest.importorskip("diffusers")
import torch  # noqa: E402

from unlearnbench.metrics import generation as gm  # noqa: E402


# ------------------------------------------------------------------------------ metrics
def test_frechet_distance_of_one_dimensional_gaussians_is_the_hand_worked_value():
    # (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2) with m = 1, 4 and variances 4, 9: 9 + 4 + 9 - 12 = 10
    assert gm.gaussian_frechet_distance([1.0], [[4.0]], [4.0], [[9.0]]) == pytest.approx(10.0)
    # diagonal covariances: the sum over dimensions
    d = gm.gaussian_frechet_distance([0, 0], np.diag([1.0, 4.0]), [1, 2], np.diag([4.0, 1.0]))
    assert d == pytest.approx((1 + 4) + (1 + 4 - 2 * 2) + (4 + 1 - 2 * 2))


def test_frechet_distance_matches_the_formula_with_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(80, 5)), rng.normal(size=(60, 5)) @ rng.normal(size=(5, 5)) + 0.5
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert gm.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert gm.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_precision_and_recall_of_a_hand_worked_example():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # 1-NN radius (k=1): 1 for every point
    fake = np.array([[0.5], [2.5], [10.0], [11.0]])  # radii: 2, 2, 1, 1
    precision, recall = gm.precision_recall(real, fake, k=1)
    assert precision == pytest.approx(0.5)  # 0.5 and 2.5 lie within a real ball, 10 and 11 do not
    assert recall == pytest.approx(1.0)  # every real point is within 2 of 0.5 or 2.5


def test_ua_and_judge_accuracy_count_argmax_hits_in_percent():
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert gm.unlearning_accuracy(probs, forget_class=1) == pytest.approx(50.0)
    assert gm.judge_accuracy(probs, [1, 0, 0, 0]) == pytest.approx(75.0)


# ------------------------------------------------------------------------- tiny pieces
@pytest.fixture(scope="module")
def tiny_data():
    from unlearnbench.diffusion.world import DiffusionData
    from unlearnbench.diffusion.model import DiffusionTrainConfig

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(40, 1, 8, 8)).astype(np.float32)
    y = np.arange(40) % 10
    f = y == 3
    return DiffusionData(x_forget=x[f], y_forget=y[f], x_retain=x[~f], y_retain=y[~f], num_classes=10, forget_class=3,
                         model_config=TINY_MODEL, train_config=DiffusionTrainConfig(steps=5, batch_size=8))


@pytest.fixture
def tiny_unet():
    from unlearnbench.diffusion.model import build_unet

    return build_unet(TINY_MODEL, seed=0)


def _ctx(**kw):
    from unlearnbench.method import RunContext

    return RunContext(seed=0, device=torch.device("cpu"), quiet=True, **kw)


def test_the_relabelling_loss_is_the_mse_to_the_other_class_prediction(tiny_unet):
    from unlearnbench.diffusion.recipes import relabel_loss

    g = torch.Generator().manual_seed(1)
    x_t = torch.randn(4, 1, 8, 8, generator=g)
    t = torch.tensor([5, 20, 50, 90])
    labels, pseudo = torch.full((4,), 3), torch.tensor([0, 1, 2, 4])
    with torch.no_grad():
        forget = tiny_unet(x_t, t, class_labels=labels).sample
        other = tiny_unet(x_t, t, class_labels=pseudo).sample
        by_hand = ((forget - other) ** 2).mean(dim=(1, 2, 3))
    assert torch.allclose(relabel_loss(tiny_unet, x_t, t, labels, pseudo), by_hand, atol=1e-6)


def test_the_negative_guidance_target_is_esds(tiny_unet):
    import importlib

    esd = importlib.import_module("unlearnbench.methods.diffusion.esd")
    x_t, t, labels = torch.randn(3, 1, 8, 8), torch.tensor([10, 40, 70]), torch.full((3,), 3)
    with torch.no_grad():
        uncond = tiny_unet(x_t, t, class_labels=torch.full((3,), 10)).sample
        cond = tiny_unet(x_t, t, class_labels=labels).sample
    target = esd.negative_guidance_target(tiny_unet, x_t, t, labels, null=10, eta=2.0)
    assert torch.allclose(target, uncond - 2.0 * (cond - uncond), atol=1e-6)


def test_sids_generator_loss_by_hand():
    import importlib

    sfd = importlib.import_module("unlearnbench.methods.diffusion.sfd")
    rng = np.random.default_rng(2)
    p, q, x0 = (rng.normal(size=(2, 1, 2, 2)) for _ in range(3))
    expected = []
    for i in range(2):
        omega = max(np.abs(p[i] - x0[i]).mean(), 1e-5)
        expected.append(np.sum((p[i] - q[i]) * ((p[i] - x0[i]) - 1.2 * (p[i] - q[i]))) / omega)
    got = sfd.sid_loss(*(torch.as_tensor(v) for v in (p, q, x0)), alpha=1.2)
    assert np.allclose(got.numpy(), expected)


def test_salun_moves_only_salient_weights_and_leaves_the_rest_bit_identical(tiny_unet, tiny_data):
    import importlib

    from unlearnbench.diffusion.recipes import saliency_masks

    salun = importlib.import_module("unlearnbench.methods.diffusion.salun")
    before = {n: p.detach().clone() for n, p in tiny_unet.named_parameters()}
    masks = saliency_masks(tiny_unet, tiny_data, 0.5, seed=0)
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == round(0.5 * total)
    method = salun.DiffusionSalUn()
    params = method.Params(steps=4, batch_size=8, lr=1e-2)
    ctx = _ctx()
    out = method.unlearn(tiny_unet, tiny_data, params, ctx)
    assert ctx.info["salun_masked_fraction"] == pytest.approx(0.5, abs=1e-3)
    moved = 0
    for name, p in out.named_parameters():
        frozen = ~masks[name]
        assert torch.equal(p.detach()[frozen], before[name][frozen]), name
        moved += int((p.detach()[masks[name]] != before[name][masks[name]]).sum())
    assert moved > 0


def test_generation_starts_from_the_same_noise_for_every_model_and_seed():
    from unlearnbench.diffusion.model import build_unet, generate

    a, b = build_unet(TINY_MODEL, seed=0), build_unet(TINY_MODEL, seed=1)
    labels = np.array([1, 1, 2])
    first = generate(a, labels, TINY_MODEL, seed=5, steps=3, guidance=2.0)
    assert first.shape == (3, 1, 8, 8) and np.abs(first).max() <= 1.0
    assert np.array_equal(first, generate(a, labels, TINY_MODEL, seed=5, steps=3, guidance=2.0))
    assert not np.array_equal(first, generate(b, labels, TINY_MODEL, seed=5, steps=3, guidance=2.0))


# --------------------------------------------------------------------- through evaluate
@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("diffusion-runs")
    params = {"salun": {"steps": "3"}, "sfd": {"steps": "2", "batch_size": "8"}}
    return {m: tiny_diffusion_run(m, out, params.get(m)) for m in ("original", "salun", "sfd")}


def test_a_tiny_digits_world_runs_salun_and_sfd_through_evaluate(tiny_runs):
    for method, result in tiny_runs.items():
        record = result.record
        assert record.status == "succeeded", (method, record.error)
        assert {"ua", "kept_accuracy", "kept_fd", "kept_precision", "kept_recall", "sampling_s"} <= set(record.metrics)
        assert 0 <= record.metrics["ua"] <= 100
    assert tiny_runs["original"].record.metrics["ua"] == tiny_runs["original"].record.reference["original"]["ua"]
    assert tiny_runs["sfd"].record.method["info"]["sfd_t_init"] == round(0.754 * 100)  # its one-step generator's time


def test_a_diffusion_record_follows_the_closed_submission_schema(tiny_runs):
    """The board refuses a record with a key the RunRecord schema does not declare; the
    diffusion family's model section (the judge's config) must be one it declares."""
    from unlearnbench.leaderboard.submissions import check_schema

    record = json.loads((tiny_runs["salun"].run_dir / "record.json").read_text())
    assert record["model"]["judge"]["num_classes"] == 10
    check_schema(record)  # raises SubmissionError on an undeclared field


def test_submit_verify_rescores_a_saved_diffusion_model_and_marks_it_verified(tmp_path):
    """The sampling time in the per-example scores is this machine's clock, not a score of the
    weights: re-scoring the saved UNet must still verify it (and an edited judge probability not)."""
    from _tiny_runs import copy_run, tiny_diffusion_world

    from unlearnbench.leaderboard.submissions import SubmissionError, registry_task, submit
    from unlearnbench.runner import RunSpec, run

    world = tiny_diffusion_world()
    saved = run(RunSpec(task="digits-diffusion/class-3", method="salun", params={"steps": "3"}, out=tmp_path / "runs",
                        quiet=True, task_options={"world": world}, save_model=True))
    assert saved.record.status == "succeeded", saved.record.error

    def loader(name, options, data_dir=None, quiet=True):
        return registry_task(name, options, data_dir, quiet, trusted={"world": world})

    import shutil

    run_dir = copy_run(saved.run_dir, tmp_path / "salun")
    shutil.copytree(saved.run_dir / "model", run_dir / "model")
    stored = submit(run_dir, board=tmp_path / "board", task_loader=loader, verify=True)
    assert json.loads((stored / "submission.json").read_text())["verification"] == "verified"

    def edit(per_example):
        per_example["unlearned"]["generated"]["probs"][0] = per_example["unlearned"]["generated"]["probs"][1]
    edited = copy_run(saved.run_dir, tmp_path / "edited", per_example=edit)
    shutil.copytree(saved.run_dir / "model", edited / "model")
    with pytest.raises(SubmissionError):
        submit(edited, board=tmp_path / "board2", task_loader=loader, verify=True)


def test_the_generation_aggregate_is_recomputed_from_the_per_example_scores(tiny_runs):
    from unlearnbench.records import PER_EXAMPLE_FILE
    from unlearnbench.suites.generation import aggregate

    result = tiny_runs["salun"]
    per_example = json.loads((result.run_dir / PER_EXAMPLE_FILE).read_text())
    generated = per_example["unlearned"]["generated"]
    assert len(generated["labels"]) == 60 and len(generated["probs"][0]) == 10  # 6 per class, judge probabilities
    metrics, ci = aggregate(per_example["unlearned"], per_example["oracle"], seed=0)
    for name, value in result.record.metrics.items():
        assert metrics[name] == pytest.approx(value, nan_ok=True), name
    probs = np.asarray(generated["probs"])
    forget = np.asarray(generated["labels"]) == 3
    assert metrics["ua"] == pytest.approx(100 * np.mean(probs[forget].argmax(1) != 3))
    # the ranking's gap to the oracle, by hand from the oracle's judge probabilities
    o_gen = per_example["oracle"]["generated"]
    o_probs, o_labels = np.asarray(o_gen["probs"]), np.asarray(o_gen["labels"])
    o_ua = 100 * np.mean(o_probs[o_labels == 3].argmax(1) != 3)
    o_kept = 100 * np.mean(o_probs[o_labels != 3].argmax(1) == o_labels[o_labels != 3])
    kept = 100 * np.mean(probs[~forget].argmax(1) == np.asarray(generated["labels"])[~forget])
    assert metrics["avg_gap"] == pytest.approx((abs(metrics["ua"] - o_ua) + abs(kept - o_kept)) / 2)
    assert result.record.reference["oracle"]["avg_gap"] == pytest.approx(0.0)


def test_the_report_embeds_the_sample_grid_of_original_oracle_and_unlearned(tiny_runs, tmp_path):
    from unlearnbench.report.runs import load_run, samples_plot, write_report

    plot = samples_plot(load_run(tiny_runs["sfd"].run_dir))
    assert plot is not None and "original, oracle, unlearned" in plot.alt
    html = write_report([tiny_runs["sfd"].run_dir], tmp_path / "report.html").read_text()
    assert "Generated samples per class" in html and plot.png in html


def test_retrain_reads_the_tasks_oracle_and_scores_as_it(tiny_runs, tmp_path):
    result = tiny_diffusion_run("retrain", tmp_path)
    record = result.record
    assert record.status == "succeeded", record.error
    assert record.method["info"]["retrain_source"].startswith("the task's oracle")
    for name in ("ua", "kept_accuracy", "kept_fd", "kept_recall"):
        assert record.metrics[name] == pytest.approx(record.reference["oracle"][name], nan_ok=True), name


@pytest.mark.parametrize("method, sampler", [("salun", "ddim"), ("sfd", "one_step")])
def test_a_saved_unlearned_model_is_diffusers_layout_and_scores_the_same_through_unlearned(method, sampler, tmp_path):
    from diffusers import UNet2DModel

    from unlearnbench.runner import RunSpec, run
    from _tiny_runs import tiny_diffusion_world

    params = {"salun": {"steps": "3"}, "sfd": {"steps": "2", "batch_size": "8"}}[method]
    world = {"world": tiny_diffusion_world()}
    saved = run(RunSpec(task="digits-diffusion/class-3", method=method, params=params, out=tmp_path / "a", quiet=True,
                        task_options=world, save_model=True))
    assert saved.record.status == "succeeded", saved.record.error
    folder = saved.run_dir / "model"
    layout = json.loads((folder / "unlearnbench.json").read_text())
    assert layout["sampler"] == sampler and (layout["t_init"] is None) == (sampler == "ddim")
    unet = UNet2DModel.from_pretrained(str(folder), use_safetensors=True)  # diffusers reads it as it is
    assert unet.config.num_class_embeds == 11
    again = run(RunSpec(task="digits-diffusion/class-3", method="external", unlearned=str(folder),
                        out=tmp_path / "b", quiet=True, task_options=world))
    assert again.record.status == "succeeded", again.record.error
    for name in ("ua", "kept_accuracy", "kept_fd", "kept_precision", "kept_recall"):
        assert again.record.metrics[name] == pytest.approx(saved.record.metrics[name], nan_ok=True), name


def test_unlearned_refuses_a_unet_of_another_class_count(tmp_path):
    from unlearnbench.diffusion.model import build_unet
    from unlearnbench.diffusion.saved import load_unlearned_diffusion
    from unlearnbench.errors import ModelSourceError

    build_unet({**TINY_MODEL, "num_classes": 4}, seed=0).save_pretrained(str(tmp_path / "m"))
    with pytest.raises(ModelSourceError, match="num_class_embeds is 5"):
        load_unlearned_diffusion(str(tmp_path / "m"), TINY_MODEL)
