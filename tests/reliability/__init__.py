"""The fault suite: crashes, concurrency, disk, files, network, input and security, each counted.

Every module records what it tried and what went wrong in :data:`tests.reliability.figures.FIGURES`;
docs/reliability.md holds the table and ``bench/soak.py`` runs the same scenarios for longer.
"""
