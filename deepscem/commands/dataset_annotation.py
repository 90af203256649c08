"""``run.py dataset voxel-size`` and ``run.py dataset annotated``: the per-sample metadata that
says what a sample's voxels are (their size in nm) and which of them are labelled. Heavy
imports happen inside the handlers, so ``--help`` stays instant."""

from __future__ import annotations

from deepscem.errors import DatasetError


def voxel_size(args) -> None:
    from deepscem.dataset import Dataset
    from deepscem.dataset.voxel_size import check, describe
    from deepscem.errors import ConfigError

    if args.size and args.clear:
        raise ConfigError("give a voxel size or --clear, not both")
    if args.size:
        check(args.size, "--voxel-size")
    change = bool(args.size) or args.clear
    with Dataset.open(args.file, "r+" if change else "r") as ds:
        names = ds.sample_names() if args.sample == "all" and "all" not in ds else [args.sample]
        samples = [ds.sample(n) for n in names]  # every name checked before anything changes
        for sample in samples:
            if change:
                sample.set_voxel_size(None if args.clear else args.size)
            print(f"{sample.name}: {describe(sample.voxel_size)} (Z, Y, X)")


def annotated(args) -> None:
    from deepscem.dataset import Dataset
    from deepscem.dataset.annotation import evenly_spaced, parse_slices
    from deepscem.progress import TqdmProgress

    change = args.slices or args.evenly is not None or args.mask or args.all or args.none
    with Dataset.open(args.file, "r+" if change else "r") as ds:
        sample = ds.sample(args.sample)
        with TqdmProgress(f"{args.sample}:") as bar:
            if args.slices:
                sample.set_annotated_slices(parse_slices(args.slices, sample.shape[0]), progress=bar)
            elif args.evenly is not None:
                if args.evenly < 1:
                    raise DatasetError(f"--evenly needs at least 1 slice, got {args.evenly}")
                sample.set_annotated_slices(evenly_spaced(args.evenly, sample.shape[0]), progress=bar)
            elif args.mask:
                sample.set_annotated_mask(args.mask, progress=bar)
            elif args.all:
                sample.set_all_annotated()
            elif args.none:
                sample.set_none_annotated()
        print(f"{args.sample}: {annotation_summary(sample)[1]}")


def annotation_summary(sample) -> tuple[float, str]:
    """(annotated fraction, words): "all annotated", "nothing annotated (...)" or
    "20.0 % annotated, slices 3, 7 (2 of 10)"; the layer is streamed once."""
    if sample.dataset.n_labels == 0:
        return 1.0, "images only"
    if not sample.has_annotation():
        return 1.0, "all annotated"
    per_slice = sample.annotated_per_slice()
    total = int(per_slice.sum())
    if total == 0:
        return 0.0, "nothing annotated (a volume to predict or to paint)"
    full = per_slice == sample.shape[1] * sample.shape[2]
    touched = per_slice > 0
    fraction = total / per_slice.size / (sample.shape[1] * sample.shape[2])
    text = f"{100.0 * fraction:.1f} % annotated"
    if (full == touched).all():  # whole slices only: say which
        zs = [int(z) for z in full.nonzero()[0]]
        shown = ", ".join(map(str, zs[:12])) + (", ..." if len(zs) > 12 else "")
        text += f", slices {shown} ({len(zs)} of {per_slice.size})"
    else:
        text += f" in {int(touched.sum())} of {per_slice.size} slices"
    return fraction, text
