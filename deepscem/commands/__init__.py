"""One module per CLI command group; each exposes ``register(subparsers)``.

Modules here import only argparse-level things at import time, so ``--help`` is instant;
NumPy/h5py/Keras are imported inside handlers.
"""
