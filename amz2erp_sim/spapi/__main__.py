"""``python -m amz2erp_sim.spapi``: serve the SP-API simulator from a shell until Ctrl-C."""

import sys

from amz2erp_sim.spapi.server import main

sys.exit(main())
