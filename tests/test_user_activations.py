"""Bring your own activation: entry points and import paths, their arguments, the learned
parameters and shapes every run records, and compare / report / plot over them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from actbench import compare, config, plots, rundir, runner
from actbench.cli import app
from actbench.errors import ActbenchError

from .conftest import DATA_ROOT, QUICK, needs_data
from .helpers import fake_run

cli = CliRunner()
EXAMPLES = {"swish_beta": "actbench_examples.activations:LearnedSwish",
            "pade": "actbench_examples.activations:Pade"}  # fmt: skip


def test_list_shows_the_installed_examples_beside_the_builtins() -> None:
    result = cli.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index("user activations (entry points, group actbench.activations):")
    assert lines[start + 1 : start + 3] == [
        "  pade        actbench_examples.activations:Pade from actbench-examples 0.1.0",
        "  swish_beta  actbench_examples.activations:LearnedSwish from actbench-examples 0.1.0",
    ]
    assert lines.index("  relu                                       max(0, x)") < start


def test_list_and_help_import_neither_torch_nor_user_code() -> None:
    code = (
        "import sys; from actbench.cli import app; from typer.testing import CliRunner; "
        "assert CliRunner().invoke(app, ['list']).exit_code == 0; "
        "print(sorted(m for m in ('torch', 'actbench_examples') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_user_arguments_are_config_keys_and_part_of_the_fingerprint() -> None:
    def cfg_of(act: dict) -> config.Config:
        return config.from_mapping({"activation": act, "train": {"precision": "fp32"}})

    cfg = cfg_of({"name": "tests.user_acts:Scaled", "k": 2.0})
    assert cfg.activation.args == {"k": 2.0}
    assert config.to_dict(cfg)["activation"] == {"name": "tests.user_acts:Scaled", "k": 2.0}
    assert config.activation_label(cfg.activation) == "tests.user_acts.Scaled(k=2)"
    other = cfg_of({"name": "tests.user_acts:Scaled", "k": 3.0})
    moved = cfg_of({"name": "other.acts:Scaled", "k": 2.0})
    prints = {
        config.fingerprint(config.from_mapping(config.to_dict(c))) for c in (cfg, other, moved)
    }
    assert len(prints) == 3  # the import path and the arguments define the run
    assert config.differences(cfg, other) == ["activation.k: 2 != 3"]
    # --set reaches user arguments too; a built-in still refuses keys it does not take
    sets = ["activation.name=pade", "activation.numerator=[0, 1, 0, 0, 0, 0]"]
    assert config.load("relu.yaml", sets).activation.args == {"numerator": [0, 1, 0, 0, 0, 0]}
    allowed = "name, negative_slope, per_channel, init, lower, upper, alpha"
    with pytest.raises(ActbenchError, match=re.escape(f"'activation.k'; allowed in activation: "
                                                      f"{allowed}")):  # fmt: skip
        config.load("relu.yaml", ["activation.k=2"])


BAD = [
    (["activation.name=mypkg.acts:Missing"],
     "activation.name: cannot import mypkg.acts:Missing (ModuleNotFoundError: No module named "
     "'mypkg')"),
    (["activation.name=tests.user_acts:Missing"],
     "activation.name: cannot import tests.user_acts:Missing (AttributeError: module "
     "'tests.user_acts' has no attribute 'Missing')"),
    (["activation.name=tests.user_acts:Scaled", "activation.k=2", "activation.beta=1"],
     "activation.beta: tests.user_acts:Scaled takes no argument 'beta'; its arguments: k"),
    (["activation.name=tests.user_acts:Scaled"],
     "activation: tests.user_acts:Scaled needs argument(s) k"),
    (["activation.name=tests.user_acts:Scaled", "activation.k=big"],
     "activation.k: tests.user_acts:Scaled expects a valid number, got 'big'"),
    (["activation.name=swish_beta", "activation.channels=4"],
     "activation.channels: set by actbench (the channel count of each site)"),
    (["activation.name=tests.user_acts:Broken"],
     "activation: tests.user_acts:Broken could not be built (RuntimeError: cannot build this)"),
    (["activation.name=tests.user_acts:NotAModule"],
     "activation.name: tests.user_acts:NotAModule is not a torch.nn.Module"),
    (["activation.name=swish"],
     "relu.yaml: activation.name: unknown value 'swish' (did you mean 'hardswish'?); allowed: "
     "relu, leaky_relu, "),
    (["activation.name=swish"],
     "sigmoid, pade, swish_beta, or a class by import path (package.module:Class)\n"),
    (["model.init=auto", "activation.name=tests.user_acts:BadGain"],
     "activation: BadGain.init_gain failed (ZeroDivisionError: division by zero)\n"),
    (["activation.name=tests.user_acts:FlatOnly"],
     "activation: tests.user_acts:FlatOnly fails on a (N, channels, H, W) input "
     "(ValueError: expected 2 dimensions, got 4)\n"),
    (["activation.name=tests.user_acts:Scaled", "activation.k=.nan"],
     "activation.k: an activation argument is a finite number, a string, true/false, null or a "
     "list of these; got nan\n"),
]  # fmt: skip


@pytest.mark.parametrize(("sets", "message"), BAD)
def test_a_bad_user_activation_exits_2_with_one_line(
    tmp_path: Path, sets: list[str], message: str
) -> None:
    runs = tmp_path / "runs"
    result = cli.invoke(app, ["train", "-c", "relu.yaml", "--runs-dir", str(runs),
                              *[a for s in sets for a in ("--set", s)]])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not runs.exists()  # nothing written


def test_string_and_tuple_arguments_round_trip_through_config_yaml() -> None:
    act = {"name": "tests.user_acts:Tagged", "tag": "1e-3", "coeffs": [2.0, 3.0]}
    cfg = config.from_mapping({"activation": act, "train": {"precision": "fp32"}})
    again = config.from_mapping(config.load_yaml_text(config.dump(cfg)))
    assert again.activation.args == {"tag": "1e-3", "coeffs": [2.0, 3.0]}  # still a string
    assert config.fingerprint(again) == config.fingerprint(cfg)
    from actbench import activations

    assert activations.create(cfg.activation, 4).scale.tolist() == [2.0, 3.0]


def test_network_init_leaves_layers_inside_an_activation_alone() -> None:
    from actbench import models

    act = config.ActivationConfig(name="tests.user_acts:WithLayer")
    model = models.build(config.ModelConfig(init="auto"), act, seed=0)
    assert all(m.mix.weight.item() == 0.5 for m in model.acts.values())


def test_a_broadcast_shaped_parameter_is_read_per_channel() -> None:
    from actbench import models

    act = config.ActivationConfig(name="tests.user_acts:BroadcastSlope")
    model = models.build(config.ModelConfig(), act, seed=0)
    rows = [r for r in models.activation_params(model, act) if r[0] == "conv1"]
    channels = model.site_shapes["conv1"][0]
    assert rows == [("conv1", "a", c, 0, float(c)) for c in range(channels)]


def test_a_sweep_checks_every_user_activation_before_training(tmp_path: Path) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        "name: mine\nbase: relu.yaml\naxes:\n  activation:\n    - {name: relu}\n"
        "    - {name: pade, degree: 7}\n"
    )
    result = cli.invoke(app, ["sweep", "-c", str(spec), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {spec}: activation.degree: pade takes no argument 'degree'; its arguments: "
        "numerator, denominator\n"
    )
    assert not (tmp_path / "runs").exists()


def test_runs_are_read_without_importing_user_code(tmp_path: Path) -> None:
    """compare and report read a run's recorded values; the class it names is never imported
    (here it does not even exist)."""
    for seed in range(2):
        fake_run(tmp_path, {"name": "ghost.acts:Act", "w": 1}, seed, 0.97 + seed / 100)
        fake_run(tmp_path, {"name": "relu"}, seed, 0.97)
    rep = tmp_path.parent / "rep"
    code = (
        "import sys; from actbench.cli import app; from typer.testing import CliRunner; "
        f"c = CliRunner().invoke(app, ['report', {str(tmp_path)!r}, '--out', {str(rep)!r}]); "
        f"r = CliRunner().invoke(app, ['compare', {str(tmp_path)!r}, '-f', 'csv']); "
        "print(c.exit_code, r.exit_code, 'ghost' in sys.modules); print(r.stdout)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    status, table = out.stdout.split("\n", 1)
    assert status == "0 0 False"
    assert "ghost.acts.Act(w=1)" in (rep / "report.md").read_text()
    assert "\nghost.acts.Act(w=1),2,2,97.5,0.707107," in table


def test_previous_schema_prelu_runs_read_as_learned_parameters(tmp_path: Path) -> None:
    """A schema-2 run has a_values.csv only: its a is read as the parameter 'a', its shapes
    are derived from it, and a resume writes the new files first."""
    path = fake_run(tmp_path, {"name": "prelu", "per_channel": True}, 0, 0.98,
                    slopes={"conv1": {"mean": 0.5, "min": 0.5, "max": 0.5, "n": 1}})  # fmt: skip
    (path / rundir.PARAMS).unlink()
    summary = json.loads((path / rundir.SUMMARY).read_text())
    summary.update(schema_version=2, act_params={})
    (path / rundir.SUMMARY).write_text(json.dumps(summary))
    run = rundir.load_run(path)
    stats = {"mean": 0.5, "min": 0.5, "max": 0.5, "n": 1}
    assert run.summary.model_dump()["act_params"] == {"conv1": {"a": stats}}
    assert [(p["epoch"], p["param"], p["channel"], p["value"]) for p in run.params] == [
        (0, "a", 0, 0.25), (10, "a", 0, 0.5)]  # fmt: skip
    at = {(s["epoch"], s["x"]): s["y_median"] for s in run.shapes}
    assert at[0, -4.0] == -1.0 and at[10, -4.0] == -2.0 and at[10, 4.0] == 4.0
    rundir.RunDir(path).upgrade(run)
    upgraded = rundir.load_run(path)
    assert (upgraded.params, upgraded.shapes) == (run.params, run.shapes)


# ---------------------------------------------------------------------------- real training


def _train(tmp_path: Path, overrides: list[str], **kwargs):  # type: ignore[no-untyped-def]
    return runner.train(config.load("relu.yaml", overrides), tmp_path, **kwargs)


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("net", ["lenet", "lenetpp"])
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_examples_train_record_and_resume_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, net: str, name: str
) -> None:
    monkeypatch.setenv("ACTBENCH_DATA", str(DATA_ROOT))
    # 256 images each way: Pade's elementwise rational function makes LeNet++ slow per image
    overrides = [*QUICK, "data.train_subset=256", "data.test_subset=256", "train.epochs=2",
                 f"model.net={net}", "model.init=auto", f"activation.name={name}"]  # fmt: skip
    whole, summary = _train(tmp_path / "a", overrides)
    assert summary.status == "completed"
    assert summary.activation_source == f"{EXAMPLES[name]} (actbench-examples 0.1.0)"
    # pade declares no init gain: the run says so; swish_beta declares one
    assert any("declares no init_gain" in n for n in summary.notes) == (name == "pade")
    run = rundir.load_run(whole.path)
    model = torch.load(whole.path / "model.pt")
    sites = list(summary.act_params)
    assert len(sites) == (3 if net == "lenet" else 7)
    for site in sites:
        last = {(p["param"], p.get("channel"), p["index"]): p["value"]
                for p in run.params if p["epoch"] == 2 and p["site"] == site}  # fmt: skip
        for key, tensor in model.items():
            if key.startswith(f"acts.{site}."):
                param = key.split(".")[-1]
                if name == "swish_beta":  # one beta per channel of the site
                    assert [last[param, c, 0] for c in range(len(tensor))] == tensor.tolist()
                else:  # one set of coefficients per site
                    assert [last[param, None, i] for i in range(len(tensor))] == tensor.tolist()
    assert sorted({p["epoch"] for p in run.params}) == sorted({s["epoch"] for s in run.shapes})
    assert sorted({p["epoch"] for p in run.params}) == [0, 1, 2]
    drawn = plots.learned_shapes(compare.grouping([run])).data[summary.activation]
    assert list(drawn) == sites and list(drawn[sites[-1]]) == ["epoch 0", "epoch 1", "epoch 2"]
    recorded = [s["y_median"] for s in run.shapes if s["epoch"] == 2 and s["site"] == sites[-1]]
    assert drawn[sites[-1]]["epoch 2"] == pytest.approx(recorded)

    def stop_after_first(result: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, between epochs

    cut, summary = _train(tmp_path / "b", overrides, on_epoch=stop_after_first)
    assert summary.status == "interrupted"
    resumed_run, trainer = runner.prepare_resume(cut.path)
    runner.execute(resumed_run, trainer, resumed=True)
    for file in (rundir.PARAMS, rundir.SHAPES):
        assert (cut.path / file).read_text() == (whole.path / file).read_text()
    b = torch.load(cut.path / "model.pt")
    assert all(torch.equal(model[k], b[k]) for k in model)


@pytest.mark.slow
@needs_data
def test_sweep_of_builtins_and_examples_compares_reports_and_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTBENCH_DATA", str(DATA_ROOT))
    runs = tmp_path / "runs"
    sets = ["data.train_subset=2000", "data.test_subset=1000", "train.epochs=2", "train.device=cpu"]
    result = cli.invoke(app, ["sweep", "-c", "own_activations.yaml", "--runs-dir", str(runs),
                              *[a for s in sets for a in ("--set", s)]])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "12 completed, 0 failed, 0 skipped of 12 runs" in result.stdout
    folder = runs / "own-activations"
    found, warnings = rundir.collect([folder])
    assert len(found) == 12 and warnings == []
    tables = compare.build_tables(found, baseline="relu")
    acc = {r["group"]: r for r in compare.records(tables[0])}
    assert sorted(acc) == ["pade", "prelu", "relu", "swish_beta"]
    assert all(r["n"] == 3 for r in acc.values())
    for group in ("pade", "prelu", "swish_beta"):  # the same paired statistics as built-ins
        seeds = {r.summary.seed: r.summary.final_test_acc for r in found
                 if r.summary.activation == group}  # fmt: skip
        base = {r.summary.seed: r.summary.final_test_acc for r in found
                if r.summary.activation == "relu"}  # fmt: skip
        diff = sum(100 * (seeds[s] - base[s]) for s in seeds) / 3
        assert acc[group]["diff_vs_baseline"] == pytest.approx(diff, abs=0.01)
    learned = {t.title: t for t in tables if t.title.startswith("Learned activation")}
    assert sorted(learned) == [f"Learned activation parameters by site: {n}"
                               for n in ("pade", "prelu", "swish_beta")]  # fmt: skip
    swish = compare.records(learned["Learned activation parameters by site: swish_beta"])
    assert [r["site"] for r in swish] == ["conv1", "conv2", "fc1"]
    assert all(r["param"] == "beta" and r["swish_beta n"] == 3 for r in swish)
    pade = compare.records(learned["Learned activation parameters by site: pade"])
    assert len(pade) == 3 * 10  # 6 numerator + 4 denominator coefficients per site
    # the learned-shape plot draws the recorded functions, epoch 0 and the last epoch
    figures, _ = plots.make_all(found, compare.for_report(found, "relu"))
    drawn = figures["learned_shapes.png"].data
    assert sorted(drawn) == ["pade", "prelu", "swish_beta"]
    pade_runs = [r for r in found if r.summary.activation == "pade"]
    for epoch in (0, 2):
        recorded = [[s["y_median"] for s in r.shapes if s["epoch"] == epoch and s["site"] == "fc1"]
                    for r in pade_runs]  # fmt: skip
        mean = [sum(v) / len(v) for v in zip(*recorded, strict=True)]
        assert drawn["pade"]["fc1"][f"epoch {epoch}"] == pytest.approx(mean)
    result = cli.invoke(app, ["report", str(folder), "--out", str(tmp_path / "rep"),
                              "--baseline", "relu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "**pade**" in text and "**swish_beta**" in text
    assert "### Learned activation parameters by site: swish_beta" in text
    assert "](learned_shapes.png)" in text and (tmp_path / "rep" / "learned_shapes.png").is_file()
    assert re.search(r"\| lenet \| fc1 \| numerator\[0\] \|", text)
