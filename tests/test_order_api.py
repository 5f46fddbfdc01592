"""The order API over HTTP against a real uvicorn on 127.0.0.1 (httpx client): authentication (401), scopes (403),
the preview → confirm flow, idempotent confirm retries (one order at the broker, also when sent concurrently), expired /
reused / mismatched tokens, cancel, the bind check, OpenAPI docs."""
import hashlib
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from swingtrader.chat import ChatEngine
from swingtrader.config import Settings, SwingtraderError
from swingtrader.ledger import Ledger
from swingtrader.order_api import ApiServer, ApiTokens, build_app, check_bind, hash_token
from swingtrader.sim.broker import SimBroker

TOKENS = {"trader": ("tok-trader-123", "trade+read"), "viewer": ("tok-viewer-456", "read"), "ops": ("tok-ops-789", "control")}

@pytest.fixture
def api(tmp_path):
    b = SimBroker.from_seed(symbols=3); b.clock.advance(300)
    tokens = ApiTokens.parse(",".join(f"{n}:{sc}:{hash_token(t)}" for n, (t, sc) in TOKENS.items()))
    eng = ChatEngine.build(Settings(), b, Ledger(tmp_path / "ledger.sqlite", clock=b.clock), allow=tokens.allowlist())
    srv = ApiServer(build_app(eng, tokens))
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        yield c, b, eng
    srv.stop()

def H(name, **extra): return {"Authorization": f"Bearer {TOKENS[name][0]}", **extra}

def _order(b, **kw): return {"symbol": b.symbols[0], "side": "buy", "qty": "2", **kw}

def test_no_token_or_a_wrong_one_is_401(api):
    c, b, _ = api
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dXNlcjpwdw=="}):
        r = c.post("/orders", headers=headers, json=_order(b))
        assert r.status_code == 401 and r.headers.get("www-authenticate") == "Bearer"
    assert c.post("/auth/verify").status_code == 401
    v = c.post("/auth/verify", headers=H("viewer")).json()
    assert v == {"name": "viewer", "scopes": ["read"], "environment": "sandbox"}
    assert b.orders() == []

def test_wrong_scope_is_403(api):
    c, b, eng = api
    assert c.post("/orders", headers=H("viewer"), json=_order(b)).status_code == 403
    assert c.post("/orders", headers=H("ops"), json=_order(b)).status_code == 403
    assert c.post("/orders/confirm", headers=H("viewer"), json={"token": "x"}).status_code == 403
    assert any(e["kind"] == "chat_denied" for e in eng.ledger.events())

def test_confirm_flow_and_read_back(api):
    c, b, _ = api
    p = c.post("/orders", headers=H("trader"), json=_order(b))
    assert p.status_code == 201
    body = p.json()
    assert body["environment"] == "sandbox" and body["token"] and Decimal(body["preview"]["estimated_cost"]) > 0
    assert b.orders() == []
    r = c.post("/orders/confirm", headers=H("trader"), json={"token": body["token"], "order": body["order"]})
    assert r.status_code == 200 and r.json()["order"]["status"] == "filled"
    oid = r.json()["order"]["id"]
    g = c.get(f"/orders/{oid}", headers=H("viewer"))
    assert g.status_code == 200 and g.json()["order"]["filled_qty"] == "2" and g.json()["placed_by"] == "api:trader"
    assert c.get("/orders/nope", headers=H("viewer")).status_code == 404

def test_retried_confirm_leaves_one_order(api):
    c, b, _ = api
    tok = c.post("/orders", headers=H("trader"), json=_order(b)).json()["token"]
    send = lambda: c.post("/orders/confirm", headers=H("trader", **{"Idempotency-Key": "retry-1"}), json={"token": tok})
    with ThreadPoolExecutor(4) as ex: answers = list(ex.map(lambda _: send(), range(4)))
    answers.append(send())
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["order"]["id"] for a in answers}) == 1
    assert sum(1 for a in answers if a.json().get("replayed")) == len(answers) - 1
    assert len(b.orders()) == 1

def test_expired_reused_and_mismatched_tokens_are_refused(api):
    c, b, _ = api
    p = c.post("/orders", headers=H("trader"), json=_order(b)).json()
    changed = {**p["order"], "qty": "3"}
    m = c.post("/orders/confirm", headers=H("trader"), json={"token": p["token"], "order": changed})
    assert m.status_code == 409 and "differs" in m.json()["detail"]["message"]
    ok = c.post("/orders/confirm", headers=H("trader"), json={"token": p["token"]})
    assert ok.status_code == 200
    reuse = c.post("/orders/confirm", headers=H("trader", **{"Idempotency-Key": "other"}), json={"token": p["token"]})
    assert reuse.status_code == 409 and "already used" in reuse.json()["detail"]["message"]
    late = c.post("/orders", headers=H("trader"), json=_order(b)).json()
    b.clock.advance(61)
    x = c.post("/orders/confirm", headers=H("trader"), json={"token": late["token"]})
    assert x.status_code == 409 and "expired" in x.json()["detail"]["message"]
    assert c.post("/orders/confirm", headers=H("trader"), json={"token": "invented"}).status_code == 409
    assert len(b.orders()) == 1

def test_cancel_and_bad_orders(api):
    c, b, _ = api
    q = b.latest_quote(b.symbols[0])
    px = str((Decimal(str(q.bid)) * Decimal("0.9")).quantize(Decimal("0.01")))
    p = c.post("/orders", headers=H("trader"), json=_order(b, limit_price=px, tif="gtc")).json()
    oid = c.post("/orders/confirm", headers=H("trader"), json={"token": p["token"]}).json()["order"]["id"]
    assert c.put(f"/orders/{oid}/cancel", headers=H("viewer")).status_code == 403
    r = c.put(f"/orders/{oid}/cancel", headers=H("trader"))
    assert r.status_code == 200 and r.json()["order"]["status"] == "cancelled"
    assert c.put("/orders/nope/cancel", headers=H("trader")).status_code == 404
    assert c.post("/orders", headers=H("trader"), json=_order(b, qty="-1")).status_code == 422
    big = c.post("/orders", headers=H("trader"), json=_order(b, qty="100000"))
    assert big.status_code == 409 and "cap" in big.json()["detail"]["message"]

def test_openapi_docs_and_bind_check(api):
    c, _, _ = api
    spec = c.get("/openapi.json").json()
    assert {"/orders", "/orders/confirm", "/orders/{order_id}", "/orders/{order_id}/cancel", "/auth/verify"} <= set(spec["paths"])
    assert c.get("/docs").status_code == 200
    check_bind(Settings(), ApiTokens())
    with pytest.raises(SwingtraderError, match="SWINGTRADER_API_TLS_KEY"): check_bind(Settings(api_host="192.0.2.1"), ApiTokens())
    assert repr(ApiTokens.parse(f"a:read:{hash_token('zz')}")) == "ApiTokens(['a'])"

def test_control_scope_halts_and_resumes(api):
    c, b, eng = api
    assert c.post("/halt", headers=H("trader"), json={"reason": "x"}).status_code == 403
    h = c.post("/halt", headers=H("ops"), json={"reason": "news"})
    assert h.status_code == 200 and eng.ledger.halt_state().state == "halted" and eng.ledger.halt_state().who == "chat:api:ops"
    assert c.post("/orders", headers=H("trader"), json=_order(b)).status_code == 409      # halted: the risk guard refuses
    assert c.post("/resume", headers=H("ops"), json={"reason": "checked"}).status_code == 200
    assert eng.ledger.halt_state().state == "active"
    assert c.post("/orders", headers=H("trader"), json=_order(b)).status_code == 201

def test_tls_serving(tmp_path):
    "With a certificate the API speaks HTTPS (what a non-loopback address requires)."
    import ssl, trustme
    ca = trustme.CA(); cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tokens = ApiTokens.parse(f"t:read:{hash_token('tls-tok')}")
    b = SimBroker.from_seed(symbols=2); b.clock.advance(300)
    eng = ChatEngine.build(Settings(), b, Ledger(tmp_path / "l.sqlite", clock=b.clock), allow=tokens.allowlist())
    s = Settings(api_host="192.0.2.1", api_tls_cert=tmp_path / "cert.pem", api_tls_key=tmp_path / "cert.pem", api_tokens="x")
    check_bind(s, tokens)                                           # TLS + tokens: a public address is allowed
    with ApiServer(build_app(eng, tokens), ssl_certfile=str(tmp_path / "cert.pem"), ssl_keyfile=str(tmp_path / "cert.pem")) as srv:
        assert srv.url.startswith("https://")
        with httpx.Client(base_url=srv.url, verify=ssl.create_default_context(cafile=str(tmp_path / "ca.pem")), timeout=60) as c:
            assert c.post("/auth/verify", headers={"Authorization": "Bearer tls-tok"}).json()["name"] == "t"

def _rows(eng):
    import sqlite3
    with sqlite3.connect(eng.ledger.path) as db: return db.execute("SELECT count(*) FROM trader_state").fetchone()[0]

def test_replay_and_confirmation_records_are_pruned_and_late_retries_still_leave_one_order(api):
    "Idempotency answers live 24 h, token records a day past their expiry; then they go — and a retry never places twice."
    c, b, eng = api
    def confirm(tok, key): return c.post("/orders/confirm", headers=H("trader", **{"Idempotency-Key": key}), json={"token": tok})
    toks = [c.post("/orders", headers=H("trader"), json=_order(b, qty="1")).json()["token"] for _ in range(3)]
    first = [confirm(t, f"k{i}") for i, t in enumerate(toks)]
    assert [r.status_code for r in first] == [200] * 3 and len(b.orders()) == 3
    assert confirm(toks[0], "k0").json()["replayed"] is True                  # within the window: the same answer
    state = eng.ledger.load_state
    assert len(state("api:confirmed")) == 3 and len(state("chat:confirmations")) == 3
    rows = _rows(eng)
    b.clock.advance(24 * 3600 + 30)                                            # a day later: a new order prunes the old answers
    t4 = c.post("/orders", headers=H("trader"), json=_order(b, qty="1")).json()["token"]
    assert confirm(t4, "k4").status_code == 200
    assert list(state("api:confirmed")) == [hashlib.sha256(t4.encode()).hexdigest()]
    late = confirm(toks[0], "k0")                                              # the old retry: refused by the used token
    assert late.status_code == 409 and "already used" in late.json()["detail"]["message"] and len(b.orders()) == 4
    b.clock.advance(2 * 24 * 3600)                                             # the token records expire from the ledger too
    c.post("/orders", headers=H("trader"), json=_order(b, qty="1"))
    assert len(state("chat:confirmations")) == 1                               # only the newest, unconfirmed preview
    gone = confirm(toks[1], "k1")
    assert gone.status_code == 409 and "unknown" in gone.json()["detail"]["message"] and len(b.orders()) == 4
    assert _rows(eng) <= rows + 1                                              # the state table does not grow with each order
