"""`mnistd train`, the exercise from the command line, run as a user runs
it: the two recipes print ten periods and reach the exercise's accuracy;
--json has the README's fields and, for the same seed, the same numbers as
the same run through POST /runs; every bad flag exits 2 with a one-line
reason; a CSV path and an IDX path work as --dataset. Also the command
line around it: no command prints the usage, and `mnistd serve` has its
--help, exits 2 on a bad flag, 1 when it cannot open its database or
listen."""
import json
import re
import socket
import subprocess

import pytest

from conftest import REPO, api, require_bin, time_scale

TRAIN_C = REPO / "server" / "cmd" / "train.c"
# the CLI prints reals with JSON_REAL_PRECISION(10) (train.c's print_json)
CLI_DIGITS = 10


def train(data_dir, *args, timeout=120):
    """Runs `mnistd train --data-dir <data_dir> *args`; returns the
    CompletedProcess (text stdout and stderr). The timeout stretches with
    time_scale() (the dnn recipe ran past 120 s on the loaded coverage build)."""
    cmd = [str(require_bin()), "train", "--data-dir", str(data_dir), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout * time_scale(),
                          stdin=subprocess.DEVNULL)


def train_json(data_dir, *args):
    """`mnistd train ... --json`, which must exit 0; its parsed object."""
    out = train(data_dir, *args, "--json")
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr}"
    return json.loads(out.stdout)


def table_flags():
    """The flags of train.c's train_flags table (--model, --steps, ...)."""
    text = TRAIN_C.read_text()
    table = re.search(r"train_flags\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    assert table, "no train_flags table in server/cmd/train.c"
    flags = re.findall(r'\{\s*"(--[a-z-]+)"\s*,', table.group(1))
    assert flags, "no flags parsed from train_flags"
    return flags


# ------------------------------------------------------------ the recipes

ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


@pytest.mark.parametrize("model,least", [("linear", 0.89), ("dnn", 0.94)])
def test_recipe_prints_ten_periods_and_reaches_its_accuracy(data_dir, model, least):
    # the thresholds of test_accuracy.py: linear ~0.90, dnn ~0.95
    out = train(data_dir, "--model", model, "--seed", 1)
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr}"
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert lines[0] == f"Training {model} model..."
    assert lines[1].split() == ["period", "step", "train_log_loss", "validation_log_loss",
                                "validation_accuracy", "seconds"]
    rows = [ROW.match(line) for line in lines[2:12]]
    assert all(rows), out.stdout
    assert [int(r.group(1)) for r in rows] == list(range(1, 11))
    assert [int(r.group(2)) for r in rows] == list(range(100, 1001, 100))
    train_loss = [float(r.group(3)) for r in rows]
    assert train_loss[-1] < train_loss[0], out.stdout
    assert lines[12] == "Model training finished."
    acc = re.fullmatch(r"Final accuracy \(on validation data\): ([\d.]+)", lines[13])
    loss = re.fullmatch(r"Final log loss \(on validation data\): ([\d.]+)", lines[14])
    assert acc and loss, out.stdout
    assert float(acc.group(1)) >= least, out.stdout
    assert float(acc.group(1)) == float(rows[-1].group(5))  # the last period's
    # the row-normalised confusion matrix: a header of labels, ten rows summing to 1
    assert lines[15].startswith("Confusion matrix")
    assert lines[16].split() == [str(i) for i in range(10)]
    matrix = [line.split() for line in lines[17:27]]
    assert [int(r[0]) for r in matrix] == list(range(10)) and len(lines) == 27
    for r in matrix:
        assert len(r) == 11 and abs(sum(map(float, r[1:])) - 1) < 0.01, r


# ------------------------------------------------------------ --json


SMALL = ("--model", "dnn", "--hidden-units", "32,16", "--steps", 60, "--periods", 3,
         "--seed", 5)


def test_json_has_the_documented_fields(data_dir):
    o = train_json(data_dir, *SMALL)
    # README: params, periods, validation_accuracy and validation_log_loss
    # named as in the HTTP run object, confusion as GET /runs/<id>/confusion
    assert set(o) == {"params", "periods", "validation_accuracy", "validation_log_loss",
                      "confusion"}
    a = api()
    a.check(o["params"], a.schema("RunParams"))
    assert o["params"] == {"model": "dnn", "hidden_units": [32, 16], "dropout": 0.0,
                           "optimizer": "adagrad", "learning_rate": 0.05, "clip_norm": 5.0,
                           "steps": 60, "batch_size": 30, "periods": 3, "dataset": "mnist",
                           "examples": 10000, "validation_examples": 2500, "seed": 5}
    for p in o["periods"]:
        a.check(p, a.schema("Period"))
    assert [(p["period"], p["step"]) for p in o["periods"]] == [(1, 20), (2, 40), (3, 60)]
    a.check(o["confusion"], a.schema("Confusion"))
    assert o["confusion"]["set"] == "validation"
    assert sum(map(sum, o["confusion"]["counts"])) == 2500
    assert o["validation_accuracy"] == o["periods"][-1]["validation_accuracy"]
    assert o["validation_accuracy"] == o["confusion"]["accuracy"]
    assert o["validation_log_loss"] == o["periods"][-1]["validation_log_loss"]


def _digits(x):
    """x as the CLI prints it: CLI_DIGITS significant digits."""
    return None if x is None else float(f"{x:.{CLI_DIGITS}g}")


@pytest.mark.parametrize("spec", [
    {"model": "linear", "steps": 200, "periods": 4, "seed": 3},
    {"model": "dnn", "hidden_units": [32], "dropout": 0.2, "optimizer": "adam",
     "learning_rate": 0.003, "batch_size": 20, "steps": 150, "periods": 3, "seed": 11,
     "examples": 3000, "validation_examples": 600},
], ids=["linear", "dnn-adam-dropout"])
def test_json_matches_the_same_run_over_http(client, data_dir, spec):
    """Same seed, same numbers. The server keeps full doubles; the CLI
    prints 10 significant digits, so each HTTP number is compared once
    rounded to those digits: exactly equal, no other tolerance (the same
    engine runs the same steps in the same order either way)."""
    args = []
    for field, value in spec.items():
        args += ["--" + field.replace("_", "-"),
                 ",".join(map(str, value)) if isinstance(value, list) else value]
    cli = train_json(data_dir, *args)
    run = client.train(spec)
    assert cli["params"] == run["params"]
    assert len(cli["periods"]) == len(run["periods"]) == spec["periods"]
    for c, h in zip(cli["periods"], run["periods"]):
        assert (c["period"], c["step"]) == (h["period"], h["step"])
        for k in ("train_log_loss", "validation_log_loss", "validation_accuracy"):
            assert c[k] == _digits(h[k]), (c["period"], k, c[k], h[k])
    for k in ("validation_accuracy", "validation_log_loss"):
        assert cli[k] == _digits(run[k]), (k, cli[k], run[k])
    confusion = api().validate(client.get(f"/runs/{run['id']}/confusion"),
                               "/runs/{id}/confusion", "get", 200)
    assert cli["confusion"]["counts"] == confusion["counts"]
    assert cli["confusion"]["accuracy"] == _digits(confusion["accuracy"])


# ------------------------------------------------------------ bad flags

# a bad value for every flag of train.c's table: (flag, value, words)
BAD_VALUES = [
    ("--model", "rnn", ["model"]),
    ("--hidden-units", "100,,100", ["--hidden-units", "100,,100"]),
    ("--conv-layers", "[{", ["--conv-layers", "[{"]),
    ("--dropout", "half", ["--dropout", "half"]),
    ("--optimizer", "adamw", ["optimizer"]),
    ("--learning-rate", "0", ["learning_rate"]),
    ("--clip-norm", "-1", ["clip_norm"]),
    ("--steps", "1.5", ["--steps", "1.5"]),
    ("--batch-size", "0", ["batch_size"]),
    ("--periods", "ten", ["--periods", "ten"]),
    ("--examples", "70000", ["examples", "60000"]),
    ("--validation-examples", "10000", ["validation_examples"]),
    ("--seed", "-1", ["seed"]),
]

BAD_ARGS = [
    # id, arguments after --data-dir, words in the message
    ("unknown-flag", ["--model", "linear", "--epochs", "3"], ["unknown flag", "--epochs"]),
    ("unknown-flag-last", ["--model", "linear", "--verbose"], ["unknown flag", "--verbose"]),
    ("unknown-flag-no-value", ["--model", "linear", "--verbose"], ["--verbose"]),
    ("missing-value", ["--model", "linear", "--steps"], ["--steps", "needs a value"]),
    ("missing-model", ["--steps", "10"], ["model"]),
    ("stray-argument", ["--model", "linear", "dnn"], ["unexpected argument", "dnn"]),
    ("stray-after-json", ["--model", "linear", "--json", "1"], ["unexpected argument", "1"]),
    ("unknown-dataset", ["--model", "linear", "--dataset", "fashion"],
     ["--dataset", "fashion", "mnist-test"]),
    ("dropout-for-linear", ["--model", "linear", "--dropout", "0.5"], ["dropout", "dnn"]),
    ("periods-over-steps", ["--model", "linear", "--steps", "5", "--periods", "6"],
     ["periods", "steps"]),
] + [(f"bad{flag}", ["--model", "dnn", flag, value], words)
     for flag, value, words in BAD_VALUES]


def test_every_flag_of_the_table_has_a_bad_value_case():
    assert sorted(f for f, _, _ in BAD_VALUES) == sorted(table_flags())


@pytest.mark.parametrize("args,words", [c[1:] for c in BAD_ARGS], ids=[c[0] for c in BAD_ARGS])
def test_bad_flags_exit_2_with_a_one_line_reason(data_dir, args, words):
    out = train(data_dir, *args)
    assert out.returncode == 2, f"exit {out.returncode}: {out.stderr}{out.stdout[:300]}"
    assert out.stdout == ""
    assert out.stderr.endswith("\n") and out.stderr.count("\n") == 1, repr(out.stderr)
    assert out.stderr.startswith("mnistd train: "), out.stderr
    for w in words:
        assert w in out.stderr, f"{w!r} not in {out.stderr!r}"


def test_help_exits_0(data_dir):
    out = train(data_dir, "--help")
    assert out.returncode == 0 and out.stdout.startswith("usage: mnistd train")
    for flag in table_flags() + ["--dataset", "--data-dir", "--json"]:
        assert flag in out.stdout, flag


# ------------------------------------------------------------ --dataset paths


def test_csv_path_as_dataset(data_dir, mnist, tmp_path):
    path = tmp_path / "digits.csv"
    path.write_text(mnist.csv("train", 400))
    o = train_json(data_dir, "--model", "linear", "--steps", 40, "--periods", 2, "--seed", 2,
                   "--dataset", path)
    # a dataset smaller than the default head trains whole, a quarter validating
    assert o["params"]["dataset"] == str(path)
    assert (o["params"]["examples"], o["params"]["validation_examples"]) == (400, 100)
    assert sum(map(sum, o["confusion"]["counts"])) == 100
    assert [p["step"] for p in o["periods"]] == [20, 40]
    assert o["validation_accuracy"] > 0.5, o["periods"]


def test_idx_path_as_dataset_is_the_built_in_one(data_dir):
    """The t10k images file by path (its labels file found beside it) gives
    the same run as the built-in name mnist-test."""
    args = ("--model", "linear", "--steps", 40, "--periods", 2, "--seed", 4)
    path = data_dir / "mnist" / "t10k-images-idx3-ubyte"
    if not path.exists():
        path = path.with_name(path.name + ".gz")
    by_path = train_json(data_dir, *args, "--dataset", path)
    by_name = train_json(data_dir, *args, "--dataset", "mnist-test")
    assert by_path["params"]["dataset"] == str(path)
    assert by_path["params"]["examples"] == 10000
    by_path["params"]["dataset"] = "mnist-test"
    assert by_path["params"] == by_name["params"]
    for o in (by_path, by_name):
        for p in o["periods"]:
            p.pop("seconds")
    assert by_path["periods"] == by_name["periods"]
    assert by_path["confusion"] == by_name["confusion"]


def test_missing_dataset_file_exits_1(data_dir, tmp_path):
    """A path that cannot be read is not a usage error: exit 1, the reason
    on stderr."""
    path = tmp_path / "none.csv"
    out = train(data_dir, "--model", "linear", "--dataset", path)
    assert out.returncode == 1, out.stderr
    assert str(path) in out.stderr and out.stdout == ""


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["--help"]])
def test_no_command_exits_2_with_the_usage(args):
    out = subprocess.run([str(require_bin()), *args], capture_output=True, text=True,
                         timeout=30 * time_scale(), stdin=subprocess.DEVNULL)
    assert out.returncode == 2, out
    assert out.stdout == ""
    assert out.stderr.startswith("usage: mnistd train [flags] | mnistd serve [flags] | "
                                 "mnistd users SUBCOMMAND\n"), out.stderr


def serve(*args, timeout=30):
    """Runs `mnistd serve *args` (which must end by itself); returns the
    CompletedProcess (text stdout and stderr)."""
    return subprocess.run([str(require_bin()), "serve", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout * time_scale(),
                          stdin=subprocess.DEVNULL)


def test_serve_help_lists_every_flag_and_exits_0():
    out = serve("--help")
    assert out.returncode == 0, out
    assert out.stdout.startswith("usage: mnistd serve"), out.stdout
    for flag in ("--port", "--host", "--db", "--data-dir", "--workers", "--token"):
        assert f"[{flag} " in out.stdout, (flag, out.stdout)


@pytest.mark.parametrize("args, words", [
    (["--port"], "--port needs a value"),
    (["--frobnicate", "1"], "unknown flag --frobnicate"),
    (["--port", "70000"], "--port must be an integer in 0..65535"),
    (["--workers", "-1"], "--workers must be an integer in"),
    (["--workers", "x"], "--workers must be an integer in"),
])
def test_serve_bad_flags_exit_2_with_a_one_line_reason(args, words):
    out = serve(*args)
    assert out.returncode == 2, out
    assert words in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr


def test_serve_without_a_database_exits_1(tmp_path):
    out = serve("--port", "0", "--db", tmp_path / "no-such-dir" / "x.db",
                "--data-dir", tmp_path)
    assert out.returncode == 1, out
    assert "no-such-dir" in out.stderr, out.stderr


def test_serve_on_a_port_in_use_exits_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = serve("--port", port, "--db", tmp_path / "x.db", "--data-dir", tmp_path)
    assert out.returncode == 1, out
    assert out.stderr.strip().splitlines()[-1].startswith("mnistd serve: "), out.stderr
