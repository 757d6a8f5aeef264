"""Firmware simulators behind pseudo-terminals, so real drivers are tested through real serial ports.

``pty_link`` owns the pty pair and the UART pacing; ``marlin`` and ``grbl`` are firmwares on it.
"""
