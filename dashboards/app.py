"""The live swingtrader dashboard for `panel serve dashboards/app.py` (reads the ledger in SWINGTRADER_DATA_DIR).

`swingtrader dashboard` is the usual way to open it (loopback, a per-start token, or a password login). Served this way
the page is private too: each session must carry the access token this process prints once to its console
(`?token=...`), or a Panel login (`--basic-auth`). All logic lives in `swingtrader.dashboard`, `dashboard_page` and `dashboard_server` (nbs/80*_dashboard*.ipynb)."""
from swingtrader.dashboard_server import app_from_env

app_from_env(refresh_s=2.0).servable()
