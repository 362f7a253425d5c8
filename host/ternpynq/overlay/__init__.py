"""The overlay's host side: board files, register map, stream packing, the driver, the
simulated and pynq devices, the csim build, and the cycle and resource models.

Off-board the simulated device runs the HLS kernel compiled with g++ (``csim``); on a PYNQ
board the same driver speaks to the bitstream through pynq (imported only there).
"""
