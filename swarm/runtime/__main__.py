"""``python -m swarm.runtime FD [MODULE...]``: run one agent process (see :func:`swarm.runtime._child.child_main`)."""

import sys

from ._child import child_main

child_main(int(sys.argv[1]), sys.argv[2:])
