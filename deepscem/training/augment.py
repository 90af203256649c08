"""Per-patch data augmentation in NumPy: 90° rotations, flips, deformations, intensity, EM
section defects.

Geometric transforms act on the image (Z, Y, X) and its target (Z, Y, X, C) together;
they stay in the patch plane (Y, X) plus a Z flip for 3D patches, because EM volumes
are often anisotropic in Z. A deformation (``deform``) is a rotation by any angle, a zoom
and a smooth elastic displacement (Ronneberger et al. 2015, whose U-Net learnt a
serial-section TEM stack of Drosophila VNC from 30 slices with it), the same for every
slice of the patch; the image is resampled linearly, the target (labels and annotated mask)
by nearest neighbour, both mirrored at the patch border. Intensity changes (gamma,
contrast, brightness, Gaussian noise, Gaussian blur) touch the image only and keep it in
[0, 1].

Section defects imitate what serial sectioning does to a stack (missing or damaged
sections, sections misaligned against their neighbours; Lee et al. 2017, "Superhuman
accuracy on the SNEMI3D connectomics challenge"). They need slices around the one being
learnt, so they apply to stacks: 3D patches (image and target have the same Z), and
2.5D patches, where the image holds 1 + 2 * context slices and the target only the centre
slice. In 2.5D the centre slice is never damaged (its labels describe it); a misalignment
moves the slices on one side of the centre. In 3D a missing section blanks the image only
(the network must fill it in from the neighbours); a misalignment moves image and target
from a random section on, so they stay in register.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """Which augmentations to apply. ``dim`` 3 adds a Z flip to ``flip``.

    Intensity (``intensity``), each drawn independently per patch: gamma in
    [1/gamma, gamma], contrast x[1 - c, 1 + c] around the patch mean, brightness +[-b, b];
    with probability ``noise_probability`` Gaussian noise of standard deviation up to
    ``noise`` (image units, [0, 1] range); with probability ``blur_probability`` a Gaussian
    blur in Y/X of sigma up to ``blur`` pixels.
    Deformation (``deform``), with probability ``deform_probability`` per patch: a rotation
    by an angle in [-``rotation``, ``rotation``] degrees, a zoom by a factor in [1/``zoom``,
    ``zoom``] (log-uniform), and elastic displacements of standard deviation ``elastic``
    pixels drawn on a grid of ``elastic_spacing`` pixels and interpolated smoothly between.
    Defects (``defects``, stacks only, see the module docstring): per patch, with
    probability ``missing_probability`` one section is blanked (its values set to the patch
    mean), with probability ``misalign_probability`` the sections from one on are shifted by
    up to ``misalign`` pixels in Y and X.
    """

    rotate: bool = False
    flip: bool = False
    intensity: bool = False
    dim: int = 2
    gamma: float = 1.25
    contrast: float = 0.2
    brightness: float = 0.1
    noise: float = 0.04
    noise_probability: float = 0.3
    blur: float = 1.2
    blur_probability: float = 0.2
    deform: bool = False
    deform_probability: float = 0.5
    rotation: float = 180.0
    zoom: float = 1.2
    elastic: float = 4.0
    elastic_spacing: int = 64
    defects: bool = False
    missing_probability: float = 0.15
    misalign_probability: float = 0.15
    misalign: int = 8

    @property
    def active(self) -> bool:
        return self.rotate or self.flip or self.deform or self.intensity or self.defects

    def exact(self) -> Augmentation:
        """Only this augmentation's flips and 90° rotations: patches that keep every grey value."""
        return replace(self, deform=False, intensity=False, defects=False)


def augment(image: np.ndarray, target: np.ndarray, rng: np.random.Generator,
            aug: Augmentation, *, contiguous: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Augment one patch. image: (Z, Y, X) float32 in [0, 1]; target: (Z, Y, X, C), with the
    image's Z, or Z = 1 for a 2.5D patch (image Z = 1 + 2 * context, target = centre slice).

    Returns arrays of the same shapes (contiguous; with ``contiguous=False`` they may be
    rotated or flipped views of the inputs, for a caller that copies them anyway, e.g. into
    a batch). A non-square patch (Y != X) is only rotated by 0 or 180 degrees, so that every
    patch of a batch keeps its shape.
    """
    if aug.rotate:
        square = image.shape[1] == image.shape[2]
        k = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
        if k:
            image = np.rot90(image, k, axes=(1, 2))
            target = np.rot90(target, k, axes=(1, 2))
    if aug.flip:
        # A 2.5D stack may be flipped in Z too: its target (the centre slice) does not move.
        z_flip = aug.dim == 3 or image.shape[0] > target.shape[0]
        axes = [1, 2] + ([0] if z_flip else [])
        flips = tuple(a for a in axes if rng.random() < 0.5)
        if flips:
            image = np.flip(image, flips)
            target = np.flip(target, tuple(a for a in flips if target.shape[a] == image.shape[a]))
    if aug.deform and rng.random() < aug.deform_probability:
        image, target = deform(image, target, rng, aug)
    if aug.defects and image.shape[0] > 1:
        image, target = section_defects(image, target, rng, aug)
    if aug.intensity:
        image = jitter_intensity(image, rng, aug)
    if not contiguous:
        return image, target
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(target)


def deform(image: np.ndarray, target: np.ndarray, rng: np.random.Generator,
           aug: Augmentation) -> tuple[np.ndarray, np.ndarray]:
    """Rotate, zoom and elastically displace every (Y, X) slice of a patch alike (see
    :class:`Augmentation`). image (Z, Y, X) float; target (Z', Y, X, C) of the same Y, X.
    Returns new arrays of the same shapes: the image float32, the target of its dtype, its
    values among the input's (nearest neighbour)."""
    from scipy.ndimage import map_coordinates

    coords = deformation_grid(image.shape[1:], rng, aug)
    out = np.empty(image.shape, np.float32)
    for z in range(image.shape[0]):
        map_coordinates(np.asarray(image[z], np.float32), coords, output=out[z], order=1, mode="mirror")
    moved = np.empty(target.shape, target.dtype)
    for z in range(target.shape[0]):
        for c in range(target.shape[-1]):
            map_coordinates(np.ascontiguousarray(target[z, ..., c]), coords, output=moved[z, ..., c],
                            order=0, mode="mirror")
    return out, moved


def deformation_grid(shape: tuple[int, int], rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """(2, Y, X) float32 source coordinates for each output pixel of a (Y, X) plane: a rotation
    and zoom about the plane's centre plus a smooth displacement field (see
    :class:`Augmentation`)."""
    h, w = shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    angle = np.deg2rad(rng.uniform(-aug.rotation, aug.rotation))
    log_zoom = np.log(max(aug.zoom, 1.0))
    scale = float(np.exp(rng.uniform(-log_zoom, log_zoom)))
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32) - cy, np.arange(w, dtype=np.float32) - cx,
                         indexing="ij")
    coords = np.stack([cos * yy - sin * xx + cy, sin * yy + cos * xx + cx]).astype(np.float32)
    if aug.elastic > 0:
        coords += _smooth_field(shape, rng, aug.elastic, aug.elastic_spacing)
    return coords


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, sigma: float,
                  spacing: int) -> np.ndarray:
    """(2, Y, X) displacements: normal(0, sigma) on a coarse grid of ``spacing`` pixels (at
    least 2 x 2 points), interpolated to every pixel with cubic splines (separably: a
    (Y, gy) and an (X, gx) interpolation matrix around the coarse values)."""
    grid = tuple(max(2, int(round(n / max(1, spacing))) + 1) for n in shape)
    coarse = rng.normal(0.0, sigma, size=(2,) + grid).astype(np.float32)
    ym, xm = (_spline_matrix(n, g) for n, g in zip(shape, grid))
    return np.einsum("yi,cij,xj->cyx", ym, coarse, xm, optimize=True).astype(np.float32)


def _spline_matrix(n: int, g: int) -> np.ndarray:
    """(n, g): row i interpolates g coarse values (cubic spline) at position i of n, the
    first and last rows at the first and last coarse point."""
    from scipy.ndimage import map_coordinates

    at = np.linspace(0.0, g - 1.0, n)[None]
    return np.stack([map_coordinates(np.eye(g, dtype=np.float32)[k], at, order=3, mode="nearest")
                     for k in range(g)], axis=1)


def jitter_intensity(image: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """Random gamma, contrast, brightness, then (sometimes) blur and noise of a [0, 1] image
    (Z, Y, X); result float32 clipped to [0, 1]."""
    log_gamma = np.log(aug.gamma)
    out = np.power(np.clip(image, 0.0, 1.0), np.exp(rng.uniform(-log_gamma, log_gamma)))
    mean = float(out.mean())
    out = (out - mean) * rng.uniform(1.0 - aug.contrast, 1.0 + aug.contrast) + mean
    out = out + rng.uniform(-aug.brightness, aug.brightness)
    if aug.blur > 0 and rng.random() < aug.blur_probability:
        out = blur(out, float(rng.uniform(0.3, aug.blur)))
    if aug.noise > 0 and rng.random() < aug.noise_probability:
        out = add_noise(out, float(rng.uniform(0.0, aug.noise)), rng)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each (Y, X) slice of a (Z, Y, X) image (sigma in pixels; none in Z,
    where sections are often much thicker than pixels)."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(np.asarray(image, np.float32), sigma=(0.0, sigma, sigma), mode="reflect")


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add zero-mean Gaussian noise of standard deviation ``sigma`` (image units)."""
    return image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)


def section_defects(image: np.ndarray, target: np.ndarray, rng: np.random.Generator,
                    aug: Augmentation) -> tuple[np.ndarray, np.ndarray]:
    """Missing and misaligned sections of a stack (see the module docstring).

    image (Z, Y, X) with Z > 1; target (Z, Y, X, C) or (1, Y, X, C) for 2.5D. Returns new
    arrays (the inputs are not modified).
    """
    depth = image.shape[0]
    stacked_target = target.shape[0] == depth  # 3D; else 2.5D (target = centre slice)
    centre = depth // 2
    candidates = [z for z in range(depth) if stacked_target or z != centre]
    image = np.array(image, np.float32)
    if rng.random() < aug.missing_probability:
        z = candidates[int(rng.integers(len(candidates)))]
        image[z] = np.float32(image.mean())
    if aug.misalign > 0 and rng.random() < aug.misalign_probability:
        dy, dx = (int(v) for v in rng.integers(-aug.misalign, aug.misalign + 1, size=2))
        if stacked_target:
            start = int(rng.integers(1, depth))  # sections start.. move against 0..start-1
            image[start:] = translate(image[start:], dy, dx)
            target = np.array(target)
            target[start:] = translate(target[start:], dy, dx)
        else:
            side = slice(centre + 1, depth) if rng.random() < 0.5 else slice(0, centre)
            image[side] = translate(image[side], dy, dx)
    return image, target


def translate(stack: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift a (Z, Y, X[, C]) stack by (dy, dx) pixels; the uncovered border is mirrored.

    Example: a row [0, 1, 2, 3] shifted by dx = 1 gives [1, 0, 1, 2].
    """
    py, px = abs(dy), abs(dx)
    if not py and not px:
        return stack
    pads = [(0, 0), (py, py), (px, px)] + [(0, 0)] * (stack.ndim - 3)
    padded = np.pad(stack, pads, mode="reflect" if min(stack.shape[1:3]) > max(py, px) else "edge")
    y0, x0 = py - dy, px - dx
    return padded[:, y0:y0 + stack.shape[1], x0:x0 + stack.shape[2]]
