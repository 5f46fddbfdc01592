"""The live swingtrader dashboard: `panel serve dashboards/app.py` (reads the ledger in SWINGTRADER_DATA_DIR).

All logic lives in `swingtrader.dashboard` (nbs/80_dashboard.ipynb); this file only serves it."""
from swingtrader.dashboard import app_from_env

app_from_env(refresh_s=2.0).servable()
