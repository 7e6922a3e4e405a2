"""The execution stage: outcomes, the worker protocol, isolation, the case builder, backends and their
support tables."""
