from flask import current_app, jsonify, request

from app.autocommit import autocommit
from app.extensions import csrf, db, limiter
from app.jobs.webhooks import request_drain
from app.providers import SignatureError
from app.services.webhooks import PROVIDER_MODULES, store_event
from app.webhooks import bp

# (route name, provider, signature header, secret setting)
_ENDPOINTS = {
    "stripe": ("stripe", "Stripe-Signature", "STRIPE_WEBHOOK_SECRET"),
    "lemonsqueezy": ("lemon_squeezy", "X-Signature", "LEMONSQUEEZY_WEBHOOK_SECRET"),
}


@bp.post("/<name>")
@csrf.exempt
@limiter.exempt
@autocommit
def receive(name: str):
    """Verify, store (one INSERT, committed on its own), then answer 200; a drain is
    requested after that commit.
    A bad or missing signature answers 400 and stores nothing."""
    if name not in _ENDPOINTS:
        return jsonify(error="unknown provider"), 404
    provider, header, secret_setting = _ENDPOINTS[name]
    try:
        event = PROVIDER_MODULES[provider].verify(
            request.get_data(cache=False),
            request.headers.get(header),
            current_app.config[secret_setting],
        )
    except SignatureError as exc:
        return jsonify(error=f"signature rejected: {exc}"), 400
    event_pk = store_event(provider, event)
    db.session.commit()
    if event_pk is not None:
        request_drain()
    return jsonify(received=True, duplicate=event_pk is None)
