"""``python -m amz2erp_sim.erpnext``: serve the ERPNext simulator from a shell until Ctrl-C."""

import sys

from amz2erp_sim.erpnext.server import main

sys.exit(main())
