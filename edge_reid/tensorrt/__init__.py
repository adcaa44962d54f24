"""The thin TensorRT layer: version gates, start-up (:mod:`~edge_reid.tensorrt.startup`), engine
manifests and identity, batch profiles, the Q/DQ checks TensorRT's parser needs
(:mod:`~edge_reid.tensorrt.qdq_check`), the INT8 calibrator and the engine builder.

Only the builder, the start-up helpers and the calibrator class touch the ``tensorrt``
module, and only inside functions; everything that decides something (which quantization
path, whether an engine is current, how to split a batch, whether a Q/DQ model parses) is a
pure function tested on the CPU. The API names they use are checked against the real
bindings of TensorRT 8.6, 10.3 and 11 (tests/test_real_tensorrt_bindings.py).
"""
