"""Root pytest configuration.

Notebook kernels started by nbval inherit this process's environment: progress bars are
switched off there (their refresh count depends on timing, so nbval could never match
them). Each notebook fixes torch's thread count itself (coloc.run.seed_everything).
"""

import os

os.environ["COLOC_PROGRESS"] = "0"
