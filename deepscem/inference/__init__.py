"""Prediction: sliding-window tiling (``tiling``, pure NumPy) and the model driver (``predictor``)."""
