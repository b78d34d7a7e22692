"""TensorBoard export, read back with TensorBoard's own event reader."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actbench import rundir
from actbench.cli import app

from .helpers import fake_run

cli = CliRunner()
SLOPES = {"conv1": {"mean": 0.3, "min": 0.3, "max": 0.3, "n": 1}}


def _reader(folder: Path):  # type: ignore[no-untyped-def]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def test_event_files_hold_the_run_files_values(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    relu = fake_run(runs, {"name": "relu"}, 0, 0.98, curve=[0.9, 0.95, 0.98],
                    overrides={"train": {"epochs": 3}})  # fmt: skip
    # a channel-wise site: three channels per epoch; the summary states the last epoch's
    a = {e: [0.25 + e / 10 + c / 100 for c in range(3)] for e in (0, 3)}
    stated = {"conv1": {"mean": sum(a[3]) / 3, "min": min(a[3]), "max": max(a[3]), "n": 3}}
    prelu = fake_run(runs, {"name": "prelu", "per_channel": True}, 0, 0.985, slopes=stated,
                     curve=[0.9, 0.96, 0.985], overrides={"train": {"epochs": 3}})  # fmt: skip
    (prelu / "act_params.csv").write_text(
        "epoch,site,param,channel,index,value\n"
        + "".join(f"{e},conv1,a,{c},0,{v}\n" for e in a for c, v in enumerate(a[e]))
    )
    (prelu / "a_values.csv").write_text(
        "epoch,layer,channel,a\n"
        + "".join(f"{e},conv1,{c},{v}\n" for e in a for c, v in enumerate(a[e]))
    )
    out = tmp_path / "tb"
    result = cli.invoke(app, ["export", "tensorboard", str(runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [str(out / prelu.name), str(out / relu.name)]
    for run in (relu, prelu):
        acc = _reader(out / run.name)
        metrics = rundir.load_run(run).metrics
        for column, tag in (("test_acc", "test/accuracy"), ("train_loss", "train/loss"),
                            ("lr", "train/lr")):  # fmt: skip
            events = acc.Scalars(tag)
            assert [e.step for e in events] == [m["epoch"] for m in metrics]
            assert [e.value for e in events] == pytest.approx([m[column] for m in metrics])
    acc = _reader(out / prelu.name)
    slope = acc.Scalars("act_params/conv1/a")
    assert [(e.step, round(e.value, 5)) for e in slope] == [(0, 0.26), (3, 0.56)]
    hist = acc.Histograms("act_params_channels/conv1/a")
    assert [h.step for h in hist] == [0, 3] and hist[0].histogram_value.num == 3
    assert hist[1].histogram_value.min == pytest.approx(0.55)
    # hparams: the config and the final metric, for TensorBoard's HParams view
    from tensorboard.plugins.hparams import metadata

    start = metadata.parse_session_start_info_plugin_data(
        acc.PluginTagToContent("hparams")[metadata.SESSION_START_INFO_TAG]
    )
    assert start.hparams["optim.lr"].number_value == pytest.approx(0.01)
    assert start.hparams["activation.per_channel"].number_value == 1  # torch writes bools as 1/0
    assert start.hparams["activation_label"].string_value == "prelu-channel"
    final = _reader(out / prelu.name).Scalars("hparam/final_test_acc")
    assert final[0].value == pytest.approx(0.985)


def test_without_tensorboard_exit_2_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = fake_run(tmp_path / "runs", {"name": "relu"}, 0, 0.98)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    result = cli.invoke(app, ["export", "tensorboard", str(run), "--out", str(tmp_path / "tb")])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: TensorBoard is not installed; pip install 'actbench[tensorboard]'  "
        "(or: pip install tensorboard)\n"
    )
    assert not (tmp_path / "tb").exists()
