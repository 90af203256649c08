"""Batches of streamed patches for Keras: a ``keras.utils.PyDataset`` over a PatchSampler.

Every batch is drawn with its own generator seeded by (seed, epoch, batch index), so
batches do not depend on which worker thread builds them and a run with a fixed seed
is repeatable. Validation sequences are ``fixed``: the same patches every epoch, so
validation losses of different epochs compare like with like.
"""

from __future__ import annotations

import os
import threading

import keras
import numpy as np

from deepscem.training.augment import Augmentation, augment
from deepscem.training.sampler import PatchSampler


class PatchSequence(keras.utils.PyDataset):
    """``steps`` batches of ``batch_size`` patches per epoch.

    x: (B, Y, X, 1) for ``dim`` 2 (patch Z must be 1; (B, Y, X, 1 + 2c) with a sampler of
    context c) or (B, Z, Y, X, 1) for ``dim`` 3,
    float32 in [0, 1]; y: the same spatial shape with one channel per label (plus the annotated
    mask as a last channel for partial labels, see :mod:`deepscem.training.sampler`), float32.
    workers > 1 builds batches in threads (h5py reads are serialised, NumPy work and the
    training step overlap); workers = 1 lets tf.data prefetch from one thread.
    thread_nice: raise the scheduling niceness of the threads that build batches by this much
    (Linux; 0 = leave them): on a CPU shared with other work, the training step's threads then
    win the cores the builders do not need (they run far ahead of the step on a CPU).
    """

    def __init__(self, sampler: PatchSampler, batch_size: int, steps: int, *, dim: int,
                 augmentation: Augmentation | None = None, seed: int = 0, fixed: bool = False,
                 workers: int = 1, max_queue_size: int = 8, thread_nice: int = 0) -> None:
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max_queue_size)
        if dim == 2 and sampler.patch[0] != 1:
            raise ValueError("2D batches need patches with Z = 1")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.steps = int(steps)
        self.dim = dim
        self.augmentation = augmentation if augmentation is not None and augmentation.active else None
        self.seed = int(seed)
        self.fixed = fixed
        self.epoch = 0
        self.thread_nice = int(thread_nice)
        self._niced = threading.local()

    def __len__(self) -> int:
        return self.steps

    def batch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One batch (x, y) drawn with ``rng`` (see the class docstring for shapes; a 2.5D
        sampler gives x (B, Y, X, 1 + 2 * context): the slices are the channels)."""
        patch, n = self.sampler.patch, self.sampler.target_channels
        depth = patch[0] + 2 * getattr(self.sampler, "context", 0)
        x = np.empty((self.batch_size, depth) + patch[1:], np.float32)
        y = np.empty((self.batch_size,) + patch + (n,), np.float32)
        for b in range(self.batch_size):
            image, target, _ = self.sampler.patch_at(rng)
            if self.augmentation is not None:
                image, target = augment(image, target, rng, self.augmentation, contiguous=False)
            x[b], y[b] = image, target  # the one copy of a rotated / flipped view
        if self.dim == 2:
            # (B, Y, X, slices): the slices of a 2.5D patch are its channels
            return np.ascontiguousarray(np.moveaxis(x, 1, -1)), y[:, 0]
        return x[..., None], y

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < self.steps:
            raise IndexError(index)
        if self.thread_nice and not getattr(self._niced, "done", False):
            _nice_this_thread(self.thread_nice)
            self._niced.done = True
        epoch = 0 if self.fixed else self.epoch
        return self.batch(np.random.default_rng([self.seed, epoch, int(index)]))

    def on_epoch_end(self) -> None:
        self.epoch += 1


def _nice_this_thread(increment: int) -> None:
    """Lower the calling thread's scheduling priority (Linux: per-thread niceness); no-op where
    the platform cannot, or when it is the main thread (that would slow the training step)."""
    if threading.current_thread() is threading.main_thread() or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except OSError:
        pass
