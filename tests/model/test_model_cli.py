"""The three scripts run for real, as `make` runs them, against temporary serving folders.

Bad input must give one line on stderr, a non-zero exit, no traceback, and leave the serving folder
exactly as it was (no version, no staging directory, no newly created folders).
"""

from __future__ import annotations

import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from tests.model.model_helpers import COMMANDS, command_argv, error_lines, run_command, tree


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = run_command(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")


# ---- bad input to tfstack-export-model (rejected before TensorFlow starts, so these are fast) ----


@pytest.fixture
def serving_dir(tmp_path: Path) -> Path:
    """A serving folder that already holds a published version, to prove failures do not touch it."""
    version = tmp_path / "serving_model" / "digits" / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_text("existing")
    return tmp_path / "serving_model"


def test_missing_model_file(tmp_path: Path, serving_dir: Path) -> None:
    before = tree(serving_dir)
    result = run_command("tfstack-export-model", tmp_path / "nope.keras", "--serving-dir", serving_dir)
    assert_one_line_error(result, "model file not found", "nope.keras")
    assert tree(serving_dir) == before


def make_zip_without_config(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("weights.bin", b"\0" * 16)


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        ("digits.keras", "this is text, not a model", "not a Keras model file"),
        ("digits.h5", "HDF5 or not, Keras 3 exports need .keras", "expected a .keras file"),
        ("digits.keras", None, "no config.json"),
    ],
)
def test_non_keras_model_file(
    tmp_path: Path, serving_dir: Path, file_name: str, content: str | None, message: str
) -> None:
    model_file = tmp_path / file_name
    if content is None:
        make_zip_without_config(model_file)
    else:
        model_file.write_text(content)
    before = tree(serving_dir)
    result = run_command("tfstack-export-model", model_file, "--name", "digits", "--serving-dir", serving_dir)
    assert_one_line_error(result, message)
    assert tree(serving_dir) == before


@pytest.mark.parametrize("case", ["folder_is_a_file", "folder_below_a_file", "read_only_filesystem"])
def test_unwritable_output_folder(tmp_path: Path, digits_keras: Path, case: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    # /sys refuses mkdir even for root, unlike a chmod'ed folder (root ignores permission bits).
    target = {
        "folder_is_a_file": blocker,
        "folder_below_a_file": blocker / "serving_model",
        "read_only_filesystem": Path("/sys/tfserving-stack-test/serving_model"),
    }[case]
    result = run_command("tfstack-export-model", digits_keras, "--serving-dir", target)
    assert_one_line_error(result, "output folder")
    assert tree(tmp_path) == ["blocker"]
    assert not Path("/sys/tfserving-stack-test").exists()


def test_existing_version_is_not_overwritten(digits_keras: Path, serving_dir: Path) -> None:
    before = tree(serving_dir)
    result = run_command("tfstack-export-model", digits_keras, "--version", "1", "--serving-dir", serving_dir)
    assert_one_line_error(result, "version 1 already exists", "--force")
    assert tree(serving_dir) == before
    assert (serving_dir / "digits" / "1" / "saved_model.pb").read_text() == "existing"


@pytest.mark.parametrize("version", ["abc", "1.5", "0", "-2", "2x"])
def test_non_integer_version(digits_keras: Path, serving_dir: Path, version: str) -> None:
    before = tree(serving_dir)
    result = run_command(
        "tfstack-export-model", digits_keras, f"--version={version}", "--serving-dir", serving_dir
    )
    assert_one_line_error(result, "--version")
    assert tree(serving_dir) == before


@pytest.mark.parametrize("version", ["abc", "1", "0"])
def test_half_plus_two_bad_or_existing_version(tmp_path: Path, version: str) -> None:
    (tmp_path / "half_plus_two" / "1").mkdir(parents=True)
    before = tree(tmp_path)
    result = run_command("tfstack-half-plus-two", f"--version={version}", "--serving-dir", tmp_path)
    assert_one_line_error(result, "version")
    assert tree(tmp_path) == before


def test_training_rejects_a_non_keras_output_name(tmp_path: Path) -> None:
    result = run_command("tfstack-train-digits", "--output", tmp_path / "digits.h5")
    assert_one_line_error(result, ".keras")
    assert tree(tmp_path) == []


# ---- failures after TensorFlow has started (slower: each run starts TensorFlow) ----


def save_keras_model(path: Path, kind: str) -> Path:
    import keras

    if kind == "not_an_image_model":
        inputs = keras.Input(shape=(64,))
        outputs = keras.layers.Dense(10, activation="softmax")(inputs)
    else:  # an image model whose output is per-pixel: the export is written, then fails verification
        inputs = keras.Input(shape=(8, 8, 1))
        outputs = keras.layers.Conv2D(10, 3, padding="same", activation="softmax")(inputs)
    keras.Model(inputs, outputs).save(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["not_an_image_model", "fails_verification"])
def test_failed_export_leaves_nothing(tmp_path: Path, serving_dir: Path, kind: str) -> None:
    model_file = save_keras_model(tmp_path / f"{kind}.keras", kind)
    before = tree(serving_dir)
    result = run_command("tfstack-export-model", model_file, "--name", "digits", "--serving-dir", serving_dir)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr)[-1].startswith("tfstack-export-model: error:")
    assert tree(serving_dir) == before


@pytest.mark.slow
def test_versions_count_up_and_force_replaces(tmp_path: Path) -> None:
    root = tmp_path / "half_plus_two"
    (root / "3").mkdir(parents=True)  # an empty stand-in for an earlier version
    (root / "3" / "placeholder").write_text("old")
    (root / "7.partial").mkdir()  # not a version for TF Serving, so not for the numbering either
    result = run_command("tfstack-half-plus-two", "--serving-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "version 4" in result.stdout
    result = run_command("tfstack-half-plus-two", "--serving-dir", tmp_path, "--version", "3", "--force")
    assert result.returncode == 0, result.stderr
    assert sorted(entry.name for entry in root.iterdir()) == ["3", "4", "7.partial"]
    for version in ("3", "4"):
        assert (root / version / "saved_model.pb").is_file()
    assert not (root / "3" / "placeholder").exists()


@pytest.mark.slow
def test_export_force_replaces_a_digits_version(digits_keras: Path, serving_dir: Path) -> None:
    result = run_command(
        "tfstack-export-model", digits_keras, "--version", "1", "--force", "--serving-dir", serving_dir
    )
    assert result.returncode == 0, result.stderr
    assert "replacing" in result.stdout
    root = serving_dir / "digits"
    assert [entry.name for entry in root.iterdir()] == ["1"]
    assert (root / "1" / "saved_model.pb").stat().st_size > 1000  # the real SavedModel, not the stub
    assert (root / "1" / "assets.extra" / "tf_serving_warmup_requests").is_file()


def version_is_complete(version_dir: Path) -> bool:
    return all(
        (version_dir / part).is_file()
        for part in ("saved_model.pb", "variables/variables.index", "assets.extra/tf_serving_warmup_requests")
    )


def start_export(digits_keras: Path, serving_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command_argv("tfstack-export-model", digits_keras, "--name", "digits", "--serving-dir", serving_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_no_numeric_directory_appears_before_the_export_is_complete(
    tmp_path: Path, digits_keras: Path
) -> None:
    """Watch the folder the way TF Serving's poller does, but much more often than once a second."""
    root = tmp_path / "digits"
    process = start_export(digits_keras, tmp_path)
    seen_staging = False
    while True:
        finished = process.poll() is not None
        entries = list(root.iterdir()) if root.is_dir() else []
        for entry in entries:
            if entry.name.isdigit():
                assert version_is_complete(entry), f"{entry} visible while incomplete"
            elif entry.name.startswith(".staging-"):
                seen_staging = True
        if finished:
            break
        time.sleep(0.005)
    _, stderr = process.communicate()
    assert process.returncode == 0, stderr
    assert seen_staging, "the export never used a staging directory"
    assert [entry.name for entry in root.iterdir()] == ["1"]


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_export_leaves_nothing(tmp_path: Path, digits_keras: Path, signal_number: int) -> None:
    root = tmp_path / "digits"
    process = start_export(digits_keras, tmp_path)
    deadline = time.monotonic() + 120
    while not (root.is_dir() and any(e.name.startswith(".staging-") for e in root.iterdir())):
        assert process.poll() is None, "export ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "Traceback" not in stderr, "\n".join(error_lines(stderr))
    assert "interrupted" in error_lines(stderr)[-1]
    assert tree(tmp_path) == []


# ---- training ----


@pytest.mark.slow
def test_training_is_accurate_and_reproducible(tmp_path: Path) -> None:
    """Two full training runs: >= 0.97 held-out accuracy each, agreeing within 1%. Times are printed."""
    accuracies = []
    for run in ("first", "second"):
        output = tmp_path / run / "digits.keras"
        result = run_command("tfstack-train-digits", "--output", output)
        assert result.returncode == 0, result.stderr
        assert "Epoch 1/" in result.stdout  # progress is shown
        assert output.is_file()
        lines = result.stdout.splitlines()
        accuracy_line = next(line for line in lines if line.startswith("held-out accuracy"))
        time_line = next(line for line in lines if line.startswith("training time"))
        print(f"{run} run: {accuracy_line}; {time_line}")
        accuracies.append(float(accuracy_line.split()[2]))
    assert min(accuracies) >= 0.97
    assert abs(accuracies[0] - accuracies[1]) <= 0.01


@pytest.mark.slow
def test_training_below_the_accuracy_floor_saves_nothing(tmp_path: Path) -> None:
    output = tmp_path / "digits.keras"
    result = run_command(
        "tfstack-train-digits", "--output", output, "--epochs", "1", "--min-accuracy", "1.01", "--quiet"
    )
    assert_one_line_error(result, "below --min-accuracy", "not saved")
    assert tree(tmp_path) == []
