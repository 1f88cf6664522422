"""Root pytest configuration.

Notebook kernels started by nbval inherit this process's environment: progress bars are
switched off there (their refresh count depends on timing, so nbval could never match
them), and torch uses a fixed thread count so stored numbers reproduce.
"""

import os

os.environ["COLOC_PROGRESS"] = "0"
os.environ.setdefault("MPLBACKEND", "agg")
