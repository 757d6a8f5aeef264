"""Machine drivers behind one interface (``base.Driver``): octoprint, marlin, grbl and sim.

Build one by name with ``fabnet.drivers.registry.make_driver``.
"""
