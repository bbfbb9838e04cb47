"""Unit tests, one file per source module: tests/unit/<package>/test_<module>.py."""
