"""Evaluation: the Market-1501 protocol, k-reciprocal re-ranking, and FP32-vs-quantized agreement."""
