"""Helpers shared by the test modules (no tests here): independent readers of environment
files and rendered templates (oracle_helpers), the IAM evaluator (iam_eval), the fixture
scope that keeps mutation testing exact (fixture_scope), and readers shared by several test
modules. Imported as ``from tests.support.<module> import ...``; test modules never import
each other."""
