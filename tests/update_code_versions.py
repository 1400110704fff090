"""Record (or check) which source each codec and metric class depends on, beside its `code_version`.

    python -m tests.update_code_versions           # rewrite tests/data/code_versions.json
    python -m tests.update_code_versions --check   # only report what tests/test_versions.py would say

Why: a stored score or decoded file is keyed by the codec's fingerprint and the metric's fingerprint, both of
which carry the class's `code_version`. A change that can move an output must bump it, or old results are
silently reused. tests/test_versions.py compares the record with the working tree and fails when a class's
sources changed while its code_version did not. After a bump (or, for a change that cannot move any output -
a comment, a log message, an error text - without one, saying why in the commit message), run this tool.

What a class depends on: its own module and, transitively, every bench module it imports (at any depth, also
inside functions) under bench/codecs, bench/metrics and bench/probe - so a SemantiCodec depends on all of
bench/codecs/semanticodec/*.py it reaches, Encodec on neural.py, the classic codecs on classic/common.py,
every codec on codecs/base.py, every metric on metrics/base.py, the probe on bench/probe/*. Left out: the
registries (bench/codecs/__init__.py, bench/metrics/__init__.py), the weights cache, the random-weights
writer and the file hasher (bench/codecs/weights.py, random_weights.py, digests.py: weights enter
fingerprints by their content digest), and
bench/registry.py. The shared steps around every class - loading, resampling and trimming (bench/audio.py,
bench/coding.py), the resampling and alignment before a metric (bench/scoring.py), the packet-loss channel
(bench/channel.py) - are tracked by their own version constants (SHARED_VERSIONS; bench/pipeline.py says what
each covers). Sources are hashed as text with normalised line endings.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECORD = REPO / "tests" / "data" / "code_versions.json"
RECORD_VERSION = 1
DEPENDENCY_ROOTS = ("bench/codecs", "bench/metrics", "bench/probe")
NOT_DEPENDENCIES = frozenset({
    "bench/codecs/__init__.py", "bench/metrics/__init__.py",
    "bench/codecs/weights.py", "bench/codecs/random_weights.py",
    "bench/codecs/digests.py",  # file hashing: changes fingerprints by itself, never an output
    "bench/codecs/hub_pins.py", "bench/codecs/fetching.py",  # pins and verified downloads: weights enter by digest
})
UPDATE_COMMAND = "python -m tests.update_code_versions"
# Shared steps outside the classes, each tracked by a version constant ("module.NAME") and the files it covers:
# a change to those files without a bump of the constant fails like a class's (see bench/pipeline.py).
SHARED_VERSIONS = {
    "bench.pipeline.CODING_VERSION": ("bench/audio.py", "bench/coding.py"),
    "bench.pipeline.SCORING_VERSION": ("bench/audio.py", "bench/scoring.py"),
    "bench.channel.CHANNEL_VERSION": ("bench/channel.py",),
}


# -- the current state ----------------------------------------------------------------------------------


def source_digest(path: Path) -> str:
    """sha256 of a source file's text with CRLF/CR line endings normalised to LF."""
    text = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return hashlib.sha256(text).hexdigest()


def module_path(module: str, root: Path) -> str | None:
    """`bench.codecs.neural` -> "bench/codecs/neural.py" (or ".../__init__.py"), relative to root; None if absent."""
    parts = module.split(".")
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(root).as_posix()
    return None


def _module_name(rel: str) -> str:
    parts = rel[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(rel: str, root: Path) -> set[str]:
    """The bench modules (relative paths) that the module at `rel` imports anywhere in its body."""
    tree = ast.parse((root / rel).read_text(encoding="utf-8"), filename=rel)
    package = _module_name(rel) if rel.endswith("__init__.py") else _module_name(rel).rpartition(".")[0]
    found: set[str] = set()

    def add(name: str) -> bool:
        path = module_path(name, root)
        if path:
            found.add(path)
        return path is not None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("bench"):
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                head = package.split(".")
                head = head[: len(head) - (node.level - 1)] if node.level > 1 else head
                base = ".".join(head + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not base.startswith("bench"):
                continue
            for alias in node.names:  # `from pkg import submodule` names a module; else the names live in base
                if not add(f"{base}.{alias.name}"):
                    add(base)
    return found


def dependencies(rel: str, root: Path) -> list[str]:
    """`rel` and every module it reaches through imports inside DEPENDENCY_ROOTS (sorted)."""
    seen: set[str] = set()
    todo = [rel]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for dep in imported_modules(current, root):
            if dep.startswith(tuple(r + "/" for r in DEPENDENCY_ROOTS)) and dep not in NOT_DEPENDENCIES:
                todo.append(dep)
    return sorted(seen)


def registered_classes() -> dict[str, dict[str, type]]:
    """{"codecs": {name: class}, "metrics": {name: class}} from the registries (imports every class)."""
    from bench.codecs import CODECS
    from bench.metrics import METRICS

    return {"codecs": {e.name: e.load() for e in CODECS.entries()},
            "metrics": {e.name: e.load() for e in METRICS.entries()}}


def class_module_path(cls: type, root: Path = REPO) -> str:
    path = module_path(cls.__module__, root)
    if path is None:
        raise FileNotFoundError(f"no source for module {cls.__module__} under {root}")
    return path


def scan(root: Path = REPO, classes: dict[str, dict[str, type]] | None = None) -> dict:
    """The record as it would be written now, for the sources under `root`."""
    classes = registered_classes() if classes is None else classes
    modules: dict[str, str] = {}
    out: dict = {"version": RECORD_VERSION,
                 "note": f"written by `{UPDATE_COMMAND}`; checked by tests/test_versions.py", "modules": modules}
    for kind, named in classes.items():
        out[kind] = {}
        for name, cls in sorted(named.items()):
            deps = dependencies(class_module_path(cls, root), root)
            for d in deps:
                modules.setdefault(d, source_digest(root / d))
            combined = hashlib.sha256("".join(f"{d}:{modules[d]}\n" for d in deps).encode()).hexdigest()
            out[kind][name] = {"class": f"{cls.__module__}.{cls.__qualname__}",
                               "code_version": str(cls.__dict__.get("code_version", "(inherited)")),
                               "modules": deps, "digest": combined}
    out["modules"] = dict(sorted(modules.items()))
    out["shared"] = {name: {"version": constant_value(name, root),
                            "files": {f: source_digest(root / f) for f in files}}
                     for name, files in SHARED_VERSIONS.items()}
    return out


def constant_value(dotted: str, root: Path) -> str:
    """The string a module-level `NAME = "..."` assigns, read from the source under `root` ("bench.pipeline.X")."""
    module, _, name = dotted.rpartition(".")
    rel = module_path(module, root)
    tree = ast.parse((root / rel).read_text(encoding="utf-8"), filename=rel)
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
                and isinstance(node.value, ast.Constant)):
            return str(node.value.value)
    raise ValueError(f"{rel} assigns no constant {name}")


def shared_problems(recorded: dict, current: dict) -> list[str]:
    """The SHARED_VERSIONS part of `problems`."""
    out = []
    for name, now in current.get("shared", {}).items():
        before = recorded.get("shared", {}).get(name)
        if before is None:
            out.append(f"{name} is not in tests/data/code_versions.json: run `{UPDATE_COMMAND}`")
        elif now["version"] != before["version"]:
            out.append(f"{name} is {now['version']} but tests/data/code_versions.json records {before['version']}: "
                       f"run `{UPDATE_COMMAND}` to record the bump")
        elif now["files"] != before["files"]:
            changed = ", ".join(f for f, d in now["files"].items() if before["files"].get(f) != d)
            out.append(f"{changed} changed but {name} is still {now['version']}: bump it (or, for a change that "
                       f"cannot move any output, run `{UPDATE_COMMAND}` and say why in the commit)")
    return out


# -- the comparison -------------------------------------------------------------------------------------


def problems(recorded: dict, current: dict) -> list[str]:
    """What is wrong with `recorded` given `current` (both from `scan`), one line per class; [] when in order."""
    if recorded.get("version") != RECORD_VERSION:
        return [f"tests/data/code_versions.json has record version {recorded.get('version')!r}, expected "
                f"{RECORD_VERSION}: run `{UPDATE_COMMAND}`"]
    out = []
    for kind in ("codecs", "metrics"):
        old_kind, new_kind = recorded.get(kind, {}), current.get(kind, {})
        for name, now in new_kind.items():
            short = now["class"].rsplit(".", 1)[-1]
            if now["code_version"] == "(inherited)":
                out.append(f"{now['class']} has no code_version of its own: add `code_version = \"1\"` to the class")
                continue
            before = old_kind.get(name)
            if before is None:
                out.append(f"{kind[:-1]} {name!r} ({short}) is not in tests/data/code_versions.json: "
                           f"run `{UPDATE_COMMAND}`")
                continue
            if now["digest"] == before["digest"] and now["code_version"] == before["code_version"]:
                continue
            if now["code_version"] == before["code_version"]:
                changed = [m for m in now["modules"] if current["modules"].get(m) != recorded["modules"].get(m)]
                dropped = [m for m in before["modules"] if m not in now["modules"]]
                what = ", ".join(changed + [f"{m} (no longer imported)" for m in dropped]) or "its sources"
                out.append(f"{what} changed but {short}.code_version is still {now['code_version']}: bump it (or, for "
                           f"a change that cannot move any output, run `{UPDATE_COMMAND}` and say why in the "
                           "commit)")
            else:
                out.append(f"{short}.code_version is {now['code_version']} but tests/data/code_versions.json "
                           f"records {before['code_version']}: run `{UPDATE_COMMAND}` to record the bump")
        for name in old_kind:
            if name not in new_kind:
                out.append(f"{kind[:-1]} {name!r} is recorded but no longer registered: run `{UPDATE_COMMAND}`")
    return out + shared_problems(recorded, current)


def load_record(path: Path = RECORD) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_record(record: dict, path: Path = RECORD) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report differences, write nothing (exit 1 if any)")
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    importlib.invalidate_caches()
    current = scan()
    old = load_record() if RECORD.is_file() else {"version": RECORD_VERSION}
    found = problems(old, current)
    if args.check:
        print("\n".join(found) if found else "code versions: in order")
        return 1 if found else 0
    bad = [p for p in found if "no code_version of its own" in p]
    if bad:
        print("\n".join(bad))
        return 1
    write_record(current)
    for line in found:
        print("recorded:", line.split(": bump it")[0].split(": run")[0])
    print(f"wrote {RECORD.relative_to(REPO)} ({len(current['codecs'])} codecs, {len(current['metrics'])} metrics, "
          f"{len(current['shared'])} shared steps)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
