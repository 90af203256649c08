"""U-Net models: building (``unet``, ``blocks``), losses and metrics (``losses``), files
(``storage``) and the original DeepSCEM's Keras 2 files (``legacy``).

Importing this package is cheap: Keras is imported by the submodules, not here.
"""
