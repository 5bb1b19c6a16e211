"""Device-side signal chain: demodulation, Doppler front-end, canceller, classifier, detector.

This is the code a firmware team ports and the same code computes training features.
It may import only numpy, scipy and onnxruntime (and numba, where installed, to compile the per-sample
kernels; each has a pure-Python fallback). It writes no files. tests/test_layering.py enforces this
(docs/DESIGN.md, "Layering (enforced)").
"""
