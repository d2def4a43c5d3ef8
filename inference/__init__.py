"""Preprocessing, model loading (weights, bundles), classifiers and top-k.

Import the submodules directly (`inference.preprocess`, `inference.loader`, …): this package
file stays empty so that light users such as `streamrec check-config` do not load torch.
"""
