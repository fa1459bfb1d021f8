"""Stripe's request encoding and errors for the fake server: form fields with brackets
(``metadata[payout_id]=…``, ``capabilities[transfers][requested]=true``, ``expand[0]=…``) as
the official SDK sends them, checked strictly (an unknown parameter is refused, as Stripe
does, so a typo in the app fails its tests), and errors in Stripe's JSON shape."""

from __future__ import annotations

import re

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class StripeError(Exception):
    """An error answer. ``saved``: whether the idempotency layer keeps it for the key, as
    Stripe keeps every answer once the endpoint began (validation errors, rate limits and
    authentication failures come before that and are not kept)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        saved: bool = True,
    ) -> None:
        super().__init__(message)
        self.status, self.saved = status, saved
        fields = {"type": type, "code": code, "message": message, "param": param}
        self.body = {"error": {key: value for key, value in fields.items() if value is not None}}


def decode(pairs: list[tuple[str, str]]) -> dict:
    """Bracketed form fields to nested dicts (``a[b][c]=v`` → ``{"a": {"b": {"c": "v"}}}``;
    numbered keys stay dict keys, which no endpoint here needs as a list)."""
    params: dict = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise StripeError(400, f"Invalid parameter name: {key}", saved=False)
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise StripeError(400, f"Invalid parameter: {key}", param=path[0], saved=False)
        if isinstance(node.get(path[-1]), dict):
            raise StripeError(400, f"Invalid parameter: {key}", param=path[0], saved=False)
        node[path[-1]] = value
    return params


def only(params: dict, allowed: set[str]) -> None:
    """Refuse unknown parameters (``expand`` is accepted everywhere and ignored)."""
    for name in params:
        if name not in allowed and name != "expand":
            raise StripeError(
                400,
                f"Received unknown parameter: {name}",
                code="parameter_unknown",
                param=name,
                saved=False,
            )


def text(params: dict, name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise StripeError(
                400,
                f"Missing required param: {name}.",
                code="parameter_missing",
                param=name,
                saved=False,
            )
        return None
    if not isinstance(value, str):
        raise StripeError(400, f"Invalid string: {name}", param=name, saved=False)
    return value


def integer(
    params: dict,
    name: str,
    *,
    minimum: int,
    maximum: int | None = None,
    required: bool = False,
) -> int | None:
    raw = text(params, name, required=required)
    if raw is None:
        return None
    bound = f" and less than or equal to {maximum}" if maximum is not None else ""
    if not re.fullmatch(r"-?[0-9]{1,18}", raw) or not (
        minimum <= int(raw) <= (maximum if maximum is not None else int(raw))
    ):
        raise StripeError(
            400,
            f"Invalid integer: {raw} (must be greater than or equal to {minimum}{bound})",
            code="parameter_invalid_integer",
            param=name,
            saved=False,
        )
    return int(raw)


def currency(params: dict) -> str:
    value = text(params, "currency", required=True).lower()
    if not re.fullmatch(r"[a-z]{3}", value):
        raise StripeError(400, f"Invalid currency: {value}", param="currency", saved=False)
    return value


def metadata(params: dict) -> dict[str, str]:
    """Stripe's limits: up to 50 keys of up to 40 characters, values up to 500."""
    value = params.get("metadata") or {}
    if not isinstance(value, dict) or len(value) > 50:
        raise StripeError(400, "Invalid metadata", param="metadata", saved=False)
    for key, item in value.items():
        if len(key) > 40 or not isinstance(item, str) or len(item) > 500:
            raise StripeError(400, f"Invalid metadata[{key}]", param="metadata", saved=False)
    return {key: item for key, item in value.items() if item != ""}
