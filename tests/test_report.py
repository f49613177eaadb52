"""`unlearnbench report`: one self-contained HTML page with the metric tables and the plots."""

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
from _tiny_runs import copy_run, tiny_runs
from typer.testing import CliRunner

from unlearnbench.cli.app import _report_beside, app
from unlearnbench.records import PER_EXAMPLE_FILE, RECORD_FILE
from unlearnbench.report.runs import REPORT_FILE, attack_scores, curve_series, roc, write_report

cli = CliRunner()
PNG = re.compile(r'<img class="plot" alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    return tiny_runs(tiny_synth, tmp_path_factory)


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    return write_report([runs["ga"]], out).read_text()


def plots(page: str) -> list[str]:
    return [alt for alt, _ in PNG.findall(page)]


def test_the_report_is_one_self_contained_page(page):
    assert page.startswith("<!DOCTYPE html>")
    assert "<style>" in page and "<script>" in page
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page


def test_the_metric_table_is_grouped_by_lens_with_the_reference_columns(page):
    assert '<table class="metrics">' in page
    assert "<th>original</th><th>oracle</th><th>95% CI</th>" in page
    lenses = re.findall(r'<tr class="lens"><td colspan="6">(\w+)</td></tr>', page)
    assert lenses[:2] == ["behavior", "utility"] and len(lenses) == len(set(lenses))
    assert ">forget_quality<" in page and ">model_utility<" in page


def test_truth_ratio_distributions_of_the_unlearned_model_and_the_oracle_are_drawn(page):
    assert any("truth_ratio" in alt and "vs the oracle" in alt for alt in plots(page))


def test_roc_curves_are_drawn_when_the_scores_hold_membership_attacks(runs, page):
    scores = json.loads((runs["ga"] / PER_EXAMPLE_FILE).read_text())
    if "privacy" not in scores["unlearned"]:
        pytest.skip("this suite version writes no membership-attack scores")
    assert any(alt.startswith("ROC curves of the membership attacks") for alt in plots(page))


def test_without_attack_scores_the_roc_section_says_so(runs, tmp_path):
    def drop_privacy(scores):
        for model in ("unlearned", "original", "oracle"):
            scores[model].pop("privacy", None)

    run = copy_run(runs["ga"], tmp_path / "ga", per_example=drop_privacy)
    text = write_report([run], tmp_path / "r.html").read_text()
    assert "No membership-attack scores" in text and not any(a.startswith("ROC") for a in plots(text))


def test_the_images_are_valid_pngs(page):
    import base64

    images = PNG.findall(page)
    assert images and all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for _, data in images)


def test_a_relearning_curve_in_the_record_is_plotted(runs, tmp_path):
    curve = [{"step": s, "forget_probability": p} for s, p in [(0, 0.01), (10, 0.2), (20, 0.6)]]
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r.update(relearning=curve))
    text = write_report([run], tmp_path / "r.html").read_text()
    assert "Relearning" in text and any(alt.startswith("Relearning") for alt in plots(text))


def test_metrics_over_the_steps_of_a_scalability_run_are_plotted(runs, tmp_path):
    def three_steps(record):
        record["mode"] = "scalability"
        record["steps"] = [{"step": k, "forget": f"scal/forget_{k}", "n_forget": 10 * k,
                            "metrics": {"forget_quality": 0.1 * k, "model_utility": 0.5 - 0.1 * k}} for k in (1, 2, 3)]

    run = copy_run(runs["ga"], tmp_path / "ga", record=three_steps)
    text = write_report([run], tmp_path / "r.html").read_text()
    assert "Metrics over successive unlearning steps" in text


def test_several_runs_of_one_task_get_the_forget_vs_utility_trade_off(runs, tmp_path):
    text = write_report([runs["original"], runs["ga"]], tmp_path / "r.html").read_text()
    assert "Trade-off on tofu-synth/forget10" in text
    assert any(alt.startswith("forget vs utility trade-off of 2 runs") for alt in plots(text))
    assert text.count('<section class="run"') == 2


def test_a_run_without_per_example_scores_still_gets_its_table(runs, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga")
    (run / PER_EXAMPLE_FILE).unlink()
    text = write_report([run], tmp_path / "r.html").read_text()
    assert '<table class="metrics">' in text and "no per-example plots" in text


def test_the_cli_writes_the_report(runs, tmp_path):
    out = tmp_path / "out" / "report.html"
    result = cli.invoke(app, ["report", str(runs["original"]), str(runs["ga"]), "--out", str(out)])
    assert result.exit_code == 0 and out.is_file()


def test_the_cli_names_a_folder_that_is_not_a_run(tmp_path):
    result = cli.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "no record.json" in result.stderr


def test_evaluate_writes_the_report_beside_the_record(runs, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga")
    _report_beside(SimpleNamespace(record=SimpleNamespace(status="succeeded"), run_dir=run), quiet=True)
    assert (run / REPORT_FILE).is_file() and (run / RECORD_FILE).is_file()


def test_a_failing_report_only_warns(runs, tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("no plots today")

    monkeypatch.setattr("unlearnbench.report.runs.write_report", broken)
    run = copy_run(runs["ga"], tmp_path / "ga")
    _report_beside(SimpleNamespace(record=SimpleNamespace(status="succeeded"), run_dir=run), quiet=True)
    assert "could not write the report" in capsys.readouterr().err and not (run / REPORT_FILE).exists()


# ------------------------------------------------------------------- tolerant readers


def test_attack_scores_read_the_group_first_layout_and_form_the_reference_attack():
    privacy = {"forget": {"loss": [3.0, 2.0], "nll": [1.0, 2.0]}, "holdout": {"loss": [1.0, 0.0], "nll": [3.0, 4.0]}}
    oracle = {"forget": {"nll": [2.0, 2.0]}, "holdout": {"nll": [2.0, 2.0]}}
    scores = attack_scores(privacy, oracle)
    assert set(scores) == {"loss", "reference"}
    np.testing.assert_allclose(scores["reference"][0], [1.0, 0.0])
    np.testing.assert_allclose(scores["reference"][1], [-1.0, -2.0])


def test_attack_scores_read_the_attack_first_and_labelled_layouts():
    attack_first = {"attacks": {"zlib": {"members": [0.9, 0.8], "nonmembers": [0.1]}}}
    labelled = {"min_k": {"scores": [0.9, 0.1, 0.8], "labels": [1, 0, 1]}}
    assert [len(a) for a in attack_scores(attack_first)["zlib"]] == [2, 1]
    members, nonmembers = attack_scores(labelled)["min_k"]
    assert members.tolist() == [0.9, 0.8] and nonmembers.tolist() == [0.1]


def test_attack_scores_skip_what_they_cannot_read():
    assert attack_scores(None) == {} and attack_scores({"note": "nothing here"}) == {}


def test_roc_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(1, 1, 50), rng.normal(0, 1, 40)
    _, _, auc = roc(members, nonmembers)
    assert auc == pytest.approx(roc_auc_score(np.r_[np.ones(50), np.zeros(40)], np.r_[members, nonmembers]))


def test_curve_series_reads_points_and_columns():
    points = curve_series([{"step": 1, "metrics": {"a": 0.1}}, {"step": 2, "metrics": {"a": 0.3}}])
    assert points["a"][0].tolist() == [1, 2] and points["a"][1].tolist() == [0.1, 0.3]
    columns = curve_series({"steps": [0, 5], "forget_probability": [0.0, 0.4], "label": "x"})
    assert list(columns) == ["forget_probability"]
