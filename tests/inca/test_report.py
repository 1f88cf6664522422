import matplotlib
import pytest

from coloc.data import collate_samples
from coloc.inca import INCAConfig
from coloc.inca import report as inca_report
from coloc.inca.method import explain, run
from coloc.reference import inca as reference
from coloc.runs import dataset_split

matplotlib.use("Agg")
TINY = dict(image_size=32, train_samples=8, val_samples=4, test_samples=6, epochs=1,
            batch_size=4, pretrained=False, context_bias=0.5)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    config = INCAConfig.profile("synthetic", **TINY).inca()
    out = tmp_path_factory.mktemp("results")
    return config, [run(config.replace(seed=s), out) for s in (0, 1)]


def test_metric_table_rows_and_seed_spread(tiny):
    _, runs = tiny
    table = inca_report.metric_table({"one": runs[0], "two seeds": runs}, "test")
    assert list(table["method"]) == ["one", "two seeds"]
    assert isinstance(table.loc[0, "mean"], float) and "±" in table.loc[1, "mean"]
    assert table.loc[1, "seeds"] == "0, 1"


def test_beside_marks_rows_not_run(tiny):
    _, runs = tiny
    frame = inca_report.beside(reference.table("table2"), {"Ours (full)": runs[0]}, "method",
                               why="not run: test")
    full = frame[frame["method"] == "Ours (full)"].iloc[0]
    assert isinstance(full["measured mean"], float)
    assert (frame[frame["method"] != "Ours (full)"]["measured mean"] == "not run: test").all()
    t4 = inca_report.beside_seeds(reference.table("table4"), {"Ours": runs}, "maxboxacc",
                                  "measured", rows={"dataset": "CUB"})
    assert len(t4) == 7 and (t4["measured"] == "published only").sum() == 6


def test_map_shares_add_up_to_the_whole_map(tiny):
    config, runs = tiny
    shares = inca_report.map_shares({"ours": runs[0]}, dataset_split(config, "test"), n=6)
    for _, row in shares.iterrows():
        assert row[["part", "rest of object", "background"]].sum() == pytest.approx(100, abs=0.2)


def test_figures_draw_from_real_tensors(tiny):
    config, runs = tiny
    batch = collate_samples([dataset_split(config, "test")[i] for i in range(3)])
    views = explain(runs[0].model(), batch, config)
    for fig in (inca_report.figure_masks(views, range(2)),
                inca_report.figure_contrastive(views, 0),
                inca_report.figure_overview(views, 0)):
        assert len(fig.axes) >= 8
