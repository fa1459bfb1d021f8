import re

from flask import current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.autocommit import autocommit
from app.extensions import csrf, db, limiter
from app.jobs.webhooks import request_drain
from app.providers import SignatureError
from app.services.money.webhooks import PROVIDER_MODULES, store_event
from app.webhooks import bp

# What a provider's signature header looks like; anything else is refused before the body is
# read. Stripe: "t=<unix time>,v1=<hex HMAC>", maybe with other schemes (v0 in test mode).
_SCHEME = r"[a-z0-9]{1,16}=[\w-]{1,256}"
_STRIPE_SIGNATURE = re.compile(
    rf"t=\d{{1,20}}(?:,{_SCHEME}){{0,8}},v1=[0-9a-f]{{64}}(?:,{_SCHEME}){{0,8}}", re.ASCII
)
_LEMON_SIGNATURE = re.compile(r"\s*[0-9a-f]{64}\s*", re.ASCII)

# (route name, provider, signature header, its shape, secret setting)
_ENDPOINTS = {
    "stripe": ("stripe", "Stripe-Signature", _STRIPE_SIGNATURE, "STRIPE_WEBHOOK_SECRET"),
    # Events about connected accounts: their own endpoint and secret in Stripe's dashboard.
    "stripe-connect": (
        "stripe_connect",
        "Stripe-Signature",
        _STRIPE_SIGNATURE,
        "STRIPE_CONNECT_WEBHOOK_SECRET",
    ),
    "lemonsqueezy": (
        "lemon_squeezy",
        "X-Signature",
        _LEMON_SIGNATURE,
        "LEMONSQUEEZY_WEBHOOK_SECRET",
    ),
}


@bp.url_value_preprocessor
def limit_body(_endpoint: str | None, _values: dict | None) -> None:
    """Webhook bodies may hold at most ``WEBHOOK_MAX_CONTENT_LENGTH`` bytes (413 beyond)."""
    # URL value preprocessors run before every before_request function, some of which read
    # forms: the tighter limit has to hold before anything touches the body. One byte more
    # than allowed, because werkzeug cuts a chunked body at the limit without an error:
    # a body that reaches limit + 1 is known to be too large (see receive).
    request.max_content_length = current_app.config["WEBHOOK_MAX_CONTENT_LENGTH"] + 1


@bp.errorhandler(RequestEntityTooLarge)
def body_too_large(_exc: RequestEntityTooLarge):
    limit = current_app.config["WEBHOOK_MAX_CONTENT_LENGTH"]
    return jsonify(error=f"body larger than {limit} bytes"), 413


@bp.post("/<name>")
@csrf.exempt
@limiter.exempt
@autocommit
def receive(name: str):
    """Verify, store (one INSERT, committed on its own), then answer 200; a drain is
    requested after that commit.
    A missing or malformed signature header answers 400 without reading the body; a body over
    the limit 413 (it is read at most up to the limit); a bad signature 400. Nothing is
    stored in any of these cases."""
    if name not in _ENDPOINTS:
        return jsonify(error="unknown provider"), 404
    provider, header, shape, secret_setting = _ENDPOINTS[name]
    signature = request.headers.get(header)
    if signature is None or not shape.fullmatch(signature):
        return jsonify(error=f"signature rejected: missing or malformed {header} header"), 400
    limit = current_app.config["WEBHOOK_MAX_CONTENT_LENGTH"]
    if (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()
    body = request.get_data(cache=False)
    if len(body) > limit:  # a chunked body, cut at limit + 1
        raise RequestEntityTooLarge()
    try:
        event = PROVIDER_MODULES[provider].verify(
            body, signature, current_app.config[secret_setting]
        )
    except SignatureError as exc:
        return jsonify(error=f"signature rejected: {exc}"), 400
    event_pk = store_event(provider, event)
    db.session.commit()
    if event_pk is not None:
        request_drain()
    return jsonify(received=True, duplicate=event_pk is None)
