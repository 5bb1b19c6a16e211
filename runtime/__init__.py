"""Device-side signal chain: demodulation, Doppler front-end, canceller, classifier, detector.

This is the code a firmware team ports and the same code computes training features.
It may import only numpy, scipy and onnxruntime.
"""
