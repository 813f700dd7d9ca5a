"""The embedded simulated venue: deterministic, seeded, with fault injection."""
