"""hbnn: hybrid binary neural networks, from Brevitas training to bit-exact FPGA hardware."""

__version__ = "0.1.0"
