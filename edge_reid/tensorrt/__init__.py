"""The thin TensorRT layer: version gates, engine manifests, batch profiles, the INT8
calibrator and the engine builder.

Only :mod:`edge_reid.tensorrt.builder` and the calibrator class touch the
``tensorrt`` module, and only inside functions; everything that decides something
(which quantization path, whether an engine is current, how to split a batch) is a
pure function tested on the CPU.
"""
