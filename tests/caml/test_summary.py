"""Summary tables of the CAML chapters (coloc/caml/summary.py): built
from tiny synthetic runs trained into a temporary folder and from recorded stand-ins of
real-data runs (a results file written as a GPU run would write it); and the rotation
chapter's validation figure, drawn from recorded curves."""

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest

import coloc.caml as caml
from coloc import report as kit
from coloc import runs
from coloc.caml import summary as report
from coloc.evaluate import Evaluation
from coloc.runs import RESULTS_FILE, run_directory
from coloc.runtime import write_results

TINY = dict(image_size=32, train_samples=8, val_samples=4, test_samples=4, epochs=1,
            batch_size=4, pretrained=False)
PRETEXTS = ["rotation", "hflip"]


def record(config: caml.CAMLConfig, root, corloc_05: float) -> None:
    """Write the results of a run of ``config`` under ``root`` without training it."""
    corloc = {"0.3": 90.0, "0.5": corloc_05, "0.7": 30.0, "mean": 60.0}
    test = Evaluation(corloc=corloc, max_box_acc_v2=None, ious=np.zeros(2),
                      boxes=np.zeros((2, 4), dtype=np.int64), indices=np.arange(2),
                      rule="raw", threshold=0.2)
    directory = run_directory(config, root)
    write_results(directory / RESULTS_FILE, config.identity(),
                  {"test": test.to_dict(), "selected_epoch": 0, "select": "last"})
    (directory / "checkpoint.pt").write_bytes(b"")


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    """Synthetic cells trained (tiny), cub's CAML rotation run recorded, the rest missing."""
    root = tmp_path_factory.mktemp("results")
    configs = report.summary_configs(["synthetic", "cub"], PRETEXTS, **TINY)
    record(configs["cub", "rotation", "CAML"], root, 81.234)
    return root, configs, report.collect_summary(configs, root)


def test_summary_configs_are_the_chapters_default_runs():
    configs = report.summary_configs(seed=1)
    assert len(configs) == len(report.SUMMARY_DATASETS) * 6 * 2
    assert report.TABLE7_PRETEXTS == ("rotation", "scale", "translation", "hflip", "vflip",
                                      "pst")
    ours = configs["cub", "rotation", "CAML"]
    assert ours == caml.profile("cub", require_data=False, seed=1)
    assert configs["cub", "rotation", "Baseline"] == ours.baseline()
    assert configs["cub", "rotation", "Baseline"].method == "baseline"
    assert configs["synthetic", "pst", "CAML"].pretext == "pst"


def test_synthetic_cells_are_trained_real_ones_only_looked_up(summary, monkeypatch):
    root, configs, cells = summary
    assert all(cells["synthetic", p, m].run is not None for p in PRETEXTS
               for m in report.SUMMARY_METHODS)
    assert cells["cub", "rotation", "CAML"].corloc == pytest.approx(81.234)
    assert cells["cub", "rotation", "Baseline"].run is None
    assert cells["cub", "hflip", "CAML"].value == kit.NOT_RUN

    monkeypatch.setattr(runs, "fit", lambda *a, **k: pytest.fail("trained again"))
    again = report.collect_summary(configs, root)  # recorded synthetic runs are loaded
    assert {k: c.value for k, c in again.items()} == {k: c.value for k, c in cells.items()}


def test_table2_sets_each_runs_number_in_its_dataset_column(summary):
    _, _, cells = summary
    table = report.summary_table2(cells)
    assert list(table.columns) == ["source", "backbone", "method", "synthetic", "cub", "cars",
                                   "aircraft", "dogs"]  # the paper's four always shown
    published = table[table.source != kit.MEASURED]
    assert len(published) == 8 and set(published.synthetic) == {"-"}
    assert published.set_index(["backbone", "method"]).loc[("VGG16", "PsyNet"), "cub"] == "83.78"
    measured = table[table.source == kit.MEASURED].set_index("method")
    for method, label in (("Baseline", "Baseline (PsyNet-style, rotation)"),
                          ("CAML", "CAML (rotation)")):
        run = cells["synthetic", "rotation", method].run
        assert measured.loc[label, "synthetic"] == f"{run.test.corloc['0.5']:.2f}"
    assert measured.loc["CAML (rotation)", "cub"] == "81.23"
    assert measured.loc["Baseline (PsyNet-style, rotation)", "cub"] == kit.NOT_RUN
    assert set(measured.backbone) == {"small_cnn (synthetic); vgg16_psynet (cub)"}


def test_table7_sets_measured_beside_published_per_pretext_task(summary):
    _, _, cells = summary
    table = report.summary_table7(cells)
    assert list(table.columns) == [("synthetic", "measured"), ("cub", "published"),
                                   ("cub", "measured")]
    assert list(table.index) == [(p, m) for p in PRETEXTS for m in ("Baseline", "CAML")]
    assert table.loc[("rotation", "CAML"), ("cub", "published")] == "83.65"
    assert table.loc[("hflip", "Baseline"), ("cub", "published")] == "73.76"
    assert table.loc[("rotation", "CAML"), ("cub", "measured")] == "81.23"
    assert table.loc[("hflip", "CAML"), ("cub", "measured")] == kit.NOT_RUN
    run = cells["synthetic", "hflip", "Baseline"].run
    assert table.loc[("hflip", "Baseline"), ("synthetic", "measured")] == \
        f"{run.test.corloc['0.5']:.2f}"
    assert report.published_corloc("rotation+scale", "cub", "CAML") == 85.88
    assert report.published_corloc("rotation", "synthetic", "CAML") is None


def test_missing_runs_name_the_command_that_records_them(tmp_path):
    configs = report.summary_configs(["cub"], ["rotation", "scale"], seed=1)
    cells = report.collect_summary(configs, tmp_path)
    assert all(cell.run is None for cell in cells.values())
    missing = report.missing_runs(cells, data_root="/data")
    assert missing.to_dict("records") == [
        {"dataset": "cub", "runs missing": 4,
         "commands": "papermill book/caml_rotation.ipynb caml_rotation-cub.ipynb "
                     "-p dataset cub -p data_root /data -p seed 1 ; "
                     "papermill book/caml_pretext.ipynb caml_pretext-cub.ipynb "
                     "-p dataset cub -p data_root /data -p seed 1"},
    ]
    status = report.summary_status(cells)
    assert status.to_dict("records") == [{"dataset": "cub", "Table 2 runs recorded": "0 of 2",
                                          "Table 7 runs recorded": "0 of 4"}]


def test_measured_keeps_only_datasets_with_a_recorded_run(summary):
    _, _, cells = summary
    shown = report.measured(cells)
    assert {key[0] for key in shown} == {"synthetic", "cub"}  # cub: one stand-in run
    assert all(key[0] != "cub" or key in cells for key in shown)
    table = report.summary_table2(shown)
    measured = table[table.source == kit.MEASURED]
    assert set(measured["cars"]) == {"-"} and kit.NOT_RUN in set(measured["cub"])


def test_figure_and_sentence_are_computed_from_the_cells(summary):
    _, _, cells = summary
    figure = report.figure_summary_gains(cells)
    assert [ax.get_title() for ax in figure.axes] == ["synthetic\n(published: cub)",
                                                   "cub\n(measured: not run)"]
    sentence = report.direction_sentence(cells, "cub", 3.0)
    assert sentence == ("cub: measured, not run; published (cub), CAML above the "
                        "baseline on 1 of 2 pretext tasks (rotation), within 3.0 points on 1.")
    gain = {p: cells["synthetic", p, "CAML"].corloc - cells["synthetic", p, "Baseline"].corloc
            for p in PRETEXTS}
    assert ("above the baseline on "
            f"{sum(g >= 3 for g in gain.values())} of 2") in report.direction_sentence(
        cells, "synthetic", 3.0)


def test_figure_validation_draws_each_runs_metric_per_epoch():
    runs = {name: SimpleNamespace(curves={"val": [{"corloc@0.5": v} for v in values]})
            for name, values in (("Baseline", [20.0, 22.5]), ("CAML", [40.0, 55.0]))}
    fig = kit.figure_validation(runs)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["Baseline", "CAML"]
    assert list(lines[1].get_xdata()) == [1, 2]
    assert list(lines[1].get_ydata()) == [40.0, 55.0]
    plt.close(fig)


def test_damaged_and_failed_runs_are_skipped_and_listed_not_fatal(tmp_path):
    configs = report.summary_configs(["cub"], ["rotation", "scale"], seed=1)
    truncated, failed = configs["cub", "rotation", "CAML"], configs["cub", "scale", "CAML"]
    record(truncated, tmp_path, 80.0)
    results = run_directory(truncated, tmp_path) / RESULTS_FILE
    results.write_text(results.read_text()[:40])
    write_results(run_directory(failed, tmp_path) / RESULTS_FILE, failed.identity(), {},
                  error="loss became nan in epoch 3")
    cells = report.collect_summary(configs, tmp_path)
    assert cells["cub", "rotation", "CAML"].value == report.DAMAGED
    assert cells["cub", "scale", "CAML"].value == report.DAMAGED
    damaged = report.damaged_runs(cells)
    assert list(damaged.pretext) == ["rotation", "scale"]
    assert str(results) in damaged.problem[0] and "is not valid JSON" in damaged.problem[0]
    assert "recorded as failed: loss became nan" in damaged.problem[1]
    assert report.missing_runs(cells)["runs missing"].tolist() == [2]  # the baselines
    assert not report.summary_table7(cells).empty
