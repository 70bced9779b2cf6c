"""PURE: a loaded stack -> the Swarm objects it asks for, as ``docker stack deploy`` converts it
(``stack.py``), plus the canonical form used for spec hashes and drift (``normalize.py``) and the
checks that must pass before the first write (``preflight.py``)."""
from controller.render.convert.stack import to_desired

__all__ = ["to_desired"]
