"""``run.py demo``: the whole workflow on a generated EM-like volume (or a real pair)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="build datasets, train, predict, evaluate and draw an overlay, in a few minutes",
        description="Run the whole DeepSCEM workflow once: make a training and a test dataset, train "
                    "a small 2D U-Net within a time budget, segment the test volume, score it against "
                    "its labels and write a PNG overlay of one slice. Without --data it uses a seeded "
                    "EM-like volume the project generates (a few seconds to make).")
    p.add_argument("--out", default="demo_out", metavar="DIR",
                   help="folder for the datasets, model, prediction, scores and overlay (default: demo_out)")
    p.add_argument("--data", metavar="DIR",
                   help="a folder with train_image.tif, train_label.tif, test_image.tif, test_label.tif "
                        "(e.g. lucchi-pp) instead of the generated volume")
    p.add_argument("--minutes", type=float, default=2.5,
                   help="training budget in minutes (default 2.5; the demo takes about a minute more)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepscem.demo import run_demo
    from deepscem.devices import describe_device
    from deepscem.progress import TqdmProgress

    print(f"device: {describe_device()}")
    with TqdmProgress("demo") as bar:
        result = run_demo(args.out, data_dir=args.data, minutes=args.minutes, progress=bar)
    print(result.table)
    s = result.scores
    print(f"\nforeground IoU {s.get('iou', float('nan')):.3f}, Dice/F1 {s.get('f1', float('nan')):.3f} "
          f"(training: {result.train_message})")
    print("times: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.times.items()))
    for what, path in result.files.items():
        print(f"{what:>14}: {path}")
    return 0
