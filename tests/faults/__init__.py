"""Fault injection and soak tests (`make faults`); a package so its conftest does not shadow tests/conftest.py."""
