"""Decrypting secrets kept in git (SOPS + age); the subprocess side of issue 9."""
