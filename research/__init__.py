"""Evidence for the design: baselines, ablations, a distribution metric and speed, beside the core library.

- :mod:`.ar`: autoregressive raster-order transformer baseline (same text encoder, size and loss; KV cache).
- :mod:`.retrieval`: text -> nearest training texture baseline (copies by construction).
- :mod:`.features`: the texture feature net and the Fréchet / kernel distances computed in its features.
- :mod:`.runner`: trains, evaluates and times every system under one budget; :mod:`.table` writes the report.
- :mod:`.fuzz` (with :mod:`.fuzz_cases`): hostile model files, training sets and sampler calls, counted
  (``python -m research.fuzz``; see docs/ROBUSTNESS.md).

Run ``python -m research --help`` from a checkout. This folder is not installed: it imports ``pixelcore``,
nothing imports it.
"""
