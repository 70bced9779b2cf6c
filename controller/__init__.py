"""Keelson: a GitOps controller for Docker Swarm (merge to main, and the stacks follow)."""

__version__ = "0.2.0"
