"""The generation stage: random graphs, mutations, input search, and statistics of what generation covers."""
