"""DeepSCEM's desktop application (PyQt5). Qt lives here only; the core is ``deepscem``.

Nothing here imports TensorFlow/Keras at import time: the window must show within
seconds, so model code is imported inside workers or on first use.
"""
