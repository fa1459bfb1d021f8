"""The fake Stripe's objects and rules, without HTTP: connected accounts, account links,
transfers and their reversals, the platform balance. Shapes follow Stripe's API (ids with
Stripe's prefixes, ``object`` fields, integer minor units, Unix times). The caller holds the
server's lock around every call."""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from app.providers.fake_stripe.params import (
    StripeError,
    currency,
    integer,
    metadata,
    only,
    text,
)

ACCOUNT_STATES = ("new", "onboarded", "restricted", "deauthorized")
LINK_SECONDS = 300  # Stripe's account links expire after a few minutes
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _url(params: dict, name: str) -> str:
    value = text(params, name, required=True)
    if urlsplit(value).scheme not in {"http", "https"}:
        raise StripeError(400, "Not a valid URL", param=name, code="url_invalid", saved=False)
    return value


class Objects:
    """Accounts, links, transfers and the balance. ``balance`` maps a currency to
    ``[available, pending]`` in minor units; transfers take from available."""

    def __init__(self, balance: dict[str, int]) -> None:
        self.accounts: dict[str, dict] = {}
        self.states: dict[str, str] = {}
        self.links: dict[str, dict] = {}
        self.transfers: dict[str, dict] = {}  # in creation order
        self.balance = {cur: [amount, 0] for cur, amount in balance.items()}

    # accounts ---------------------------------------------------------------------------

    def create_account(self, params: dict) -> dict:
        only(params, {"type", "country", "email", "capabilities", "metadata", "business_type"})
        kind = text(params, "type", required=True)
        if kind not in {"express", "standard", "custom"}:
            raise StripeError(400, f"Invalid type: {kind}", param="type", saved=False)
        requested = params.get("capabilities") or {}
        if not isinstance(requested, dict):
            raise StripeError(400, "Invalid capabilities", param="capabilities", saved=False)
        account_id = new_id("acct_", 16)
        self.accounts[account_id] = {
            "id": account_id,
            "object": "account",
            "type": kind,
            "country": (text(params, "country") or "US").upper(),
            "email": text(params, "email"),
            "business_type": text(params, "business_type"),
            "default_currency": "usd",
            "created": int(time.time()),
            "livemode": False,
            "metadata": metadata(params),
            "capabilities": {
                name: "inactive"
                for name, wish in sorted(requested.items())
                if isinstance(wish, dict) and wish.get("requested") == "true"
            },
        }
        self.set_state(account_id, "new")
        return self.accounts[account_id]

    def account(self, account_id: str) -> dict:
        """The account as the platform sees it (403 ``account_invalid`` once deauthorized or
        when unknown, as Stripe answers a key without access to an account)."""
        if self.states.get(account_id, "deauthorized") == "deauthorized":
            raise StripeError(
                403,
                f"The provided key does not have access to account '{account_id}' (or that "
                "account does not exist). Application access may have been revoked.",
                code="account_invalid",
            )
        return self.accounts[account_id]

    def set_state(self, account_id: str, state: str) -> None:
        """new: requirements due; onboarded: payouts enabled, capabilities active;
        restricted: payouts disabled, capabilities inactive; deauthorized: no access."""
        if state not in ACCOUNT_STATES:
            raise ValueError(f"unknown account state {state!r}")
        account = self.accounts[account_id]
        self.states[account_id] = state
        ready = state == "onboarded"
        account["capabilities"] = {
            name: "active" if ready else "inactive" for name in account["capabilities"]
        }
        account["payouts_enabled"] = ready
        account["charges_enabled"] = account["capabilities"].get("card_payments") == "active"
        account["details_submitted"] = state != "new"
        due = [] if ready else ["external_account", "individual.verification.document"]
        account["requirements"] = {
            "currently_due": due,
            "past_due": due if state == "restricted" else [],
            "eventually_due": due,
            "disabled_reason": None if ready else "requirements.past_due",
        }

    def create_account_link(self, params: dict, base_url: str) -> dict:
        only(params, {"account", "refresh_url", "return_url", "type", "collect"})
        account_id = text(params, "account", required=True)
        refresh_url, return_url = _url(params, "refresh_url"), _url(params, "return_url")
        kind = text(params, "type", required=True)
        if kind not in {"account_onboarding", "account_update"}:
            raise StripeError(400, f"Invalid type: {kind}", param="type", saved=False)
        self.account(account_id)
        token = new_id("", 32)
        now = int(time.time())
        self.links[token] = {
            "account": account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "expires_at": now + LINK_SECONDS,
            "used": False,
        }
        return {
            "object": "account_link",
            "created": now,
            "expires_at": now + LINK_SECONDS,
            "url": f"{base_url}/fake/onboard/{token}",
        }

    def visit_link(self, token: str) -> str | None:
        """Where the browser goes next: a fresh link onboards its account and leads to the
        return URL; a used or expired one to the refresh URL (links are single-use, as
        Stripe's). None for an unknown link."""
        link = self.links.get(token)
        if link is None:
            return None
        if link["used"] or link["expires_at"] < time.time():
            return link["refresh_url"]
        link["used"] = True
        if self.states[link["account"]] != "deauthorized":
            self.set_state(link["account"], "onboarded")
        return link["return_url"]

    # transfers ---------------------------------------------------------------------------

    def create_transfer(self, params: dict, *, fault: Callable[[str], bool]) -> dict:
        """One transfer to a connected account, taken from the available balance.
        ``fault(kind)`` says whether an injected fault applies, once the parameters are valid:
        ``account_restricted`` (the destination became restricted just before) or
        ``balance_insufficient`` (refused as if the balance were short)."""
        only(
            params,
            {"amount", "currency", "destination", "transfer_group", "metadata", "description"},
        )
        amount = integer(params, "amount", minimum=1, required=True)
        cur = currency(params)
        destination = text(params, "destination", required=True)
        group, description, meta = (
            text(params, "transfer_group"),
            text(params, "description"),
            metadata(params),
        )
        if destination not in self.accounts:
            raise StripeError(
                400,
                f"No such destination: '{destination}'",
                code="resource_missing",
                param="destination",
            )
        if fault("account_restricted") and self.states[destination] != "deauthorized":
            self.set_state(destination, "restricted")
        if self.states[destination] == "deauthorized":
            raise StripeError(
                400,
                f"The destination account '{destination}' is not connected to your platform.",
                code="account_invalid",
                param="destination",
            )
        if self.accounts[destination]["capabilities"].get("transfers") != "active":
            raise StripeError(
                400,
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                code="insufficient_capabilities_for_transfer",
                param="destination",
            )
        funds = self.balance.get(cur)
        if fault("balance_insufficient") or funds is None or funds[0] < amount:
            raise StripeError(
                400,
                "You have insufficient available funds in your Stripe account. Try adding "
                "funds directly to your available balance by creating Charges using the "
                "4000000000000077 test card.",
                code="balance_insufficient",
            )
        funds[0] -= amount
        transfer_id = new_id("tr_")
        self.transfers[transfer_id] = {
            "id": transfer_id,
            "object": "transfer",
            "amount": amount,
            "amount_reversed": 0,
            "balance_transaction": new_id("txn_"),
            "created": int(time.time()),
            "currency": cur,
            "description": description,
            "destination": destination,
            "destination_payment": new_id("py_"),
            "livemode": False,
            "metadata": meta,
            "reversals": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/transfers/{transfer_id}/reversals",
            },
            "reversed": False,
            "source_transaction": None,
            "source_type": "card",
            "transfer_group": group,
        }
        return self.transfers[transfer_id]

    def transfer(self, transfer_id: str) -> dict:
        if transfer_id not in self.transfers:
            raise StripeError(
                404, f"No such transfer: '{transfer_id}'", code="resource_missing", param="id"
            )
        return self.transfers[transfer_id]

    def list_transfers(self, params: dict) -> dict:
        """Newest first, filtered by ``destination`` and ``transfer_group``, ``limit``
        (1 to 100, default 10) after the ``starting_after`` id, as Stripe pages."""
        only(params, {"destination", "transfer_group", "limit", "starting_after"})
        limit = integer(params, "limit", minimum=1, maximum=100) or 10
        wanted = {key: params[key] for key in ("destination", "transfer_group") if key in params}
        found = [
            t
            for t in reversed(self.transfers.values())
            if all(t[key] == value for key, value in wanted.items())
        ]
        after = text(params, "starting_after")
        if after is not None:
            ids = [t["id"] for t in found]
            if after not in ids:
                raise StripeError(
                    400,
                    f"No such transfer: '{after}'",
                    code="resource_missing",
                    param="starting_after",
                    saved=False,
                )
            found = found[ids.index(after) + 1 :]
        return {
            "object": "list",
            "data": found[:limit],
            "has_more": len(found) > limit,
            "url": "/v1/transfers",
        }

    def reverse_transfer(self, transfer_id: str, params: dict) -> dict:
        """A reversal of all (default) or part of what is left of a transfer; the money
        comes back to the platform's available balance."""
        only(params, {"amount", "metadata", "description", "refund_application_fee"})
        transfer = self.transfer(transfer_id)
        left = transfer["amount"] - transfer["amount_reversed"]
        amount = integer(params, "amount", minimum=1)
        amount = left if amount is None else amount
        if amount > left:
            raise StripeError(
                400,
                f"Amount ({amount}) is greater than the amount that can be reversed ({left}).",
                param="amount",
            )
        reversal = {
            "id": new_id("trr_"),
            "object": "transfer_reversal",
            "amount": amount,
            "balance_transaction": new_id("txn_"),
            "created": int(time.time()),
            "currency": transfer["currency"],
            "destination_payment_refund": new_id("pyr_"),
            "metadata": metadata(params),
            "source_refund": None,
            "transfer": transfer_id,
        }
        self.balance.setdefault(transfer["currency"], [0, 0])[0] += amount
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        reversals = transfer["reversals"]
        reversals["data"].insert(0, reversal)
        reversals["total_count"] += 1
        return reversal

    def balance_object(self) -> dict:
        def amounts(index: int) -> list[dict]:
            return [
                {"amount": funds[index], "currency": cur, "source_types": {"card": funds[index]}}
                for cur, funds in sorted(self.balance.items())
            ]

        return {
            "object": "balance",
            "available": amounts(0),
            "pending": amounts(1),
            "livemode": False,
        }
