"""The pure state machine: ``decide(state, event, graph, now) -> (state, commands)``.

No I/O, no clock, no randomness: the time and the per-run seed are inputs, so the same
events always yield the same commands, and a run's event log replays exactly.
"""
