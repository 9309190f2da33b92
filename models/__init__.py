"""The vocabulary of Tandem: payloads, records and the pure scoring.

This package imports nothing else of the project, and its submodules are imported
one by one (no re-exports here) so that the workflow sandbox only loads pydantic
payloads, never the SQLModel tables.
"""
