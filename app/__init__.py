"""Application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    from app import cli, errors, input_guard, navigation, pool_ping, security
    from app.config import (
        Config,
        check_config,
        database_binds,
        engine_options,
        limiter_storage_url,
    )
    from app.extensions import csrf, db, htmx, limiter, login_manager, migrate
    from app.jobs import queueing
    from app.money import format_money, format_percent
    from app.providers.stripe_api import stripe_test_mode
    from app.services.money.commission_states import label as commission_label

    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_object(Config())
    if test_config:
        app.config.update(test_config)
    check_config(app.config)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config)
    app.config["RATELIMIT_STORAGE_URI"] = limiter_storage_url(app.config["REDIS_URL"])
    if app.config["PROXY_FIX_X_FOR"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_FIX_X_FOR"], x_proto=1)

    app.config["SQLALCHEMY_BINDS"] = database_binds(app.config)
    db.init_app(app)
    pool_ping.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    htmx.init_app(app)
    queueing.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    input_guard.init_app(app)
    navigation.init_app(app)
    cli.init_app(app)
    app.add_template_filter(format_money, "money")
    app.add_template_global(stripe_test_mode)
    app.add_template_filter(format_percent, "percent")
    app.add_template_global(commission_label, "commission_label")  # mails: as the portal says

    from app.admin import bp as admin_bp
    from app.auth import bp as auth_bp
    from app.devmail import bp as devmail_bp
    from app.health import bp as health_bp
    from app.links import bp as links_bp
    from app.main import bp as main_bp
    from app.payouts import bp as payouts_bp
    from app.portal import bp as portal_bp
    from app.tree import bp as tree_bp
    from app.webhooks import bp as webhooks_bp

    blueprints = (
        main_bp,
        health_bp,
        auth_bp,
        links_bp,
        portal_bp,
        tree_bp,
        payouts_bp,
        admin_bp,
        webhooks_bp,
        devmail_bp,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app
