"""actbench plot / report on a few short real runs: files, their data, no display."""

from __future__ import annotations

import statistics
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actbench import compare, rundir
from actbench.cli import app

from .conftest import DATA_ROOT, QUICK, needs_data

pytestmark = [pytest.mark.slow, needs_data]
cli = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    env = {"ACTBENCH_DATA": str(DATA_ROOT), "DISPLAY": "", "MPLBACKEND": ""}
    small = ["data.train_subset=300", "train.epochs=1"]  # LeNet++ is slow
    for cfg, extra in (
        ("relu.yaml", []),
        ("prelu.yaml", []),
        ("prelu_channel.yaml", []),
        ("lenetpp_prelu.yaml", small),
        ("lenetpp_relu.yaml", small),
    ):
        # 300 test images: a pass over them per epoch costs LeNet++ more than its training
        sets = [a for s in [*QUICK, "data.test_subset=300", "train.epochs=2", *extra]
                for a in ("--set", s)]  # fmt: skip
        result = cli.invoke(app, ["train", "-c", cfg, "--runs-dir", str(runs), *sets], env=env)
        assert result.exit_code == 0, result.output
    return runs


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_plot_writes_every_png(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "plots"
    result = cli.invoke(app, ["plot", str(runs), "--out", str(out)], env={"DISPLAY": ""})
    assert result.exit_code == 0, result.output
    names = [
        "curves.png",
        "final_acc.png",
        "slopes.png",
        "slope_trajectories.png",
        "slope_hist.png",
        "activations.png",
        "learned_shapes.png",
        "features2d.png",
    ]
    assert result.stdout.splitlines() == [str(out / n) for n in names]
    for name in names:
        width, height = _png_size(out / name)
        assert width >= 500 and height >= 300, name
        assert (out / name).stat().st_size > 15_000, name  # drawn, not blank


def test_slope_plot_data_come_from_a_values(runs: Path) -> None:
    from actbench import plots

    assert plots.matplotlib.get_backend().lower() == "agg"
    found, _ = rundir.collect([runs])
    g = compare.grouping(found)  # the groups compare's tables use
    label = {r.summary.name: lab for lab, grp in g.groups.items() for r in grp.runs}
    (channel,) = [r for r in found if r.summary.name.startswith("prelu-channel-lenet")]
    (shared,) = [r for r in found if r.summary.name.startswith("prelu-lenet-")]
    plot = plots.slopes(g)
    rows = rundir.read_csv(channel.path / "a_values.csv")
    last = [r for r in rows if r["epoch"] == "2"]
    for site in ("conv1", "conv2", "fc1"):
        expected = statistics.fmean(float(r["a"]) for r in last if r["layer"] == site)
        assert plot.data[f"lenet/{label[channel.summary.name]}"][site] == pytest.approx(expected)
    traj = plots.slope_trajectories(g).data[f"{label[shared.summary.name]}/fc1"]
    assert list(traj) == [0, 1, 2] and traj[0] == pytest.approx(0.25)
    hist = plots.slope_histograms(g).data
    assert len(hist[f"{label[channel.summary.name]}: conv2"]) == 20  # channel-wise only
    feats = plots.features2d(g)
    assert feats is not None and len(feats.data) == 2  # the two LeNet++ groups
    assert all(v["n"] == 300 for v in feats.data.values())  # every test image's features


def test_report_embeds_tables_and_plots(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = cli.invoke(app, ["report", str(runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    assert text.startswith("# actbench report\n")
    # grouped, as every report table, with the learned shapes under it
    assert "### Learned activation parameters by site: prelu" in text
    assert "](learned_shapes.png)" in text
    assert "## Configs that differ" in text and "| activation | net |" in text
    for name in ("curves.png", "slopes.png", "features2d.png"):
        assert f"]({name})" in text and (out / name).is_file()


def test_per_site_plots_and_tables_never_mix_networks(runs: Path) -> None:
    from actbench import plots

    found, _ = rundir.collect([runs])
    g = compare.grouping(found, ["activation"])  # LeNet and LeNet++ runs in one group
    lenet = [r for r in found if r.summary.net == "lenet" and r.summary.activation == "prelu"]
    shapes = plots.learned_shapes(g).data
    assert {"prelu [lenet]", "prelu [lenetpp]"} <= set(shapes) and "prelu" not in shapes
    assert list(shapes["prelu [lenet]"]) == ["conv1", "conv2", "fc1"]
    assert "conv1_1" in shapes["prelu [lenetpp]"] and "conv1" not in shapes["prelu [lenetpp]"]
    expected = [
        statistics.fmean(ys)
        for ys in zip(
            *[
                [r["y_median"] for r in run.shapes if r["epoch"] == 2 and r["site"] == "fc1"]
                for run in lenet
            ],
            strict=True,
        )
    ]
    assert shapes["prelu [lenet]"]["fc1"]["epoch 2"] == pytest.approx(expected)  # LeNet's only
    traj = plots.slope_trajectories(g).data
    assert {k.split("/")[0] for k in traj} == {"prelu [lenet]", "prelu [lenetpp]", "prelu-channel"}
    dead = compare.records(compare.dead_units(found, g))
    assert {row["group"] for row in dead} == {
        "prelu [lenet]",
        "prelu [lenetpp]",
        "prelu-channel",
        "relu [lenet]",
        "relu [lenetpp]",
    }
