"""Starters for the real components the tests (and `make local`, `make bench`) run as local processes."""
