#!/usr/bin/env bash
# Placeholder: the Jetson installer (TensorRT bindings, cuda-python, venv with
# --system-site-packages, edge-reid doctor) arrives with the TensorRT backend.
echo "install_jetson.sh: not implemented yet; on any machine use: python3 -m pip install ." >&2
exit 1
