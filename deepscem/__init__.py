"""DeepSCEM: deep-learning segmentation of organelles in cellular electron microscopy.

The core package. It never imports Qt (the GUI lives in ``ui/``) and imports
TensorFlow/Keras only inside the functions that need them, so ``run.py --help``
and the dataset commands stay instant.
"""

__version__ = "0.1.0"

CITATION = (
    "Meyer C. et al., DeepSCEM: deep segmentation for cellular electron microscopy "
    "(https://github.com/Cyril-Meyer/DeepSCEM)"
)
