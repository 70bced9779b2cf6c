"""PURE: a stack folder -> a validated Compose document (StackManifest).

YAML with positions, override-file merge, interpolation with the allowed variables only,
casting and validation against the Compose schema Keelson supports; every file read goes
through the sandbox (``sandbox.py``).
"""
