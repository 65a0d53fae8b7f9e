"""`make cluster-test`: the stack on a real single-node Kubernetes; a package so its conftest does not shadow tests/conftest.py."""
