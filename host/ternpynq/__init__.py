"""ternpynq: ternary, PE-wise pruned CNNs on PYNQ FPGAs."""

__version__ = "0.1.0"
