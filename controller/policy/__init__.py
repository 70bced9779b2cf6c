"""Admission control (pure): what a merge to the deploy repo may deploy, and which stacks it may
touch at all.

- ``ownership``: a stack whose name is taken by objects Keelson does not own (another instance,
  a hand-deployed stack, Keelson's own stack) is refused unless the stack opts in to adoption.
- ``protected``: Keelson's own secrets, configs and networks, which no stack may use.
- ``admission``: the operator's level (``privileged``, ``baseline``, ``restricted``, after the
  Kubernetes Pod Security Standards) applied to a stack's converted Engine specs.
- ``guard``: the two checks a pass runs, built once from Settings and Keelson's identity.

Nothing here imports docker or does I/O; the swarm adapter detects the identity.
"""
