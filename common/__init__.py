"""The workflow language and the contracts shared by the scheduler and the workers.

Nothing in this package performs I/O on its own: it parses text it is given, validates
models, renders templates in a sandbox and defines the messages that cross process
boundaries. The scheduler core and the worker both build on it; it imports neither.
"""
