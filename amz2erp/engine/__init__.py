"""The sync engines: what each sync command does, on top of the runtime (state, clients, reporter)."""
