"""CUDA through cuda-python: checked runtime calls, device query, the device's CUDA version
(:mod:`~edge_reid.cuda.versions`), and the batch buffers the TensorRT backend shares with the
CPU (mapped zero-copy memory on Jetson, pinned host memory plus device copies on discrete GPUs).

Nothing here imports cuda-python at module import time, so the package works (and
its decision logic is testable) on machines without CUDA.
"""
