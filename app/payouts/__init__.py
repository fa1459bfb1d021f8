"""The affiliate's payouts page: balances, the program's payout terms, where to be paid."""

from flask import Blueprint

bp = Blueprint("payouts", __name__)

from app.payouts import routes, statements  # noqa: E402, F401
