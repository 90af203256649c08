"""Prediction on a real Dask cluster: a `dask scheduler` and `dask worker` processes started
here on localhost predict an OME-Zarr image and a folder of slices; the result equals the
single-process prediction, survives a killed worker, and --resume after a killed command
runs only the missing blocks. Slow (TensorFlow starts in every worker): --runslow."""

import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from deepscem import cli
from deepscem.config import PredictConfig
from deepscem.errors import ConfigError
from deepscem.inference.distributed import parse_cluster
from deepscem.inference.predictor import predict_volume

keras = pytest.importorskip("keras")
zarr = pytest.importorskip("zarr")
pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (12, 40, 48)
# 2D model: 6 x 3 x 3 blocks. Keras engine, as the reference: "auto" may pick OpenVINO in
# bfloat16 on a CPU with bf16 instructions (differences ~5e-4). 32 px tiles: a 16 px tile
# of this model keeps a 1 px step between tiles (800 tiles per block).
PATCH = ["--patch", "1", "32", "32", "--block", "2", "16", "16", "--engine", "keras"]


def _env(**extra: str) -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
                CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", **extra)


def start_worker(scheduler_file: Path, name: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
         str(scheduler_file), "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", name],
        # 0.1 s per block (progress.check's test hook): runs last long enough to be killed
        env=_env(DEEPSCEM_TEST_UNIT_DELAY="0.1"), cwd=str(ROOT), stdout=log.open("w"),
        stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two workers (1 thread each, no nanny: a killed worker stays dead)."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("cluster")
    scheduler_file = folder / "scheduler.json"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file",
         str(scheduler_file), "--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
        env=_env(), cwd=str(ROOT), stdout=(folder / "scheduler.log").open("w"),
        stderr=subprocess.STDOUT)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        procs += [start_worker(scheduler_file, f"w{i}", folder / f"w{i}.log") for i in range(2)]
        with Client(scheduler_file=str(scheduler_file), timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        yield {"address": address, "file": scheduler_file, "folder": folder}
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny 2D model, an OME-Zarr image (written by ome-zarr-py) and a slice folder."""
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image
    from synthetic_data import synthetic_volume
    from training_data import tiny_unet

    from deepscem.models.storage import save_model

    folder = tmp_path_factory.mktemp("inputs")
    model, info = tiny_unet(dim=2, outputs=1, depth=2, filters=2)
    model_path = save_model(model, folder / "tiny.keras", info)
    image, _ = synthetic_volume(SHAPE, seed=4)
    root = zarr.open_group(str(folder / "cells.ome.zarr"), mode="w", zarr_format=2)
    write_image(image, root, axes="zyx", fmt=FormatV04(), scale_factors=[],
                storage_options={"chunks": (4, 16, 16)})
    slices = folder / "slices"
    slices.mkdir()
    for z in range(SHAPE[0]):
        tifffile.imwrite(slices / f"z{z}.tif", image[z])
    norm = (image.astype(np.float32) - image.min()) / np.float32(image.max() - image.min())
    reference = {}
    for threshold in (None, 0.5):
        out = np.zeros(SHAPE, np.float32 if threshold is None else np.uint8)
        predict_volume(model, norm, [out], PredictConfig(patch=(1, 32, 32), threshold=threshold),
                       info=info)
        reference[threshold] = out
    return {"model": model_path, "ome": folder / "cells.ome.zarr", "slices": slices,
            "image": image, "reference": reference}


def read_output(path: Path, threshold) -> np.ndarray:
    root = zarr.open_group(str(path), mode="r")
    group = "labels" if threshold is not None else "predictions"
    name = root.attrs["deepscem"]["names"][0]
    return root[group][name]["0"][:]


def test_cluster_spellings():
    assert parse_cluster("local:2") == ("local", 2)
    assert parse_cluster("tcp://127.0.0.1:8786") == ("address", "tcp://127.0.0.1:8786")
    assert parse_cluster("slurm:4") == ("slurm", 4)
    for bad in ("local", "local:0", "spark:3", "127.0.0.1:8786"):
        with pytest.raises(ConfigError, match="local:N"):
            parse_cluster(bad)


@pytest.mark.slow  # starts 3-4 Python processes with TensorFlow: ~1-3 min on a shared machine
def test_two_workers_equal_one_process(cluster, inputs, tmp_path):
    """OME-Zarr in, floats out; slice folder in, masks out: both as in one process."""
    floats = tmp_path / "floats.ome.zarr"
    assert cli.main(["predict", str(inputs["model"]), str(inputs["ome"]), str(floats), *PATCH,
                     "--cluster", cluster["address"]]) == 0
    diff = np.abs(read_output(floats, None) - inputs["reference"][None]).max()
    assert diff <= 1e-5
    masks = tmp_path / "masks.ome.zarr"
    assert cli.main(["predict", str(inputs["model"]), str(inputs["slices"]), str(masks), *PATCH,
                     "--threshold", "0.5", "--cluster", cluster["address"]]) == 0
    np.testing.assert_array_equal(read_output(masks, 0.5), inputs["reference"][0.5])
    np.testing.assert_array_equal(zarr.open_group(str(masks), mode="r")["0"][:], inputs["image"])


@pytest.mark.slow  # starts 3-4 Python processes with TensorFlow: ~1-3 min on a shared machine
def test_a_killed_worker_still_gives_the_whole_result(cluster, inputs, tmp_path):
    from distributed import Client

    log = cluster["folder"] / "w-doomed.log"
    doomed = start_worker(cluster["file"], "doomed", log)
    with Client(cluster["address"], timeout="30s") as client:
        client.wait_for_workers(3, timeout=60)
    out = tmp_path / "killed.ome.zarr"
    done_dir = out.with_name(f".{out.name}.partial.zarr") / ".deepscem" / "done"
    killed_at = []

    def kill_when_started() -> None:
        while not (done_dir.is_dir() and any(done_dir.iterdir())):
            time.sleep(0.005)
        doomed.kill()
        killed_at.append(len(list(done_dir.iterdir())))

    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    assert cli.main(["predict", str(inputs["model"]), str(inputs["ome"]), str(out), *PATCH,
                     "--cluster", cluster["address"]]) == 0
    killer.join(5)
    assert doomed.wait(5) is not None and killed_at and killed_at[0] < 54
    assert np.abs(read_output(out, None) - inputs["reference"][None]).max() <= 1e-5


@pytest.mark.slow  # starts 3-4 Python processes with TensorFlow: ~1-3 min on a shared machine
def test_resume_after_a_killed_command_runs_only_the_missing_blocks(cluster, inputs, tmp_path):
    out = tmp_path / "resumed.ome.zarr"
    work = out.with_name(f".{out.name}.partial.zarr")
    done_dir = work / ".deepscem" / "done"
    command = [sys.executable, str(ROOT / "run.py"), "predict", str(inputs["model"]),
               str(inputs["slices"]), str(out), *PATCH, "--cluster", cluster["address"]]
    log = tmp_path / "killed-command.log"
    proc = subprocess.Popen(command, env=_env(), cwd=str(ROOT), stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not (done_dir.is_dir() and len(list(done_dir.iterdir())) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    before: list = []
    while len(before) != len(list(done_dir.iterdir())):  # blocks already running on the
        before = list(done_dir.iterdir())                 # workers finish and are marked
        time.sleep(2.0)
    assert 3 <= len(before) < 54 and not out.exists()
    result = subprocess.run(command + ["--resume"], env=_env(), cwd=str(ROOT),
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resumed: {len(before)} of 54 blocks were already done" in result.stdout
    assert f"{54 - len(before)} blocks in" in result.stdout
    assert not work.exists() and out.is_dir()
    assert np.abs(read_output(out, None) - inputs["reference"][None]).max() <= 1e-5


def test_slurm_jobs_come_from_the_config_file(tmp_path):
    """The documented cluster.yaml gives a Slurm job script with its directives (no Slurm
    here: the script is built, not submitted)."""
    import dask

    from deepscem.inference.distributed import _read_config, jobqueue_cluster

    config = tmp_path / "cluster.yaml"
    config.write_text(
        "jobqueue:\n  slurm:\n    cores: 8\n    processes: 8\n    memory: 32GB\n"
        "    walltime: '04:00:00'\n    queue: gpu\n    job_extra_directives: ['--gres=gpu:1']\n"
        "    job_script_prologue: ['source /opt/deepscem/.venv/bin/activate']\n")
    with dask.config.set(_read_config(str(config))):
        cluster = jobqueue_cluster("slurm")
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
    for text in ("#SBATCH -p gpu", "#SBATCH --gres=gpu:1", "#SBATCH -t 04:00:00",
                 "source /opt/deepscem/.venv/bin/activate", "--nworkers 8", "--nthreads 1"):
        assert text in script
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="YAML mapping"):
        _read_config(str(bad))


_MMAPPED = """
import ctypes
import numpy as np
from deepscem.inference.distributed import _plain_malloc

class Info(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                 "usmblks", "fsmblks", "uordblks", "fordblks",
                                                 "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info

def mmapped_while_alive():
    before = libc.mallinfo2().hblks
    buffer = np.ones(1 << 20, np.float32)  # 4 MB
    return libc.mallinfo2().hblks - before

nanny = mmapped_while_alive()
_plain_malloc()
print(nanny, mmapped_while_alive())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt and mallinfo2")
def test_worker_allocator_reuses_buffers_despite_the_nanny_setting():
    """A Dask nanny's MALLOC_TRIM_THRESHOLD_ makes every 4 MB buffer a fresh (page-faulted,
    zeroed) mmap; after _plain_malloc (the worker plugin's setup) it comes from the heap, where
    freed buffers are reused."""
    result = subprocess.run([sys.executable, "-c", _MMAPPED], capture_output=True, text=True,
                            env=_env(MALLOC_TRIM_THRESHOLD_="65536"), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "0"]  # mmapped chunks held while the buffer lives
