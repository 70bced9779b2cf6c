"""Benchmarks of Keelson against looping `docker stack deploy` (see run.py)."""
