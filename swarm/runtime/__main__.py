"""``python -m swarm.runtime FD [MODULE...]``: run one agent process on a control socket (see
:func:`swarm.runtime._child.child_main`); ``python -m swarm.runtime --listen HOST:PORT --keys DIR
[MODULE...]``: run one agent in a sandbox, listening for the orchestrator (see
:func:`swarm.runtime._child.listen_main`)."""

import sys

from ._child import child_main, listen_main

if sys.argv[1:2] and sys.argv[1].startswith("--"):
    listen_main(sys.argv[1:])
else:
    child_main(int(sys.argv[1]), sys.argv[2:])
