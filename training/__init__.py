"""Training side: model, data module, thresholds, ONNX export, int8 quantization, DSP budget, evaluation."""
