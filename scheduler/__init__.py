"""The scheduler: owns run state and graph traversal; dispatches tasks; applies results.

``core`` is the pure state machine; ``store`` persists state, the outbox and timers; the
service modules connect them to brokers, clocks and people.
"""
