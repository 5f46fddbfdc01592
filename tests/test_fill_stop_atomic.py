"""A fill and the trailing stop it opens are one ledger commit. A bot killed (SIGKILL) after the fill's row and before its
stop's used to restart holding a position with no stop: the replayed fill was a known one and opened nothing, so neither a
code-side trail nor a broker stop ever covered it. Now the kill rolls both back, and the replay books the fill and its stop."""
import signal
import subprocess
import sys
import textwrap

from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.trader import Trader

CHILD = textwrap.dedent('''
    import os, signal, sys
    from datetime import datetime, timezone
    from decimal import Decimal
    from swingtrader.clock import SimClock
    from swingtrader.config import Settings
    from swingtrader.ledger import Ledger
    from swingtrader.models import Account, Fill, Order, OrderEvent, OrderStatus, OrderUpdate, Signal, SignalAction, Side
    from swingtrader.risk import RiskGuard
    from swingtrader.sizer import Sizer
    from swingtrader.stops import StopBook
    from swingtrader.strategy import MacdSwing
    from swingtrader.trader import Trader
    path, when = sys.argv[1], sys.argv[2]
    t = datetime(2026, 3, 3, 15, 30, tzinfo=timezone.utc)
    s = Settings()
    led = Ledger(path, clock=SimClock(t, mode="manual"))
    tr = Trader(s, MacdSwing.from_settings(s), Sizer.from_settings(s), RiskGuard(s), StopBook.from_settings(s), led)
    tr.set_account(Account("A", Decimal(100_000), Decimal(100_000), Decimal(100_000), Decimal(100_000)), [])
    [it] = tr.decide(Signal("AAA", SignalAction.ENTER_LONG, t, 50.0, 0.8, "test entry"))
    tr.last_time = t
    tr.checkpoint()                                            # as the bot does before it submits
    req = it.request
    o = Order("o1", req.client_key, "AAA", Side.BUY, req.type, req.tif, OrderStatus.FILLED, req.qty, req.notional, None, None,
              req.qty, Decimal("50"), t, t, "filled")
    u = OrderUpdate(OrderEvent.FILL, o, t, Fill("f1", "o1", "AAA", Side.BUY, req.qty, Decimal("50"), t, req.client_key))
    if when == "before_stop":
        def die(*a, **k): os.kill(os.getpid(), signal.SIGKILL)
        led.save_stop = die                                    # killed between the fill's row and its stop's
    tr.on_update(u)
    print(req.client_key)
''')


def run_child(path, when):
    return subprocess.run([sys.executable, "-c", CHILD, str(path), when], capture_output=True, text=True, timeout=120)


def test_a_kill_between_fill_and_stop_leaves_neither_and_the_replay_books_both(tmp_path):
    path = tmp_path / "ledger.db"
    r = run_child(path, "before_stop")
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    led = Ledger(path)
    try:
        assert led.fills() == [] and led.positions() == [] and led.stops() == {}     # rolled back together
        [o] = led.orders()
        assert o.status == "pending_submit"                                            # the intent survives, as before the kill
        s = Settings()
        tr = Trader.resume(s, led)
        assert o.client_key in tr.pending and tr.pending[o.client_key].atr == 0.8
        # the restart's replay delivers the same fill: booked, and the stop with it
        from datetime import datetime, timezone
        from decimal import Decimal
        from swingtrader.models import Fill, Order, OrderEvent, OrderStatus, OrderUpdate, Side
        t = datetime(2026, 3, 3, 15, 30, tzinfo=timezone.utc)
        bo = Order("o1", o.client_key, "AAA", Side.BUY, o.type, o.tif, OrderStatus.FILLED, o.qty, o.notional, None, None, o.qty,
                   Decimal("50"), t, t, "filled")
        tr.on_update(OrderUpdate(OrderEvent.FILL, bo, t, Fill("f1", "o1", "AAA", Side.BUY, o.qty, Decimal("50"), t, o.client_key)))
        assert led.position("AAA").qty == o.qty
        st = led.stops()["AAA"]
        assert st["entry"] == 50.0 and st["stop"] < 50.0
        assert led.check() == []
    finally:
        led.close()


def test_without_a_kill_the_fill_and_its_stop_are_both_there(tmp_path):
    path = tmp_path / "ledger.db"
    r = run_child(path, "none")
    assert r.returncode == 0, r.stderr[-2000:]
    led = Ledger(path)
    try:
        assert len(led.fills()) == 1 and led.position("AAA").qty > 0 and "AAA" in led.stops()
    finally:
        led.close()
