"""The emulator's floors: `core` at the bottom imports no other emulator module, each protocol room imports at most
`core`, only `app` imports the rooms, and no emulator module uses another module's `_private` names."""
import ast
from pathlib import Path

import swingtrader.emulator as pkg

ROOT = Path(pkg.__file__).parent
ROOMS = ("rest", "streamer", "dxlink", "tradingview", "derivatives")
DERIVATIVES = ("derivatives", "derivatives_api")   # the options and futures room, in two modules
ALPACA_DATA = ("alpaca_data", "alpaca_data_stream")   # the Alpaca market-data room, in two modules
ALPACA = ("alpaca_wire", "alpaca_orders", "alpaca_amend", "alpaca_stream", "alpaca_trading")   # the Alpaca trading room, in five modules
# imports of private names from outside the emulator that are still to be made public where they are defined
KNOWN_PRIVATE = set()


def _tree(mod): return ast.parse((ROOT / f"{mod}.py").read_text())


def emulator_imports(mod) -> set:
    "The emulator modules `mod` imports anywhere (function-local imports included)."
    out = set()
    for n in ast.walk(_tree(mod)):
        if isinstance(n, ast.ImportFrom):
            m = n.module or ""
            if n.level == 1: out.add(m.split(".")[0] or "__init__")
            elif m.startswith("swingtrader.emulator."): out.add(m.split(".")[2])
            elif m == "swingtrader.emulator" or (n.level == 2 and m == "emulator"): out |= {a.name for a in n.names}
        elif isinstance(n, ast.Import):
            out |= {a.name.split(".")[2] for a in n.names if a.name.startswith("swingtrader.emulator.")}
        elif isinstance(n, ast.Call) and getattr(n.func, "id", None) == "__import__":
            out.add("__import__")   # a dynamic import hides an edge: not allowed
    return out


def test_core_is_the_bottom():
    assert emulator_imports("core") == set()


def test_rooms_import_only_core():
    for room in ROOMS: assert emulator_imports(room) <= {"core"}, room
    for m in DERIVATIVES: assert emulator_imports(m) <= {"core", *DERIVATIVES}, m


def test_alpaca_data_room_imports_only_core_and_itself():
    for m in ALPACA_DATA: assert emulator_imports(m) <= {"core", *ALPACA_DATA}, m


def test_alpaca_room_imports_only_core_and_itself():
    for m in ALPACA: assert emulator_imports(m) <= {"core", *ALPACA}, m


def test_app_assembles_every_room():
    assert emulator_imports("app") == {"core", *(set(ROOMS) - {"derivatives"}), "derivatives_api", "alpaca_data_stream", "alpaca_trading"}


def test_no_private_names_cross_a_module():
    found = []
    for p in sorted(ROOT.glob("*.py")):
        mod = p.stem
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom):
                src = n.module if not n.level else f"swingtrader.emulator.{n.module}" if n.level == 1 else f"swingtrader.{n.module}"
                found += [(mod, src, a.name) for a in n.names if a.name.startswith("_") and not a.name.startswith("__")]
            elif isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__"):
                if not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")):
                    found.append((mod, ast.unparse(n.value), n.attr))   # someone else's private attribute
    assert set(found) - KNOWN_PRIVATE == set(), sorted(set(found) - KNOWN_PRIVATE)
