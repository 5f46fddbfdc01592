"The house's structure: no module reaches into another module's private names, and no package imports in a circle."
import ast, pathlib
import pytest

PKG = pathlib.Path(__file__).resolve().parents[1]/"swingtrader"
MODULES = sorted(p for p in PKG.rglob("*.py") if p.name != "_modidx.py")

def _defined(tree) -> set[str]:
    "Every name a module defines: functions, classes, assignments, attributes it sets, arguments, setattr'd names."
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): out.add(n.name)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store): out.add(n.attr)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store): out.add(n.id)
        elif isinstance(n, ast.arg): out.add(n.arg)
        elif isinstance(n, ast.Call) and getattr(n.func, "id", None) == "setattr" and len(n.args) > 1 and isinstance(n.args[1], ast.Constant):
            out.add(n.args[1].value)
    return out

def private_reach(path:pathlib.Path) -> list[str]:
    "Private names `path` takes from elsewhere: `from m import _x`, or `obj._x` on anything but self/cls when it defines no `_x`."
    tree, found = ast.parse(path.read_text()), []
    mine = _defined(tree)
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            found += [f"{path.name}:{n.lineno} imports {a.name}" for a in n.names if a.name.startswith("_") and not a.name.startswith("__")]
        elif isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__"):
            own = isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")   # a mixin's or subclass's own (protected) state
            if not own and n.attr not in mine: found.append(f"{path.name}:{n.lineno} uses {ast.unparse(n.value)}.{n.attr}")
    return found

@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_private_names_across_modules(path):
    assert private_reach(path) == []

def test_the_check_sees_a_reach_in(tmp_path):
    bad = tmp_path/"m.py"
    bad.write_text("from swingtrader.indicators import _period\nimport x\ny = x.broker._quote_token\n")
    assert private_reach(bad) == ["m.py:1 imports _period", "m.py:3 uses x.broker._quote_token"]

def test_no_import_circle_between_subpackages_and_modules():
    "Module-level imports between swingtrader modules form no cycle (function-local imports are lazy wiring and allowed)."
    graph = {}
    for p in MODULES:
        name = ".".join(p.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(p.read_text())
        rel = p.relative_to(PKG.parent).with_suffix("").parts
        pkg = list(rel[:-1])
        deps = set()
        for n in tree.body:                                     # module level only
            if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("swingtrader")):
                base = pkg[:len(pkg) - n.level + 1] if n.level else []
                mod = ".".join(base + ([n.module] if n.module else []))
                deps.add(mod)
        graph[name] = {d for d in deps if d != name}
    seen, stack, cycles = set(), [], []
    def visit(m):
        if m in stack: cycles.append(stack[stack.index(m):] + [m]); return
        if m in seen or m not in graph: return
        seen.add(m); stack.append(m)
        for d in graph[m]: visit(d)
        stack.pop()
    for m in graph: visit(m)
    assert cycles == [], cycles[:3]
