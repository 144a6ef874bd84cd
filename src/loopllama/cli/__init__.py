"""The `loopllama` command: server commands (serve, migrate, keys) and remote ones (SDK)."""
