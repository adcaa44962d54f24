"""INT8/FP16 calibration with an accuracy guard."""
