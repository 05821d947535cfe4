"""effnet train / eval / finetune from the command line: a tiny end-to-end run and bad input."""
import json

import pytest

from effnet.cli import main
from train_helpers import TINY_JSON, one_torch_thread

FAST = ["--data", "synthetic", "--limit-per-class", "8", "--img-size", "32", "--epochs", "1", "--batch-size", "8",
        "--threads", "1", "--no-progress", "--set", "tensorboard=false"]


one_thread = pytest.fixture(autouse=True)(one_torch_thread)


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_JSON))
    return str(path)


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"effnet {command}: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_train_eval_and_finetune_from_the_command_line(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", tiny, *FAST, "--out", str(run), "--set", "warmup_epochs=0.5"]) == 0
    out = capsys.readouterr().out
    assert "test top-1" in out and (run / "best.safetensors").is_file()
    assert json.loads((run / "config.json").read_text())["warmup_epochs"] == 0.5

    assert main(["eval", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["split"] == "test" and len(metrics["confusion"]) == 3 and 0 <= metrics["top1"] <= 1
    assert main(["eval", str(run / "best.safetensors"), "--data", "synthetic", "--split", "val"]) == 0
    assert "top-1" in capsys.readouterr().out

    ft = tmp_path / "ft"
    assert main(["finetune", str(run / "best.safetensors"), *FAST, "--freeze-stages", "1", "--in-chans", "1",
                 "--out", str(ft)]) == 0
    cfg = json.loads((ft / "config.json").read_text())
    assert cfg["freeze_stages"] == 1 and cfg["in_chans"] == 1 and cfg["pretrained"].endswith("best.safetensors")

    # resume a finished run: nothing left to train, same summary
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0


@pytest.mark.parametrize("argv, command, message", [
    (["train", "--data", "/no/such/folder", "--epochs", "1"], "train", "data source not found"),
    (["train", "--data", "synthetic", "--set", "nonsense=1"], "train", "unknown config key"),
    (["train", "--data", "synthetic", "--set", "epochs=many"], "train", "epochs must be an integer"),
    (["train", "--epochs", "1"], "train", "--data is required"),
    (["train", "--resume", "/no/such/run"], "train", "not a run dir"),
    (["train", "--model", "efficientnet_b99", "--data", "synthetic"], "train", "efficientnet_b99"),
    (["eval", "/no/such/checkpoint.safetensors", "--data", "synthetic"], "eval", "checkpoint not found"),
    (["finetune", "not_a_model_or_file", "--data", "synthetic"], "finetune", "neither a checkpoint"),
])
def test_bad_input_is_one_line_error_with_exit_2(argv, command, message, capsys):
    assert main(argv) == 2
    assert message in one_line_error(capsys, command)


def test_wrong_checkpoint_file_is_a_one_line_error(tmp_path, tiny, capsys):
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"this is not a checkpoint")
    assert main(["eval", str(fake), "--data", "synthetic"]) == 2
    one_line_error(capsys, "eval")
    assert main(["eval", tiny, "--data", "synthetic"]) == 2
    one_line_error(capsys, "eval")
    assert main(["train", "--model", tiny, *FAST, "--pretrained", str(fake), "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys, "train")
