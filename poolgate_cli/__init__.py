"""The ``poolgate`` command line: the layer above both processes.

It parses the command and hands it to the process it runs (``selector``, ``edge``, ``check``), runs both as child
processes (``up``, ``demo``), talks to a running selector as a gRPC client (``accounts``, ``reload``), and starts the
fake upstream (``fake-upstream``) as a program of its own. Neither process imports this package; the shared code both
use lives in :mod:`poolgate`.
"""
