"""Loader for Amazon's official SP-API models (Swagger 2.0 JSON) and cheap request/response checks.

The caller names the model directory (the test suite vendors the models; an installed amz2erp has none).
Everything returns ``None`` / an empty result without models, so the simulator runs without them.

Public API:
    load_models(models_dir) -> SpApiModels | None          (cached per directory)
    validate_request(operation_id, query, body, models=None) -> list[str]
    validate_response(operation_id, status, body, models=None) -> list[str]   (needs jsonschema)

``operation_id`` is the model's operationId (``getOrders``, ``searchOrders``, ``createReport``…). Two models
reuse ``getOrder``; qualify with the model file stem to disambiguate (``orders_2026-01-01:getOrder``), or use
the simulator's alias ``getOrder2026``. Plain ``getOrder`` means Orders v0.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

MODEL_FILES = (
    "ordersV0.json",
    "orders_2026-01-01.json",
    "reports_2021-06-30.json",
    "catalogItems_2022-04-01.json",
    "sellers.json",
    "financesV0.json",
    "listingsItems_2021-08-01.json",
    "tokens_2021-03-01.json",
    "finances_2024-06-19.json",
)

#: simulator operation names that differ from the model's (qualified) operationId
ALIASES = {"getOrder2026": "orders_2026-01-01:getOrder"}

_RATE_RE = re.compile(r"\|\s*([0-9.]+)\s*\|\s*([0-9]+)\s*\|")


@dataclass
class Operation:
    model: str  # file stem, e.g. "ordersV0"
    operation_id: str
    method: str
    path: str
    spec: dict[str, Any]
    doc: dict[str, Any]  # the whole model document (for $ref resolution)
    rate: float | None = None
    burst: int | None = None


@dataclass
class SpApiModels:
    directory: Path
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)  # "stem:opId" -> Operation

    def operation(self, operation_id: str) -> Operation | None:
        operation_id = ALIASES.get(operation_id, operation_id)
        if ":" in operation_id:
            return self.operations.get(operation_id)
        # prefer v0 orders for the ambiguous getOrder
        for stem in [m[:-5] for m in MODEL_FILES]:
            op = self.operations.get(f"{stem}:{operation_id}")
            if op is not None:
                return op
        return None

    def rate_limit(self, operation_id: str) -> tuple[float, int] | None:
        op = self.operation(operation_id)
        if op is None or op.rate is None or op.burst is None:
            return None
        return op.rate, op.burst


_cache: dict[str, SpApiModels | None] = {}
_cache_lock = threading.Lock()


def _parse_rate(description: str) -> tuple[float | None, int | None]:
    idx = description.lower().find("usage plan")  # Finances 2024-06-19 writes "Usage plan"
    if idx < 0:
        return None, None
    m = _RATE_RE.search(description, idx)
    if not m:
        return None, None
    return float(m.group(1)), int(m.group(2))


def load_models(models_dir: str | Path) -> SpApiModels | None:
    """The models in ``models_dir``; ``None`` when it holds none of MODEL_FILES."""
    directory = Path(models_dir)
    key = str(directory)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        models = SpApiModels(directory=directory)
        for name in MODEL_FILES:
            p = directory / name
            if not p.is_file():
                continue
            doc = json.loads(p.read_text(encoding="utf-8"))
            stem = name[:-5]
            models.docs[stem] = doc
            for path, ops in doc.get("paths", {}).items():
                common = ops.get("parameters", [])
                for method, spec in ops.items():
                    if method == "parameters" or not isinstance(spec, dict):
                        continue
                    spec = dict(spec)
                    spec["parameters"] = list(common) + list(spec.get("parameters", []))
                    rate, burst = _parse_rate(spec.get("description", ""))
                    op = Operation(stem, spec["operationId"], method.upper(), path, spec, doc, rate, burst)
                    models.operations[f"{stem}:{op.operation_id}"] = op
        result = models if models.operations else None
        _cache[key] = result
        return result


# --------------------------------------------------------------------------- request checks (no deps)


def _is_datetime(value: str) -> bool:
    v = value.strip().replace(" ", "T", 1) if "T" not in value else value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    try:
        datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


def _split_values(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(x for x in v.split(",") if x != "")
    return out


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 20:
        ref = schema["$ref"]
        name = ref.rsplit("/", 1)[-1]
        schema = doc.get("definitions", {}).get(name, {})
        seen += 1
    return schema


def _check_scalar(name: str, value: str, spec: dict[str, Any]) -> list[str]:
    errs: list[str] = []
    typ = spec.get("type")
    if "enum" in spec and value not in spec["enum"]:
        errs.append(f"{name}: {value!r} is not one of {spec['enum']}")
    if typ == "integer":
        try:
            iv = int(value)
        except ValueError:
            return [f"{name}: {value!r} is not an integer"]
        if "minimum" in spec and iv < spec["minimum"]:
            errs.append(f"{name}: {iv} is below the minimum {spec['minimum']}")
        if "maximum" in spec and iv > spec["maximum"]:
            errs.append(f"{name}: {iv} is above the maximum {spec['maximum']}")
    elif typ == "boolean" and value.lower() not in ("true", "false"):
        errs.append(f"{name}: {value!r} is not a boolean")
    elif typ == "string" and spec.get("format") == "date-time" and not _is_datetime(value):
        errs.append(f"{name}: {value!r} is not an ISO 8601 date-time")
    return errs


def _check_body(
    doc: dict[str, Any], schema: dict[str, Any], body: Any, where: str, depth: int = 0
) -> list[str]:
    if depth > 6:
        return []
    schema = _resolve(doc, schema)
    errs: list[str] = []
    typ = schema.get("type")
    if typ == "object" or "properties" in schema:
        if not isinstance(body, dict):
            return [f"{where}: expected an object"]
        for req in schema.get("required", []):
            if req not in body:
                errs.append(f"{where}: missing required property {req!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in body and body[key] is not None:
                errs.extend(_check_body(doc, sub, body[key], f"{where}.{key}", depth + 1))
    elif typ == "array":
        if not isinstance(body, list):
            return [f"{where}: expected an array"]
        if "maxItems" in schema and len(body) > schema["maxItems"]:
            errs.append(f"{where}: more than {schema['maxItems']} items")
        if "minItems" in schema and len(body) < schema["minItems"]:
            errs.append(f"{where}: fewer than {schema['minItems']} items")
        for i, item in enumerate(body[:100]):
            errs.extend(_check_body(doc, schema.get("items", {}), item, f"{where}[{i}]", depth + 1))
    elif "enum" in schema and body not in schema["enum"]:
        errs.append(f"{where}: {body!r} is not one of {schema['enum']}")
    elif typ == "string" and not isinstance(body, str):
        errs.append(f"{where}: expected a string")
    elif typ == "string" and schema.get("format") == "date-time" and not _is_datetime(body):
        errs.append(f"{where}: {body!r} is not an ISO 8601 date-time")
    return errs


def validate_request(
    operation_id: str,
    query: dict[str, list[str]],
    body: Any = None,
    models: SpApiModels | None = None,
    *,
    skip_required: tuple[str, ...] = (),
) -> list[str]:
    """Check query parameters (and a JSON body) against the model. Unknown parameters are ignored (the
    library adds junk marketplace params). Returns a list of violations (empty = fine, or no models)."""
    if models is None:
        return []
    op = models.operation(operation_id)
    if op is None:
        return []
    errs: list[str] = []
    for prm in op.spec.get("parameters", []):
        prm = _resolve(op.doc, prm)
        name = str(prm.get("name", ""))
        loc = prm.get("in")
        if loc == "query":
            values = query.get(name)
            if not values:
                if prm.get("required") and name not in skip_required:
                    errs.append(f"{name}: required query parameter missing")
                continue
            if prm.get("type") == "array":
                items = _split_values(values)
                if "maxItems" in prm and len(items) > prm["maxItems"]:
                    errs.append(f"{name}: more than {prm['maxItems']} values")
                for item in items:
                    errs.extend(_check_scalar(name, item, prm.get("items", {})))
            else:
                errs.extend(_check_scalar(name, values[-1], prm))
        elif loc == "body":
            if body is None:
                if prm.get("required"):
                    errs.append("body: required request body missing")
                continue
            errs.extend(_check_body(op.doc, prm.get("schema", {}), body, "body"))
    return errs


# --------------------------------------------------------------------------- response checks (jsonschema)


def _to_jsonschema(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    out["definitions"] = doc.get("definitions", {})
    return out


def validate_response(
    operation_id: str, status: int, body: Any, models: SpApiModels | None = None
) -> list[str]:
    """Validate a response body against the model's schema for ``status`` (or ``default``).

    Returns a list of error messages; empty when valid, when no models are given, or when jsonschema is
    not installed (check ``jsonschema_available()`` if that distinction matters)."""
    if models is None or not jsonschema_available():
        return []
    import jsonschema

    op = models.operation(operation_id)
    if op is None:
        return [f"unknown operation {operation_id!r}"]
    responses = op.spec.get("responses", {})
    resp = responses.get(str(status)) or responses.get("default")
    if resp is None:
        return [f"{operation_id}: status {status} is not documented"]
    schema = resp.get("schema")
    if schema is None:
        return []
    full = _to_jsonschema(op.doc, schema)
    validator = jsonschema.Draft4Validator(full)
    return [f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]


def jsonschema_available() -> bool:
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        return False
    return True
