"""What the tests share: clients, message helpers, processes, services and the backend factories.

Tests import from here, never from another test module; fixtures live in the conftest.py files.
"""
