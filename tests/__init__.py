"""The test suite: a package, so test modules import their helpers as ``tests.support.<module>``."""
