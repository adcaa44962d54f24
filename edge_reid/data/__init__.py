"""Datasets: the Market-1501 layout, the calibration sampler, and image reading."""
