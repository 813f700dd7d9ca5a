"""The asyncio shell around the pure core: the one writer, replay and verify over the
SQLite log, the daemon's tasks, its config, logs, metrics, status and sd_notify.

Everything here may await, read clocks and do I/O; the decisions about money it needs
are made by the pure modules at `kernel/`'s top.
"""
