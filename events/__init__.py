"""The event schema (facts, intents, commands), its codec, and the SQLite event log."""
