"""The example notebooks, importable as ``ternpynq.notebooks`` (host/ternpynq/notebooks is a
link here) so that PYNQ's ``pynq get-notebooks`` finds them through the ``pynq.notebooks``
entry point."""
