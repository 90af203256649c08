"""Post-processing of predictions: smoothing along Z (``zsmooth``) and small-object removal
(``small_objects``)."""
