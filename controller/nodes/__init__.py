"""Nodes declared in git (pure): the nodes file, the node plan and its guard rails.

- ``spec``: load and validate the nodes file (``KEELSON_NODES_FILE``, default
  ``cluster/nodes.yml``) into a NodesSpec, with file and line in every error.
- ``constraints``: does a node satisfy a service's placement constraints (``node.role``,
  ``node.hostname``, ``node.id``, ``node.labels.*``, ``engine.labels.*``, ``node.platform.*``).
- ``plan``: declared spec + live nodes + live services -> NodePlan (changes, refusals).
- ``moves``: which tasks a drain moved where, and which services it left short.

Nothing here imports docker or does I/O apart from reading the nodes file through the
repo sandbox; ``reconcile.nodes`` applies a plan through ``controller.swarm``.
"""
