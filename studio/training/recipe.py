"""A recipe: the mix a student is trained on, as a file in the project so a run can be repeated.

A recipe names its sources (filtered web by classifier version and threshold, synthetic pages by
status and plan cell, raw web, any imported set), gives each a ``share`` of the training tokens or
a ``tokens`` budget, holds a fixed share of every document out of training, and names the
evaluation sets drawn from those held-out documents::

    description = "Classifier-filtered web plus accepted synthetic pages"
    heldout = 0.1            # share of the documents no recipe trains on (fixed per document)
    curriculum = "grade"     # optional: easier pages first (words | grade)

    [[sources]]
    name = "filtered web"
    kind = "filtered"        # all | web | filtered | synthetic | import
    model = "latest"         # classifier version; threshold = 3.5 keeps score >= 3.5 instead
    share = 0.7

    [[sources]]
    name = "synthetic"
    kind = "synthetic"
    status = "accepted"
    share = 0.3

    [[eval]]
    name = "web"
    kind = "web"

Recipes are looked up by name: the project's ``recipes/NAME.toml`` (or ``.json``), then the
shipped presets (``resources/recipes``), then the built-in ``all`` (every document).
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from studio import paths

KINDS = ("all", "web", "filtered", "synthetic", "import")
CURRICULA = ("words", "grade")
RECIPE_DIR = "recipes"
BUILTIN = "all"
MAX_NAME = 100  # characters; the name is a file name (recipes/NAME.toml) and a run-name prefix
MAX_NAME_BYTES = 200  # ... and at most 255 bytes with its suffix on every common file system
MAX_TOKENS = 10**15  # a token budget past this is a typo: no run here trains on a quadrillion
MAX_SHARE = 1_000_000.0  # shares are relative weights (0.7, or 70): anything past this is a typo
MAX_RECIPE_BYTES = 1_000_000  # a recipe is a few lines; a bigger file is not one
_NAME_CHARS = re.compile(r"[\w .,+()@&'-]+")  # \w: letters and digits of any script, and _
_DEVICE_NAMES = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.IGNORECASE)


class RecipeError(Exception):
    """A recipe that cannot be read or used as written."""


@dataclass
class Source:
    """One part of the mix (or one evaluation set): which documents, and how much of them."""

    name: str
    kind: str = "all"
    share: float | None = None  # of the training tokens
    tokens: int | None = None  # a budget instead of a share
    model: str | None = None  # filtered: classifier version, or "latest"
    threshold: float | None = None  # filtered: keep score >= this instead of the version's keep
    status: str | None = None  # synthetic: accepted (default) | rejected
    cell: str | None = None  # synthetic: GLOB over the plan cell
    exclude_cell: str | None = None  # synthetic: leave out cells matching this GLOB
    path: str | None = None  # import: GLOB over the imported file's path
    code: bool | None = None  # true: only pages that are mostly code; false: only prose

    def selector(self) -> str:
        """The filter in a few words, for tables and logs."""
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)[4:]]
        return ", ".join(p for p in parts if not p.endswith("=None")) or "-"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Recipe:
    name: str
    sources: list[Source]
    evals: list[Source] = field(default_factory=list)
    heldout: float = 0.1
    split_seed: int = 0
    curriculum: str | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "heldout": self.heldout,
            "split_seed": self.split_seed,
        }
        if self.curriculum:
            out["curriculum"] = self.curriculum
        out["sources"] = [s.to_dict() for s in self.sources]
        out["eval"] = [e.to_dict() for e in self.evals]
        return out

    def to_toml(self) -> str:
        return dumps_toml({k: v for k, v in self.to_dict().items() if k != "name"})


# -- reading and checking --------------------------------------------------------------------------

_SOURCE_FIELDS = {f.name: f for f in fields(Source)}
_TOP = {"name", "description", "heldout", "split_seed", "curriculum", "sources", "eval"}


def recipe_from_dict(data: dict[str, Any], name: str) -> Recipe:
    """A checked recipe; every mistake is a :class:`RecipeError` naming the field."""
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {name}: expected a table of settings")
    unknown = set(data) - _TOP
    if unknown:
        raise RecipeError(f"recipe {name}: unknown setting(s) {', '.join(sorted(unknown))}")
    sources = [_source(s, name, f"sources[{i}]") for i, s in enumerate(_list(data, "sources"))]
    evals = [_source(s, name, f"eval[{i}]") for i, s in enumerate(_list(data, "eval"))]
    if not sources:
        raise RecipeError(f"recipe {name}: no [[sources]]")
    recipe = Recipe(
        name=name,
        sources=sources,
        evals=evals,
        heldout=_number(data.get("heldout", 0.1), name, "heldout"),
        split_seed=int(_number(data.get("split_seed", 0), name, "split_seed")),
        curriculum=data.get("curriculum") or None,
        description=str(data.get("description", "")),
    )
    check_recipe(recipe)
    return recipe


def check_recipe_name(name: str) -> str:
    """``name`` when a recipe can be saved under it; a :class:`RecipeError` says why not.

    The name becomes ``recipes/NAME.toml`` and the start of run names, so it must be a plain
    file name everywhere: no folders, no control characters, nothing Windows reserves."""
    why = _name_problem(name)
    if why:
        shown = repr(name[:40] + ("..." if len(name) > 40 else ""))
        raise RecipeError(f"cannot save a recipe named {shown}: {why}")
    return name


def _name_problem(name: str) -> str | None:
    if not name.strip():
        return "a recipe needs a name"
    if len(name) > MAX_NAME or len(name.encode("utf-8", "replace")) > MAX_NAME_BYTES:
        return (
            f"the name is too long (at most {MAX_NAME} characters, fewer in scripts that need "
            "several bytes a letter)"
        )
    if name != name.strip() or name.startswith("."):
        return "the name starts or ends with a space, or starts with a dot"
    if not _NAME_CHARS.fullmatch(name):
        bad = sorted({c for c in name if not _NAME_CHARS.fullmatch(c)})
        shown = [f"'{c}'" for c in bad if c.isprintable()][:5]
        shown += ["a control character"] if any(not c.isprintable() for c in bad) else []
        return (
            f"it contains {' and '.join(shown)}; use letters, digits, spaces "
            "and - _ . , + ( ) @ & ' (no folders, no control characters)"
        )
    if name == BUILTIN:
        return "that is the built-in recipe; choose another name"
    if Path(name).suffix.lower() in (".toml", ".json"):
        return "a name ending in .toml or .json reads as a recipe file's path; leave it out"
    if _DEVICE_NAMES.fullmatch(name):
        return "Windows keeps that name for a device; choose another name"
    return None


def check_recipe(recipe: Recipe) -> None:
    name = recipe.name
    if not 0 < recipe.heldout < 0.9:
        raise RecipeError(f"recipe {name}: heldout must be between 0 and 0.9")
    if recipe.curriculum not in (None, *CURRICULA):
        raise RecipeError(f"recipe {name}: curriculum is one of {', '.join(CURRICULA)}")
    for group in (recipe.sources, recipe.evals):
        names = [s.name for s in group]
        if len(set(names)) != len(names):
            raise RecipeError(f"recipe {name}: two sources or eval sets share a name")
        for s in group:
            _check_filters(name, s)
    for s in recipe.sources:
        if (s.share is None) == (s.tokens is None):
            raise RecipeError(f"recipe {name}: source {s.name!r} needs a share or tokens (one)")
        if (s.share is not None and s.share < 0) or (s.tokens is not None and s.tokens < 0):
            raise RecipeError(f"recipe {name}: source {s.name!r} has a negative amount")
        if s.share is not None and not s.share <= MAX_SHARE:  # `not <=`: NaN too
            raise RecipeError(
                f"recipe {name}: source {s.name!r} has a share of {s.share:g}; shares are "
                f"relative weights (such as 0.7 or 70) up to {MAX_SHARE:,.0f}"
            )
        if s.tokens is not None and s.tokens > MAX_TOKENS:
            raise RecipeError(
                f"recipe {name}: source {s.name!r} has a budget of {s.tokens:.3g} tokens; "
                f"a budget is at most {MAX_TOKENS:,} tokens"
            )
    if sum(s.share or 0 for s in recipe.sources) + sum(s.tokens or 0 for s in recipe.sources) <= 0:
        raise RecipeError(f"recipe {name}: every source has a zero share")


def _check_filters(recipe: str, s: Source) -> None:
    """A filter that can select nothing by its spelling alone is refused: an empty value, a
    control character, or a generated page's status the studio does not have (``status=acepted``
    trained on no synthetic page without a word)."""
    from studio.generate.record import PAGE_STATUSES

    for key in ("model", "status", "cell", "exclude_cell", "path"):
        value = getattr(s, key)
        if value is None:
            continue
        if not value.strip():
            raise RecipeError(f"recipe {recipe}: {s.name!r} has an empty {key}: leave it out")
        if any(not c.isprintable() for c in value):
            raise RecipeError(f"recipe {recipe}: {s.name!r} has a control character in its {key}")
    if s.status is not None and s.status not in PAGE_STATUSES:
        raise RecipeError(
            f"recipe {recipe}: {s.name!r} has status {s.status[:40]!r}; a generated page's "
            f"status is one of {', '.join(PAGE_STATUSES)}"
        )


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise RecipeError(f"{key} must be a list of tables ([[{key}]])")
    return value


def _number(value: Any, recipe: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecipeError(f"recipe {recipe}: {key} must be a number, not {value!r}")
    return float(value)


def _source(data: Any, recipe: str, where: str) -> Source:
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {recipe}: {where} must be a table")
    unknown = set(data) - set(_SOURCE_FIELDS)
    if unknown:
        raise RecipeError(f"recipe {recipe}: {where} has unknown key(s) {', '.join(unknown)}")
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise RecipeError(f"recipe {recipe}: {where} needs a name")
    kind = data.get("kind", "all")
    if kind not in KINDS:
        raise RecipeError(f"recipe {recipe}: {where} kind is one of {', '.join(KINDS)}")
    values: dict[str, Any] = {"name": data["name"].strip(), "kind": kind}
    for key in ("share", "threshold"):
        if data.get(key) is not None:
            values[key] = _number(data[key], recipe, f"{where}.{key}")
    if data.get("tokens") is not None:
        values["tokens"] = int(_number(data["tokens"], recipe, f"{where}.tokens"))
    for key in ("model", "status", "cell", "exclude_cell", "path"):
        if data.get(key) is not None:
            if not isinstance(data[key], str):
                raise RecipeError(f"recipe {recipe}: {where}.{key} must be text")
            values[key] = data[key]
    if data.get("code") is not None:
        if not isinstance(data["code"], bool):
            raise RecipeError(f"recipe {recipe}: {where}.code must be true or false")
        values["code"] = data["code"]
    return Source(**values)


def read_recipe(path: Path) -> Recipe:
    """A recipe file, TOML or JSON by its suffix."""
    try:
        raw = paths.read_small_file(path, MAX_RECIPE_BYTES)
    except (OSError, ValueError) as exc:
        raise RecipeError(
            f"cannot read recipe {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from exc
    try:
        text = raw.decode("utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise RecipeError(f"recipe {path.name} is not UTF-8 text (byte {exc.start:,})") from exc
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise RecipeError(f"recipe {path.name} is not valid {path.suffix[1:]}: {exc}") from exc
    except RecursionError as exc:  # 100,000 nested brackets
        raise RecipeError(f"recipe {path.name} is nested too deeply to read") from exc
    return recipe_from_dict(data, path.stem)


# -- finding recipes -------------------------------------------------------------------------------


def builtin_recipe() -> Recipe:
    """``all``: every document, with the fixed held-out split and the standard evaluation sets."""
    return Recipe(
        name=BUILTIN,
        description="Every document in the project, as imported",
        sources=[Source("all documents", kind="all", share=1.0)],
        evals=standard_evals(),
    )


def standard_evals() -> list[Source]:
    """Held-out web pages, held-out pages the classifier keeps (textbook-style), and held-out
    synthetic pages; a set a project cannot fill is left out of its runs."""
    return [
        Source("web", kind="web"),
        Source("textbook", kind="filtered", model="latest"),
        Source("synthetic", kind="synthetic", status="accepted"),
    ]


def project_recipe_dir(root: Path) -> Path:
    return root / RECIPE_DIR


def recipe_paths(root: Path) -> dict[str, tuple[str, Path | None]]:
    """name -> (origin, file) of every recipe a project can use; the project's own win."""
    found: dict[str, tuple[str, Path | None]] = {BUILTIN: ("built-in", None)}
    for origin, folder in (("preset", paths.resource("recipes")), ("project", root / RECIPE_DIR)):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix in (".toml", ".json") and path.stem != BUILTIN:
                    found[path.stem] = (origin, path)
    return found


def load_recipe(root: Path, name: str) -> Recipe:
    """The recipe called ``name`` in the project at ``root``, or a recipe file's path (a
    project's or preset recipe wins over a file of that name in the working folder)."""
    known = recipe_paths(root)
    if name in known:
        _origin, path = known[name]
        return builtin_recipe() if path is None else read_recipe(path)
    as_path = Path(name)
    if as_path.suffix in (".toml", ".json") and as_path.exists():
        return read_recipe(as_path)
    if "/" in name or os.sep in name:  # a path, not a name: say what is wrong with the file
        if not as_path.exists():
            raise RecipeError(f"no recipe file {name}")
        raise RecipeError(f"{name} is not a recipe file: a recipe file ends in .toml or .json")
    raise RecipeError(f"no recipe {name!r} (known: {', '.join(sorted(known))})")


def save_recipe(root: Path, recipe: Recipe) -> Path:
    """Write ``recipes/NAME.toml`` in the project (atomically); returns its path."""
    check_recipe_name(recipe.name)
    check_recipe(recipe)
    folder = root / RECIPE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{recipe.name}.toml"
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(recipe.to_toml(), "utf-8")
    tmp.replace(path)
    return path


# -- a TOML writer for recipes (the standard library reads TOML but does not write it) -------------


def dumps_toml(data: dict[str, Any]) -> str:
    """Scalars first, then arrays of tables: all a recipe holds."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, list)]
    for key, items in data.items():
        if isinstance(items, list):
            for item in items:
                lines += ["", f"[[{key}]]"]
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecipeError(f"cannot write {value} in a recipe")
        return repr(value)
    # a JSON string is a valid TOML basic string (same escapes)
    return json.dumps(str(value), ensure_ascii=False)
