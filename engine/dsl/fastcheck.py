"""A fast yes/no check of JSON Schema subtrees, so jsonschema only walks the parts that fail.

jsonschema creates a validator object for every value it descends into: about 7 µs each,
~1.4 s for a 5,000-step workflow. Its answers (and its error objects) stay the truth; this
module only lets the validator skip a subtree that is certainly valid.

``compile_check(schema, root)`` returns an exact predicate, or None when the schema uses a
keyword this module does not implement (then jsonschema decides, as if this module did not
exist). A predicate must never say True where jsonschema would report an error; the tests
compare the two on generated documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

# Keywords that never make a value invalid.
_ANNOTATIONS = frozenset(
    {"description", "title", "default", "examples", "$comment", "$schema", "$defs", "format"}
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES: dict[str, Check] = {
    "string": lambda value: isinstance(value, str),
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
    "number": _is_number,
    "integer": _is_integer,
}


def canonical(value: Any) -> Any:
    """A hashable form in which two values are equal exactly when JSON Schema says so."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, dict):
        return ("object", frozenset((key, canonical(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return ("array", tuple(canonical(item) for item in value))
    return value


class Checks:
    """Compiles the subschemas of one root schema into predicates (cached by identity)."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self._cache: dict[int, Check | None] = {}
        self._keep: list[Any] = []  # the schemas whose ids key the cache stay alive

    def check(self, schema: Any) -> Check | None:
        """The exact predicate of ``schema``, or None if it cannot be decided here."""
        key = id(schema)
        if key in self._cache:
            return self._cache[key]
        self._keep.append(schema)
        self._cache[key] = None  # a reference cycle reaching back here is not decided here
        try:
            compiled = self._compile(schema)
        except (re.error, KeyError, TypeError, ValueError):
            compiled = None
        self._cache[key] = compiled
        return compiled

    def _compile(self, schema: Any) -> Check | None:
        if schema is True:
            return lambda value: True
        if schema is False:
            return lambda value: False
        if not isinstance(schema, dict):
            return None
        checks: list[Check] = []
        for keyword, argument in schema.items():
            if keyword in _ANNOTATIONS:
                continue
            if keyword in ("then", "else") and "if" in schema:
                continue
            builder = getattr(self, "_k_" + keyword.lstrip("$"), None)
            if builder is None:
                return None
            check = builder(argument, schema)
            if check is None:
                return None
            checks.append(check)
        if not checks:
            return lambda value: True
        if len(checks) == 1:
            return checks[0]
        return lambda value: all(check(value) for check in checks)

    # ------------------------------------------------------------------ keywords

    def _k_ref(self, reference: str, schema: dict[str, Any]) -> Check | None:
        if not reference.startswith("#/"):
            return None
        target: Any = self.root
        for part in reference[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        if "$id" in target:
            return None
        return self.check(target)

    def _k_type(self, kind: Any, schema: dict[str, Any]) -> Check | None:
        if isinstance(kind, str):
            return _TYPES[kind]
        checks = [_TYPES[k] for k in kind]
        return lambda value: any(check(value) for check in checks)

    def _k_enum(self, choices: list[Any], schema: dict[str, Any]) -> Check | None:
        allowed = {canonical(choice) for choice in choices}
        return lambda value: _safe_in(value, allowed)

    def _k_const(self, constant: Any, schema: dict[str, Any]) -> Check | None:
        expected = canonical(constant)
        return lambda value: _safe_equal(value, expected)

    def _k_pattern(self, pattern: str, schema: dict[str, Any]) -> Check | None:
        search = re.compile(pattern).search
        return lambda value: not isinstance(value, str) or search(value) is not None

    def _k_minimum(self, limit: float, schema: dict[str, Any]) -> Check | None:
        return lambda value: not _is_number(value) or value >= limit

    def _k_maximum(self, limit: float, schema: dict[str, Any]) -> Check | None:
        return lambda value: not _is_number(value) or value <= limit

    def _k_exclusiveMinimum(self, limit: float, schema: dict[str, Any]) -> Check | None:
        return lambda value: not _is_number(value) or value > limit

    def _k_exclusiveMaximum(self, limit: float, schema: dict[str, Any]) -> Check | None:
        return lambda value: not _is_number(value) or value < limit

    def _k_minLength(self, limit: int, schema: dict[str, Any]) -> Check | None:
        return lambda value: not isinstance(value, str) or len(value) >= limit

    def _k_maxLength(self, limit: int, schema: dict[str, Any]) -> Check | None:
        return lambda value: not isinstance(value, str) or len(value) <= limit

    def _k_minItems(self, limit: int, schema: dict[str, Any]) -> Check | None:
        return lambda value: not isinstance(value, list) or len(value) >= limit

    def _k_maxItems(self, limit: int, schema: dict[str, Any]) -> Check | None:
        return lambda value: not isinstance(value, list) or len(value) <= limit

    def _k_minProperties(self, limit: int, schema: dict[str, Any]) -> Check | None:
        return lambda value: not isinstance(value, dict) or len(value) >= limit

    def _k_maxProperties(self, limit: int, schema: dict[str, Any]) -> Check | None:
        return lambda value: not isinstance(value, dict) or len(value) <= limit

    def _k_uniqueItems(self, unique: bool, schema: dict[str, Any]) -> Check | None:
        if not unique:
            return lambda value: True
        return lambda value: not isinstance(value, list) or _all_different(value)

    def _k_required(self, names: list[str], schema: dict[str, Any]) -> Check | None:
        return lambda value: not isinstance(value, dict) or all(name in value for name in names)

    def _k_properties(self, properties: dict[str, Any], schema: dict[str, Any]) -> Check | None:
        compiled = {name: self.check(sub) for name, sub in properties.items()}
        if any(check is None for check in compiled.values()):
            return None

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for name, item in value.items():
                sub = compiled.get(name)
                if sub is not None and not sub(item):
                    return False
            return True

        return check

    def _k_patternProperties(
        self, patterns: dict[str, Any], schema: dict[str, Any]
    ) -> Check | None:
        compiled = [(re.compile(p).search, self.check(sub)) for p, sub in patterns.items()]
        if any(check is None for _, check in compiled):
            return None
        return lambda value: (
            not isinstance(value, dict)
            or all(
                check(item)  # type: ignore[misc]
                for key, item in value.items()
                for search, check in compiled
                if search(key)
            )
        )

    def _k_additionalProperties(self, extra: Any, schema: dict[str, Any]) -> Check | None:
        sub = self.check(extra)
        if sub is None:
            return None
        known = frozenset(schema.get("properties", ()))
        patterns = [re.compile(p).search for p in schema.get("patternProperties", ())]

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for key, item in value.items():
                if key in known or any(search(key) for search in patterns):
                    continue
                if not sub(item):
                    return False
            return True

        return check

    def _k_propertyNames(self, names: Any, schema: dict[str, Any]) -> Check | None:
        sub = self.check(names)
        if sub is None:
            return None
        return lambda value: not isinstance(value, dict) or all(sub(key) for key in value)

    def _k_items(self, items: Any, schema: dict[str, Any]) -> Check | None:
        if "prefixItems" in schema:
            return None
        sub = self.check(items)
        if sub is None:
            return None
        return lambda value: not isinstance(value, list) or all(sub(item) for item in value)

    def _subschemas(self, schemas: list[Any]) -> list[Check] | None:
        compiled = [self.check(sub) for sub in schemas]
        if any(check is None for check in compiled):
            return None
        return compiled  # type: ignore[return-value]

    def _k_allOf(self, schemas: list[Any], schema: dict[str, Any]) -> Check | None:
        compiled = self._subschemas(schemas)
        if compiled is None:
            return None
        dispatch = self._dispatch(schemas)
        if dispatch is not None:
            return lambda value: (
                dispatch(value)
                if isinstance(value, dict)
                else all(check(value) for check in compiled)
            )
        return lambda value: all(check(value) for check in compiled)

    def _dispatch(self, schemas: list[Any]) -> Check | None:
        """For an object, an allOf of ``if {name: const} then …`` rules on one property name.

        Only the rules whose constant equals the object's value can apply (the others' ``if``
        is false and they have no ``else``), so look them up instead of trying each: the
        workflow schema chooses an action's `with` schema like this, once per step.
        """
        name = None
        table: dict[Any, list[Check]] = {}
        for rule in schemas:
            if not isinstance(rule, dict) or set(rule) != {"if", "then"}:
                return None
            condition = rule["if"]
            if not isinstance(condition, dict) or set(condition) != {"properties", "required"}:
                return None
            properties = condition["properties"]
            if not isinstance(properties, dict) or len(properties) != 1:
                return None
            ((key, constant),) = properties.items()
            if condition["required"] != [key] or name not in (None, key):
                return None
            if not isinstance(constant, dict) or set(constant) != {"const"}:
                return None
            then = self.check(rule["then"])
            if then is None:
                return None
            name = key
            table.setdefault(canonical(constant["const"]), []).append(then)
        if name is None:
            return None

        def check(value: dict[str, Any]) -> bool:
            if name not in value:
                return True
            return all(then(value) for then in table.get(canonical(value[name]), ()))

        return check

    def _k_anyOf(self, schemas: list[Any], schema: dict[str, Any]) -> Check | None:
        compiled = self._subschemas(schemas)
        if compiled is None:
            return None
        return lambda value: any(check(value) for check in compiled)

    def _k_oneOf(self, schemas: list[Any], schema: dict[str, Any]) -> Check | None:
        compiled = self._subschemas(schemas)
        if compiled is None:
            return None
        return lambda value: sum(1 for check in compiled if check(value)) == 1

    def _k_not(self, negated: Any, schema: dict[str, Any]) -> Check | None:
        sub = self.check(negated)
        if sub is None:
            return None
        return lambda value: not sub(value)

    def _k_if(self, condition: Any, schema: dict[str, Any]) -> Check | None:
        compiled = self._subschemas([condition, schema.get("then", True), schema.get("else", True)])
        if compiled is None:
            return None
        test, then, otherwise = compiled
        return lambda value: then(value) if test(value) else otherwise(value)


def _safe_in(value: Any, allowed: set[Any]) -> bool:
    try:
        return canonical(value) in allowed
    except TypeError:
        return False


def _safe_equal(value: Any, expected: Any) -> bool:
    return canonical(value) == expected


def _all_different(items: list[Any]) -> bool:
    try:
        return len({canonical(item) for item in items}) == len(items)
    except TypeError:
        return False
