"""Training: streamed patch sampling, augmentation, Keras PyDataset, callbacks and the trainer.

``sampler`` reads random patches from dataset files, ``augment`` transforms them,
``sequence`` batches them for Keras, ``callbacks`` and ``batchnorm`` keep a run safe
and its model usable, ``trainer.train`` ties them together. Keras is imported by the
submodules that need it, not here.
"""
