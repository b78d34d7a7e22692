"""Evidence a user can trust: run identity, nothing lost, nothing executed, bad input as one
line. One test per case the integrity review found (issue: integrity)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from actbench import compare, config, data, plots, rundir
from actbench.cli import app
from actbench.errors import ActbenchError

from .conftest import DATA_ROOT, REPO, needs_data
from .helpers import fake_run

cli = CliRunner()
RELU, PRELU = {"name": "relu"}, {"name": "prelu"}


def _one_error_line(result, *needles: str) -> str:  # type: ignore[no-untyped-def]
    """The command exited 2 with exactly one line on stderr holding every needle."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------- 1. identity


@pytest.mark.slow
@needs_data
def test_rerun_with_other_settings_never_reuses_runs(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nbase: relu.yaml\nseeds: 1\n")
    args = ["sweep", "-c", str(spec), "--runs-dir", str(tmp_path), "--workers", "1"]
    env = {"ACTBENCH_DATA": str(DATA_ROOT)}
    quick = ["--set", "train.epochs=1", "--set", "data.train_subset=300"]
    first = cli.invoke(app, [*args, *quick], env=env)
    assert first.exit_code == 0, first.output
    before = _tree(tmp_path / "s")

    other = ["--set", "train.epochs=2", "--set", "data.train_subset=400"]
    second = cli.invoke(app, [*args, *other], env=env)
    _one_error_line(
        second,
        "hold a different experiment than planned",
        "data.train_subset: 300 != 400",
        "train.epochs: 1 != 2",
        "--beside",
    )
    assert _tree(tmp_path / "s") == before  # nothing trained, nothing touched

    beside = cli.invoke(app, [*args, *other, "--beside"], env=env)
    assert beside.exit_code == 0, beside.output
    names = sorted(p.name for p in (tmp_path / "s").iterdir() if p.is_dir())
    assert names[0] == "relu-lenet-mnist-s0" and names[1].startswith("relu-lenet-mnist-s0-")
    new = rundir.load_run(tmp_path / "s" / names[1])
    assert (new.summary.epochs, new.cfg.data.train_subset) == (2, 400)
    derived = ("summary.csv", "summary.md")  # the sweep's own tables, rewritten each time
    after = _tree(tmp_path / "s")
    assert {k: v for k, v in after.items() if k in before and k not in derived} == {
        k: v for k, v in before.items() if k not in derived
    }


def test_fingerprint_covers_what_is_trained_not_where() -> None:
    base = config.from_mapping({"train": {"precision": "fp32", "channels_last": False}})
    same = base.model_copy(deep=True)
    same.train.threads, same.train.device, same.data.root = 2, "cpu", "/elsewhere"
    same.train.channels_last, same.name = True, "x"
    assert config.fingerprint(same) == config.fingerprint(base)
    for key, value in [
        ("seed", 1),
        ("data.train_subset", 300),
        ("data.shift", 1),
        ("optim.lr", 0.02),
        ("train.epochs", 2),
        ("train.precision", "bf16"),
        ("activation.name", "elu"),
        ("optim.schedule", "cosine"),
    ]:
        changed = config.from_mapping(
            config.apply_overrides(config.to_dict(base), [f"{key}={value}"])
        )
        assert config.fingerprint(changed) != config.fingerprint(base), key


# ---------------------------------------------------------------------------- 2. nothing lost


def test_sweep_leaves_a_damaged_finished_run_alone(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nbase: relu.yaml\nseeds: 1\n")
    run = fake_run(tmp_path / "s", RELU, 0, 0.98)
    (run / "summary.json").write_text('{"name": "relu-lenet-mnist-s0", "sta')  # truncated
    (run / "my-notes.txt").write_text("mine")
    before = _tree(tmp_path / "s")
    result = cli.invoke(app, ["sweep", "-c", str(spec), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"[1/1] damaged   relu-lenet-mnist-s0  {run}/summary.json: damaged" in result.stdout
    assert "left alone" in result.stdout
    assert _tree(tmp_path / "s") == before


def test_set_aside_keeps_every_file(tmp_path: Path) -> None:
    run = rundir.RunDir(fake_run(tmp_path, RELU, 0, None, status="failed"))
    (run.path / "extra.txt").write_text("kept")
    moved = run.set_aside()
    assert moved == tmp_path / ".attempts" / "relu-lenet-mnist-s0.1"
    assert (moved / "extra.txt").read_text() == "kept" and not run.path.exists()
    runs, _ = rundir.collect([tmp_path])
    assert runs == []  # attempts set aside are not runs to compare


# ---------------------------------------------------------------------------- 3. no code runs


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "pwned"))


def test_crafted_pickles_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    run = fake_run(tmp_path / "runs", PRELU, 0, 0.98)
    (run / "model.pt").write_bytes(pickle.dumps(_Evil(marker)))
    result = cli.invoke(app, ["evaluate", str(run)])
    _one_error_line(result, f"refusing to load {run}/model.pt")
    assert not marker.exists()

    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    (run / "checkpoint.pt").write_bytes(pickle.dumps({"epoch": 1, "model": _Evil(marker)}))
    result = cli.invoke(app, ["train", "--resume", str(run)])
    _one_error_line(result, f"refusing to load {run}/checkpoint.pt")
    assert not marker.exists()


# ---------------------------------------------------------------------------- 4. paths


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "../../x"],
        ["--name", "/abs/path"],
        ["--name", "a/b"],
        ["--name", "x" * 300],
        ["--name", ".."],
        ["--set", "name=../../x"],
        ["--set", "name=/tmp/x"],
    ],
)
def test_names_cannot_leave_the_runs_dir(tmp_path: Path, args: list[str]) -> None:
    runs = tmp_path / "a" / "b" / "runs"
    result = cli.invoke(app, ["train", "-c", "relu.yaml", "--runs-dir", str(runs), *args])
    _one_error_line(result, "is not allowed", "1-100 characters of letters")
    assert list(tmp_path.rglob("*")) == []  # nothing written anywhere


# ---------------------------------------------------------------------------- 5. YAML bombs

_BOMB = "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)


@pytest.mark.parametrize("key", ["name", "seed"])
def test_alias_bomb_is_refused(tmp_path: Path, key: str) -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x]\n" + _BOMB + f"{key}: *j\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    result = cli.invoke(app, ["train", "-c", str(path), "--runs-dir", str(tmp_path / "r")])
    _one_error_line(result, "anchors and aliases (&name / *name) are not allowed", "line 2")
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------- 6. values


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("optim.lr=.inf", "optim.lr: must be a finite number"),
        ("optim.lr=1e999", "optim.lr: must be a finite number"),
        ("optim.weight_decay=.inf", "optim.weight_decay: must be a finite number"),
        ("activation.negative_slope=.inf", "activation.negative_slope: must be a finite number"),
        ("activation.init=.nan", "activation.init: must be a finite number"),
        ("train.threads=1e23", "train.threads: must be a valid integer, got 1e+23"),
        ("seed=1e23", "seed: must be a valid integer, got 1e+23"),
        ("train.epochs=100000000000000000000000", "train.epochs: must be less than or equal"),
        ("train.batch_size=1e23", "train.batch_size: must be a valid integer"),
        ("seed=-1", "seed: must be greater than or equal to 0"),
    ],
)
def test_impossible_values_exit_2_before_any_folder(
    tmp_path: Path, setting: str, message: str
) -> None:
    act = ["-c", "leaky_relu.yaml"] if "negative_slope" in setting else ["-c", "prelu.yaml"]
    args = ["train", *act, "--runs-dir", str(tmp_path / "r"), "--set", setting]
    _one_error_line(cli.invoke(app, args), message)
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------- 7. one line


def test_unwritable_places_give_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for runs_dir in (a_file, a_file / "under"):
        result = cli.invoke(app, ["train", "-c", "relu.yaml", "--runs-dir", str(runs_dir)])
        _one_error_line(result, f"cannot create folder {runs_dir}")
    run = fake_run(tmp_path / "runs", RELU, 0, 0.98)
    for output, why in ((tmp_path, "is a folder"), (a_file / "t.md", "cannot create folder")):
        result = cli.invoke(app, ["compare", str(run), "--output", str(output)])
        _one_error_line(result, why)
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind
    result = cli.invoke(app, ["report", str(run), "--out", str(a_file)])
    _one_error_line(result, f"cannot create folder {a_file}")
    assert a_file.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permissions")
def test_read_only_runs_dir_gives_one_line(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    result = cli.invoke(app, ["train", "-c", "relu.yaml", "--runs-dir", str(ro)])
    _one_error_line(result, f"cannot write in {ro}")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--config"], "Option '--config' requires an argument"),
        (["train", "--bogus"], "No such option: --bogus"),
        (["compare"], "Missing argument 'paths'"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], needle: str) -> None:
    _one_error_line(cli.invoke(app, args), needle, "--help")


@needs_data
def test_resume_with_another_networks_checkpoint(tmp_path: Path) -> None:
    import torch

    from actbench import models

    run = fake_run(tmp_path, PRELU, 0, None, status="interrupted", epochs=1)
    other = models.build(config.ModelConfig(net="lenetpp"), config.ActivationConfig(), 0)
    torch.save({"epoch": 1, "model": other.state_dict()}, run / "checkpoint.pt")
    result = cli.invoke(app, ["train", "--resume", str(run)], env={"ACTBENCH_DATA": str(DATA_ROOT)})
    _one_error_line(result, "checkpoint does not fit this run's config")


# ---------------------------------------------------------------------------- 8. damaged runs


def _damage(run: Path, how: str) -> None:
    if how == "metrics-bytes":
        (run / "metrics.csv").write_bytes(bytes(range(256)) * 4)
    elif how == "channel":
        rows = (run / "a_values.csv").read_text().replace(",conv1,0,", ",conv1,zero,")
        (run / "a_values.csv").write_text(rows)
    else:
        summary = json.loads((run / "summary.json").read_text())
        if how == "no-activation":
            del summary["activation"]
        else:
            summary["best_test_acc"] = "abc"
        (run / "summary.json").write_text(json.dumps(summary))


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("metrics-bytes", "metrics.csv: damaged ("),
        ("channel", "a_values.csv: damaged (line 2: invalid literal for int()"),
        ("no-activation", "summary.json: damaged (activation: Field required)"),
        ("best-acc", "summary.json: damaged (best_test_acc: Input should be a valid number"),
    ],
)
@pytest.mark.parametrize("command", ["compare", "plot", "report"])
def test_one_damaged_run_is_skipped_with_a_warning(
    tmp_path: Path, how: str, reason: str, command: str
) -> None:
    runs = tmp_path / "runs"
    slopes = {"conv1": {"mean": 0.2, "min": 0.2, "max": 0.2, "n": 1}}
    for seed in range(2):
        fake_run(runs, RELU, seed, 0.98)
        fake_run(runs, PRELU, seed, 0.985, slopes=slopes)
    bad = runs / "prelu-lenet-mnist-s1"
    _damage(bad, how)
    extra = [] if command == "compare" else ["--out", str(tmp_path / "out")]
    result = cli.invoke(app, [command, str(runs), *extra])
    assert result.exit_code == 0, result.output
    (warning,) = result.stderr.splitlines()
    assert warning.startswith(f"warning: skipping {bad}/") and reason in warning


# ---------------------------------------------------------------------------- 9. one grouping


def test_tables_and_figures_share_groups_and_counts(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    slopes = {"conv1": {"mean": 0.2, "min": 0.2, "max": 0.2, "n": 1}}
    for seed in range(3):
        for lr in (0.01, 0.1):
            fake_run(
                runs / f"lr{lr}",
                PRELU,
                seed,
                0.98 + lr / 10,
                slopes=slopes,
                overrides={"optim": {"lr": lr}, "train": {"epochs": 2}},
                curve=[0.9, 0.98 + lr / 10],
            )
    # An interrupted run with no epoch, and a stale 'running' one: listed, never counted.
    fake_run(
        runs / "cut",
        PRELU,
        7,
        None,
        status="interrupted",
        curve=[],
        overrides={"optim": {"lr": 0.1}, "train": {"epochs": 2}},
    )
    fake_run(
        runs / "dead",
        PRELU,
        8,
        0.5,
        status="running",
        pid=2**22 + 9,
        slopes=slopes,
        overrides={"optim": {"lr": 0.1}, "train": {"epochs": 2}},
        curve=[0.5],
    )
    found, _ = rundir.collect([runs])
    g = compare.grouping(found)
    assert g.keys == ["optim.lr"] and sorted(g.groups) == ["0.01", "0.1"]
    tables = compare.build_tables(found)
    acc = {r["group"]: r for r in compare.records(tables[0])}
    assert acc["0.01"]["n"] == acc["0.1"]["n"] == 3
    assert acc["0.1"]["not_completed"] == 2  # listed, left out
    assert "prelu-lenet-mnist-s7 (interrupted)" in tables[0].notes[-1]
    slope_table = next(t for t in tables if t.title.startswith("Learned activation parameters"))
    assert slope_table.rows[0][3:] == [0.2, 0.0, 3, 0.2, 0.0, 3]  # n = 3 in both groups
    figures, _ = plots.make_all(found)
    curves = figures["curves.png"].data
    assert sorted(curves) == ["0.01", "0.1"]  # the interrupted run removes no curve
    assert figures["final_acc.png"].data["0.1"] == pytest.approx([99.0] * 3)
    report = cli.invoke(app, ["report", str(runs), "--out", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| 0.1 | 3 |" in text and "| 0.01 | 3 |" in text


# ---------------------------------------------------------------------------- 11. old runs


def test_runs_of_the_previous_release_still_load(tmp_path: Path) -> None:
    run = fake_run(tmp_path, RELU, 0, 0.98)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    for key in ("compile", "precision", "channels_last"):
        del cfg["train"][key]
    del cfg["optim"]["schedule"]
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    summary = json.loads((run / "summary.json").read_text())
    for key in ("schema_version", "fingerprint", "test_images"):
        summary.pop(key, None)
    (run / "summary.json").write_text(json.dumps(summary))
    fake_run(tmp_path, RELU, 1, 0.97)
    loaded = rundir.load_run(run)
    assert loaded.cfg.train.precision == "fp32" and loaded.cfg.train.compile is False
    assert loaded.fingerprint == config.fingerprint(loaded.cfg)
    result = cli.invoke(app, ["compare", str(tmp_path), "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)[0]["rows"]
    assert [r["n"] for r in rows] == [2]  # the old run groups with the new one


# ---------------------------------------------------------------------------- 12. two sweeps


def test_a_run_locked_by_another_sweep_is_skipped_not_failed(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nbase: relu.yaml\nseeds: 1\n")
    folder = tmp_path / "s"
    folder.mkdir()
    owner = os.getppid()  # a live process that is not this one
    (folder / ".relu-lenet-mnist-s0.lock").write_text(
        json.dumps({"pid": owner, "host": rundir.HOST})
    )
    result = cli.invoke(app, ["sweep", "-c", str(spec), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"skipped   relu-lenet-mnist-s0  being trained by process {owner}" in result.stdout
    assert (
        result.stdout.splitlines()[-1] == f"0 completed, 0 failed, 1 skipped of 1 runs in {folder}"
    )


def test_sweep_takes_data_dir(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nbase: relu.yaml\nseeds: 1\n")
    result = cli.invoke(
        app,
        ["sweep", "-c", str(spec), "--runs-dir", str(tmp_path), "--data-dir", str(tmp_path / "nd")],
    )
    assert result.exit_code == 1
    assert f"mnist not found: {tmp_path / 'nd' / 'MNIST' / 'raw'} lacks" in result.stdout


def test_unreadable_data_file_gives_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.FILES:
        (raw / name).write_bytes(b"\0" * 16)
    denied = raw / "train-images-idx3-ubyte"
    real_open = Path.open

    def open_(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self == denied:  # as for a user without read permission (root reads anything)
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    result = cli.invoke(app, ["train", "-c", "relu.yaml", "--data-dir", str(tmp_path)])
    _one_error_line(result, f"cannot read data file {denied}: Permission denied")


# ---------------------------------------------------------------------------- red-team cases


@pytest.mark.parametrize(
    ("file", "edit", "reason"),
    [
        ("summary.json", lambda t: "[" * 100_000, "nested too deeply"),
        ("summary.json", lambda t: t.replace('"name": "', '"name": "../../'), "name: '../../"),
        ("summary.json", lambda t: t.replace('"seed": 0', '"seed": 1'), "seed 1 but config.yaml"),
        (
            "summary.json",
            lambda t: t.replace('"test_images": 10000', '"test_images": 0'),
            "test_images",
        ),
        # the statistics count correct images out of test_images: it is what the config read
        (
            "summary.json",
            lambda t: t.replace('"test_images": 10000', '"test_images": 300'),
            "test_images 300 but config.yaml reads 10000 images",
        ),
        (
            "summary.json",
            lambda t: t.replace('"test_images": 10000', '"test_images": null'),
            "test_images None but config.yaml reads 10000 images",
        ),
        (
            "summary.json",
            lambda t: t.replace('"val_images": null', '"val_images": 5000'),
            "val_images 5000 but config.yaml reads no validation split (data.val_size: 0)",
        ),
        (
            "summary.json",
            lambda t: t.replace('"best_test_acc": 0.98', '"best_test_acc": null'),
            "a completed run without",
        ),
        (
            "summary.json",
            lambda t: t.replace('"train_seconds": 60.0', '"train_seconds": NaN'),
            "train_seconds",
        ),
        ("config.yaml", lambda t: "seed: " + "[" * 5000, "damaged"),
        ("config.yaml", lambda t: "seed: [\n", "invalid YAML"),
        ("config.yaml", lambda t: '!!python/object/apply:os.system ["true"]\n', "invalid YAML"),
        ("metrics.csv", lambda t: t.replace("\n1,", "\ninf,", 1), "not an epoch number"),
        # summary.json and metrics.csv of a completed run tell one story (tables read one,
        # plots the other)
        ("metrics.csv", lambda t: t.rsplit("\n", 2)[0] + "\n", "but summary.json says 10 comp"),
        ("metrics.csv", lambda t: t.splitlines()[0] + "\n", "epochs none but summary.json says 10"),
        ("metrics.csv", lambda t: t + "2," + "9" * 200_000 + "\n", "damaged"),
    ],
)
def test_hostile_run_files_are_damaged_not_tracebacks(
    tmp_path: Path,
    file: str,
    edit,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    run = fake_run(tmp_path / "runs", RELU, 0, 0.98)
    fake_run(tmp_path / "runs", RELU, 1, 0.97)
    (run / file).write_text(edit((run / file).read_text()))
    result = cli.invoke(app, ["compare", str(tmp_path / "runs"), "-f", "json"])
    assert result.exit_code == 0, result.output
    (warning,) = result.stderr.splitlines()
    assert warning.startswith(f"warning: skipping {run}/{file}: damaged") and reason in warning
    json.loads(result.stdout)  # valid JSON: no NaN leaks out


def test_a_summary_that_is_not_its_curves_end_is_damaged(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "runs", RELU, 0, 0.98)
    fake_run(tmp_path / "runs", RELU, 1, 0.97)
    text = (run / "summary.json").read_text()
    (run / "summary.json").write_text(
        text.replace('"final_test_acc": 0.98', '"final_test_acc": 0.99')
    )
    result = cli.invoke(app, ["compare", str(tmp_path / "runs"), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"warning: skipping {run}/metrics.csv: damaged (last test_acc 0.98 but summary.json's "
        "final is 0.99)"
    ]


@pytest.mark.parametrize(
    ("file", "edit", "reason", "status"),
    [
        ("act_params.csv", lambda t: t.replace("10,conv1,a,,0,0.5", "10,conv1,a,,0,0.7"),
         "conv1 a at epoch 10: mean 0.7 but summary.json says 0.5", "completed"),
        ("act_params.csv", lambda t: t.replace("10,conv1,a,,0,0.5", "10,conv1,a,,0,0.7"),
         "conv1 a at epoch 10: mean 0.7 but summary.json says 0.5", "stalled"),
        ("act_params.csv", lambda t: t.splitlines()[0] + "\n",
         "conv1 a at epoch 10: none but summary.json states it", "completed"),
        ("act_params.csv", lambda t: t + "11,conv1,a,,0,0.9\n",
         "rows up to epoch 11 but summary.json says 10 trained", "completed"),
        ("a_values.csv", lambda t: t.replace("10,conv1,0,0.5", "10,conv1,0,0.7"),
         "conv1 a at epoch 10: mean 0.7 but summary.json says 0.5", "completed"),
        # its first mean is the slope's (summary.slopes precedes act_params)
        ("summary.json", lambda t: t.replace('"mean": 0.5', '"mean": 0.7', 1),
         "conv1 a at epoch 10: mean 0.5 but summary.json says 0.7", "completed"),
    ],
)  # fmt: skip
def test_learned_parameters_that_are_not_the_summarys_are_damaged(
    tmp_path: Path,
    file: str,
    edit,  # type: ignore[no-untyped-def]
    reason: str,
    status: str,
) -> None:
    """The tables and the slope finding read summary.json; the plots and the export read
    a_values.csv and act_params.csv: a counted run's must agree."""
    stats = {"conv1": {"mean": 0.5, "min": 0.5, "max": 0.5, "n": 1}}
    dead = {"dead_site": "fc1"} if status == "stalled" else {}
    run = fake_run(tmp_path / "runs", PRELU, 0, 0.98, slopes=stats, status=status, **dead)
    fake_run(tmp_path / "runs", PRELU, 1, 0.97, slopes=stats, status=status, **dead)
    text = (run / file).read_text()
    assert edit(text) != text
    (run / file).write_text(edit(text))
    result = cli.invoke(app, ["compare", str(tmp_path / "runs"), "-f", "json"])
    assert result.exit_code == 0, result.output
    if file == "summary.json":
        file = "a_values.csv"  # the file that disagrees with it is named
    assert result.stderr.splitlines() == [f"warning: skipping {run}/{file}: damaged ({reason})"]


def test_export_names_folders_after_the_run_folders(tmp_path: Path) -> None:
    a = fake_run(tmp_path / "a", RELU, 0, 0.98)
    b = fake_run(tmp_path / "b", RELU, 0, 0.98)  # same run name, another folder
    out = tmp_path / "tb"
    result = cli.invoke(app, ["export", "tensorboard", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [a.name, f"{a.name}-2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "tb"]  # nothing elsewhere


def test_export_of_a_run_given_as_dot_stays_inside_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = fake_run(tmp_path / "runs", RELU, 0, 0.98)
    (run / "sub").mkdir()
    out = tmp_path / "tb"
    for where, given in ((run, "."), (run / "sub", "..")):
        monkeypatch.chdir(where)
        result = cli.invoke(app, ["export", "tensorboard", given, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert [p.name for p in out.iterdir()] == [run.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "tb"]
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("events")) == []


def test_a_link_where_actbench_writes_is_refused(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "runs", RELU, 0, 0.98)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "report.md").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    for args in (["report", str(run)], ["plot", str(run)], ["export", "tensorboard", str(run)]):
        result = cli.invoke(app, [*args, "--out", str(link)])
        _one_error_line(result, f"cannot write in {link}: it is a symlink")
    out = tmp_path / "tb"
    (out).mkdir()
    (out / run.name).symlink_to(elsewhere)  # the run's own folder inside --out
    result = cli.invoke(app, ["export", "tensorboard", str(run), "--out", str(out)])
    _one_error_line(result, f"cannot write in {out / run.name}: it is a symlink")
    assert _tree(elsewhere) == {"report.md": b"mine"}


def test_files_of_the_users_in_out_are_never_replaced(tmp_path: Path) -> None:
    """report and plot regenerate their own files in --out, and nothing else."""
    fake_run(tmp_path / "runs", RELU, 0, 0.98)
    fake_run(tmp_path / "runs", RELU, 1, 0.97)
    out = tmp_path / "out"
    result = cli.invoke(app, ["report", str(tmp_path / "runs"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    first = _tree(out)
    assert "report.md" in first and "curves.png" in first
    again = cli.invoke(app, ["report", str(tmp_path / "runs"), "--out", str(out)])
    assert again.exit_code == 0, again.output  # its own files: regenerated in place
    assert set(_tree(out)) == set(first)
    for name, mine in (("report.md", b"# my notes\n"), ("curves.png", b"\x89PNG\r\n\x1a\nmine")):
        theirs = tmp_path / name
        theirs.mkdir()
        (theirs / name).write_bytes(mine)
        for command in ("report", "plot"):
            if command == "plot" and name == "report.md":
                continue  # plot writes no report.md
            result = cli.invoke(app, [command, str(tmp_path / "runs"), "--out", str(theirs)])
            _one_error_line(
                result,
                f"--out {theirs}: {name} there was not written by actbench and is never replaced",
            )
        assert _tree(theirs) == {name: mine}


def test_a_linked_folder_inside_is_not_followed(tmp_path: Path) -> None:
    fake_run(tmp_path / "runs", RELU, 0, 0.98)
    fake_run(tmp_path / "other", RELU, 1, 0.97)
    (tmp_path / "runs" / "more").symlink_to(tmp_path / "other")
    found, warnings = rundir.collect([tmp_path / "runs"])
    assert [r.summary.seed for r in found] == [0]
    assert warnings == [f"skipping {tmp_path / 'runs' / 'more'}: a link to a folder (give its "
                        "target instead)"]  # fmt: skip


def test_a_report_on_tune_trials_says_where_to_look(tmp_path: Path) -> None:
    tune = REPO / "results" / "fair" / "mnist-lenet" / "tune"
    trial = tune / "relu-lenet-mnist-t000-s1000"
    evaluation = tune.parent / "eval"
    for paths in ([trial], [tune, evaluation]):
        result = cli.invoke(app, ["report", *map(str, paths), "--out", str(tmp_path / "o")])
        _one_error_line(result, "never read the test set", "report their tune folder")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("edit", "needle"),
    [("space: [1, 2]", "space: a mapping of config keys"), ("objective: [1]", "objective")],
)
def test_a_tune_file_of_the_wrong_shape_gives_one_line(
    tmp_path: Path, edit: str, needle: str
) -> None:
    import shutil

    tune = tmp_path / "tune"
    shipped = REPO / "results" / "fair" / "mnist-lenet" / "tune"
    trial = "relu-lenet-mnist-t000-s1000"
    shutil.copytree(shipped / trial, tune / trial)
    spec = yaml.safe_load((shipped / "tune.yaml").read_text())
    spec.update(yaml.safe_load(edit))
    (tune / "tune.yaml").write_text(yaml.safe_dump(spec))
    result = cli.invoke(app, ["report", str(tune), "--out", str(tmp_path / "o")])
    _one_error_line(result, str(tune / "tune.yaml"), needle)


def test_features_that_are_not_numbers_are_damaged(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "features2d.npz"
    np.savez(path, pre=np.array([["a", "b"]]), post=np.zeros((1, 2)), labels=np.zeros(1))
    with pytest.raises(ValueError, match="not real numbers"):
        rundir.read_features(path)


def test_a_damaged_features_file_is_a_warning_in_plot(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "runs", RELU, 0, 0.98)
    fake_run(tmp_path / "runs", RELU, 1, 0.97)
    (run / "features2d.npz").write_bytes(b"not a zip")
    for command in ("plot", "report"):
        out = tmp_path / command
        result = cli.invoke(app, [command, str(tmp_path / "runs"), "--out", str(out)])
        assert result.exit_code == 0, result.output
        (warning,) = result.stderr.splitlines()
        assert warning.startswith(f"warning: skipping {run}/features2d.npz: damaged (")
        assert (out / "curves.png").exists() and not (out / "features2d.png").exists()


def test_runs_with_params_the_label_rounds_stay_apart(tmp_path: Path) -> None:
    for init in (0.2500001, 0.2500002):
        fake_run(tmp_path / str(init), PRELU | {"init": init}, 0, 0.98)
    found, _ = rundir.collect([tmp_path])
    g = compare.grouping(found)
    assert len(g.groups) == 2 and "activation.init" in g.keys


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: " + "1" * 5000 + "\n", "not a usable config"),
        ("seed: " + "[" * 3000 + "\n", "not a usable config (nested too deeply)"),
    ],
)
def test_absurd_configs_give_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    _one_error_line(cli.invoke(app, ["train", "-c", str(path)]), message)


@pytest.mark.parametrize(
    ("spec", "sets", "message"),
    [
        ("base: 5\n", [], "base must be a config's path or name"),
        ("axes:\n  1: [a]\n", [], "axis 1 is not allowed"),
        ("axes:\n  seed.x: [1]\n", [], "axis 'seed.x' is not allowed"),
        ("axes:\n  optim.lr: [0.1, 0.2]\n", ["optim.lr=0.05"], "overlaps the sweep axis"),
        ("axes:\n  train.device: [cpu, auto]\n", [], "runs share a fingerprint"),  # where only
    ],
)
def test_sweep_files_that_cannot_mean_what_they_say(
    tmp_path: Path, spec: str, sets: list[str], message: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nbase: relu.yaml\nseeds: 1\n" + spec)
    args = ["sweep", "-c", str(path), "--runs-dir", str(tmp_path / "r"), "--dry-run"]
    args += [a for s in sets for a in ("--set", s)]
    _one_error_line(cli.invoke(app, args), message)


def test_sweep_data_dir_is_a_path_not_yaml(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nbase: relu.yaml\nseeds: 1\n")
    odd = tmp_path / "dd #2"
    result = cli.invoke(
        app, ["sweep", "-c", str(spec), "--runs-dir", str(tmp_path), "--data-dir", str(odd)]
    )
    assert f"mnist not found: {odd / 'MNIST' / 'raw'}" in result.stdout


@pytest.mark.parametrize("epoch", [-2, 10**6, float("inf")])
def test_checkpoint_epochs_out_of_range_are_refused(tmp_path: Path, epoch: float) -> None:
    import torch

    from actbench import calibrate
    from actbench.train import Trainer

    if DATA_ROOT is None:
        pytest.skip("real MNIST not found")
    cfg = calibrate.resolve(
        config.from_mapping({"data": {"root": str(DATA_ROOT), "train_subset": 100}})
    )
    trainer = Trainer(cfg)
    state = trainer.state_dict()
    state["epoch"] = epoch
    with pytest.raises(ActbenchError, match="checkpoint does not fit"):
        trainer.load_state_dict(state)
    assert trainer.epoch == 0 and torch.is_tensor(state["torch_rng"])


def test_too_long_generated_name_is_named_before_data(tmp_path: Path) -> None:
    result = cli.invoke(
        app, ["train", "-c", "prelu", "--set", "name=" + "a" * 75, "--runs-dir", str(tmp_path),
              "--data-dir", str(tmp_path / "nodata")],
    )  # fmt: skip
    _one_error_line(result, "would be", "shorten name: (the prefix) or give --name")
