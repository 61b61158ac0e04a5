"""Look inside a trained network: filters, feature maps, top patches, deconvnet projections,
occlusion, saliency, integrated gradients, Grad-CAM, class models and MC dropout.

Every function takes an engine model (Sequential, Model, or an engine.keras model) with one
input and one output, in any data format, and runs it through its own call interface.  The
score of a target class is the pre-softmax value when the model ends in a softmax, the output
otherwise.  Copies of the input (path points, occluded or noisy copies, dropout samples) go
through the model in chunks of ``batch_size`` rows (default: as many as fit
``engine.explain._net.MEMORY_BUDGET`` bytes of activations), and only input gradients are
computed: the weights need no gradient during a pass.

    >>> import numpy as np, engine
    >>> from engine import explain
    >>> model = engine.zoo.get_model("small_cnn", (1, 8, 8), 10)
    >>> x = np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32)
    >>> attr, delta = explain.integrated_gradients(model, x, target=3, return_delta=True)
    >>> attr.shape, delta.shape
    ((4, 1, 8, 8), (4,))
"""
from .attribution import (IG_METHODS, grad_cam, integrated_gradients, occlusion, saliency,
                          score)
from .look import TopPatches, deconv, feature_maps, features, filters, mosaic, top_patches
from .synth import MCDropout, class_model, mc_dropout

__all__ = ["filters", "mosaic", "feature_maps", "features", "top_patches", "deconv",
           "occlusion", "saliency", "integrated_gradients", "grad_cam", "class_model",
           "mc_dropout", "score", "TopPatches", "MCDropout", "IG_METHODS"]
