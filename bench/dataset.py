"""Dataset benchmark: add-sample throughput and peak memory, and patch-read time per chunking.

    python bench/dataset.py                  # lucchi-pp stack + a generated 2 GiB stack
    python bench/dataset.py --big-gib 0      # lucchi-pp only
    python bench/dataset.py --data DIR       # where lucchi-pp lives (default ../shared/data)

Prints numbers, never pass/fail. Each add-sample runs in its own subprocess so its peak RSS
(``resource.getrusage``) is its own. Throughput is MB (10^6 bytes) of input voxels per second:
image bytes, and image + label voxel bytes (labels are read, checked and written too). Inputs
are read from the page cache when they were just written or read (as on a second run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = Path(os.environ.get("DEEPSCEM_SHARED_DATA") or ROOT.parent / "shared" / "data")


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM rather than ru_maxrss: Linux carries
    ru_maxrss over from the parent across fork + exec, VmHWM starts afresh."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_add(image: str, label: str, out: str) -> None:
    """Runs in a subprocess: one add_sample, prints JSON with time and peak RSS."""
    from deepscem.dataset import Dataset

    base = _peak_rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    with Dataset.create(out, "bench", 1, overwrite=True) as ds:
        ds.add_sample("s", image, [label])
        shape = ds.sample("s").shape
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = _peak_rss_mb()
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak,
                      "rss_after_imports_mb": base, "shape": shape}))


def run_add(name: str, image: Path, label: Path | str, workdir: Path) -> None:
    """One add-sample in a subprocess; ``label`` "" adds a blank label (image-only cost)."""
    from deepscem.dataset import imageio

    with imageio.open_volume(image) as src:
        image_mb = src.nbytes / 1e6
    label_mb = image_mb if label else 0.0
    out = workdir / "bench.hdf5"
    cmd = [sys.executable, __file__, "--child-add", str(image), str(label), str(out)]
    result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    size = out.stat().st_size / 1e6
    out.unlink()
    s, cpu = result["seconds"], result["cpu_seconds"]
    total = image_mb + label_mb
    print(f"{name}: {tuple(result['shape'])}, image {image_mb:.0f} MB + label {label_mb:.0f} MB of voxels"
          f" in {s:.2f} s ({cpu:.2f} CPU s): {total / s:.0f} MB/s of input ({image_mb / s:.0f} MB/s of"
          f" image; {total / cpu:.0f} MB per CPU second); peak RSS {result['peak_rss_mb']:.0f} MB "
          f"(after imports {result['rss_after_imports_mb']:.0f} MB); file {size:.0f} MB")


def make_big_stack(workdir: Path, data: Path, gib: float) -> tuple[Path, Path]:
    """A uint8 (Z, 1024, 1024) stack of >= ``gib`` GiB built from tiled lucchi-pp slices (real EM
    texture), written page by page; its label tiled the same way, zlib-compressed."""
    import tifffile

    z = int(np.ceil(gib * 2**30 / 2**20))
    src_img = tifffile.memmap(data / "lucchi-pp" / "train_image.tif", mode="r")
    src_lbl = tifffile.imread(data / "lucchi-pp" / "train_label.tif")

    def tiled(stack, i):
        return np.tile(stack[i % stack.shape[0]], (2, 2))[:1024, :1024]

    image, label = workdir / "big_image.tif", workdir / "big_label.tif"
    tifffile.imwrite(image, data=(tiled(src_img, i) for i in range(z)), shape=(z, 1024, 1024),
                     dtype=np.uint8, bigtiff=True, photometric="minisblack")
    tifffile.imwrite(label, data=(tiled(src_lbl, i) for i in range(z)), shape=(z, 1024, 1024),
                     dtype=np.uint8, bigtiff=True, photometric="minisblack", compression="zlib")
    return image, label


CHUNKINGS = {
    "(1, 256, 256)": {"chunks": (1, 256, 256)},
    "(4, 128, 128)": {"chunks": (4, 128, 128)},
    "(4, 256, 256)": {"chunks": (4, 256, 256)},
    "(8, 256, 256)": {"chunks": (8, 256, 256)},
    "contiguous": {},
    "(4, 128, 128) gzip": {"chunks": (4, 128, 128), "compression": "gzip"},
}


def patch_reads(data: Path, workdir: Path) -> None:
    """Patch reads for each storage layout, on lucchi-pp (a small 512 x 640 frame) and on a
    wide 2048 x 2048 frame (tiled lucchi-pp slices), where rows of a patch lie far apart."""
    import tifffile

    image = tifffile.imread(data / "lucchi-pp" / "train_image.tif")
    label = (tifffile.imread(data / "lucchi-pp" / "train_label.tif") > 0).astype(np.uint8)
    cases = [("image " + k, image, v) for k, v in CHUNKINGS.items()]
    for chunks in ((4, 128, 128), (4, 256, 256)):
        for comp in ("gzip", "lzf"):
            options = {"chunks": chunks, "compression": comp}
            if comp == "gzip":
                options["compression_opts"] = 1
            cases.append((f"label {chunks} {comp}", label, options))
    cases.append(("label (4, 128, 128) gzip, 64 MB cache", label,
                  {"chunks": (4, 128, 128), "compression": "gzip", "compression_opts": 1,
                   "cache_mb": 64}))
    cases.append(("label (4, 128, 128) uncompressed", label, {"chunks": (4, 128, 128)}))
    _time_patches(f"lucchi-pp train {image.shape} uint8", cases, workdir)
    wide = np.stack([np.tile(image[z], (4, 4))[:2048, :2048] for z in range(64)])
    cases = [("image " + k, wide, v) for k, v in CHUNKINGS.items() if "gzip" not in k]
    _time_patches(f"wide {wide.shape} uint8", cases, workdir)


def _time_patches(title: str, cases, workdir: Path) -> None:
    """1000 random 2D (1, 256, 256) and 200 random 3D (32, 128, 128) reads per layout."""
    import h5py

    path = workdir / "patches.hdf5"
    rng = np.random.default_rng(0)
    zs, ys, xs = cases[0][1].shape
    p2 = [(rng.integers(0, zs), rng.integers(0, ys - 256), rng.integers(0, xs - 256)) for _ in range(1000)]
    p3 = [(rng.integers(0, zs - 32), rng.integers(0, ys - 128), rng.integers(0, xs - 128))
          for _ in range(200)]
    print(f"patch reads on {title} (best of 3); warm = file in the page cache, cold = its pages "
          "evicted first (posix_fadvise DONTNEED) so reads go to the disk:")
    for name, volume, options in cases:
        options = dict(options)
        cache = options.pop("cache_mb", None)
        access = {"rdcc_nbytes": int(cache * 2**20), "rdcc_nslots": 100_003} if cache else {}
        with h5py.File(path, "w") as f:
            f.create_dataset("v", data=volume, **options)
        times = []
        for cold in (False, True):
            for patches, size in ((p2, (1, 256, 256)), (p3, (32, 128, 128))):
                best = np.inf  # best of 3: the machine may be shared, the minimum is the cost
                for _ in range(3):
                    if cold:
                        _evict(path)
                    with h5py.File(path, "r", **access) as f:
                        d = f["v"]
                        start = time.perf_counter()
                        for z, y, x in patches:
                            d[z:z + size[0], y:y + size[1], x:x + size[2]]
                        best = min(best, time.perf_counter() - start)
                times.append(best)
        size = path.stat().st_size / 1e6
        print(f"  {name:36s} 1000 x 256^2 warm {times[0]:6.3f} s cold {times[2]:6.3f} s | "
              f"200 x 32x128^2 warm {times[1]:6.3f} s cold {times[3]:6.3f} s | file {size:5.1f} MB")
    path.unlink()


def _evict(path: Path) -> None:
    """Drop this one file's pages from the page cache (no effect on other files)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--big-gib", type=float, default=2.0, help="generated stack size (0: skip)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--child-add", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_add:
        child_add(*args.child_add)
        return
    lucchi = args.data / "lucchi-pp"
    if not lucchi.is_dir():
        sys.exit(f"lucchi-pp not found in {args.data}; pass --data")
    workdir = Path(tempfile.mkdtemp(prefix="deepscem-bench-", dir=args.workdir))
    try:
        print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} "
              "(other jobs running when > 0)")
        run_add("lucchi-pp train", lucchi / "train_image.tif", lucchi / "train_label.tif", workdir)
        run_add("lucchi-pp train, blank label", lucchi / "train_image.tif", "", workdir)
        if args.big_gib > 0:
            start = time.perf_counter()
            image, label = make_big_stack(workdir, args.data, args.big_gib)
            print(f"(generated {image.stat().st_size / 2**30:.2f} GiB stack in "
                  f"{time.perf_counter() - start:.0f} s)")
            run_add(f"generated {args.big_gib:g} GiB", image, label, workdir)
            run_add(f"generated {args.big_gib:g} GiB, blank label", image, "", workdir)
        patch_reads(args.data, workdir)
    finally:
        for path in workdir.glob("*"):
            path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
