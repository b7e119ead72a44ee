"""What several test suites share: the repository's folders, free ports, waiting for a condition.

Imported as `tests.support` (tests/ is a package, so pytest puts the repository root on the import
path); the project's own code is imported from its installed packages, never through a path edit.
"""
