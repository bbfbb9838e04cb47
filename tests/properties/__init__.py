"""Guarantees that span many modules, one file per guarantee."""
