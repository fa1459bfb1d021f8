"""The fake Stripe HTTP server: Stripe's endpoints that payouts call, its authentication and
idempotency, injected faults, and a control API (``/fake/…``) for a server in another
process. In memory; one lock serialises every request, so concurrent requests with one
idempotency key are answered one after the other (the second replays the first)."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from app.providers.fake_stripe.faults import Fault, Faults
from app.providers.fake_stripe.objects import Objects, new_id
from app.providers.fake_stripe.params import StripeError, decode, only

DEFAULT_API_KEY = "sk_test_fake_stripe"
DEFAULT_BALANCE = {"usd": 100_000_000}  # 1,000,000.00 USD available

_ROUTES = Map(
    [
        Rule("/v1/accounts", methods=["POST"], endpoint="create_account"),
        Rule("/v1/accounts/<account_id>", methods=["GET"], endpoint="account"),
        Rule("/v1/account_links", methods=["POST"], endpoint="create_account_link"),
        Rule("/v1/transfers", methods=["POST"], endpoint="create_transfer"),
        Rule("/v1/transfers", methods=["GET"], endpoint="list_transfers"),
        Rule("/v1/transfers/<transfer_id>", methods=["GET"], endpoint="transfer"),
        Rule("/v1/transfers/<transfer_id>/reversals", methods=["POST"], endpoint="reverse"),
        Rule("/v1/balance", methods=["GET"], endpoint="balance"),
        Rule("/fake/onboard/<token>", methods=["GET"], endpoint="onboard"),
        Rule("/fake/faults", methods=["POST", "DELETE"], endpoint="fake_faults"),
        Rule("/fake/accounts/<account_id>/state", methods=["POST"], endpoint="fake_state"),
        Rule("/fake/balance", methods=["POST"], endpoint="fake_balance"),
        Rule("/fake/idempotency_keys/prune", methods=["POST"], endpoint="fake_prune"),
        Rule("/fake/counters", methods=["GET"], endpoint="fake_counters"),
    ]
)


def _json(status: int, body: bytes | dict, **headers: str) -> Response:
    data = body if isinstance(body, bytes) else json.dumps(body, indent=2).encode()
    response = Response(data, status=status, content_type="application/json")
    response.headers["Request-Id"] = new_id("req_", 14)
    response.headers.update(headers)
    return response


class FakeStripe:
    """A fake Stripe on 127.0.0.1. ``start()`` serves it from a thread (``url`` is then
    set); tests use ``faults``, ``transfers()``, ``post_count()``, ``account()``,
    ``set_account_state()``, ``set_balance()`` and ``prune_idempotency_keys()``."""

    def __init__(
        self, api_keys: tuple[str, ...] = (DEFAULT_API_KEY,), balance: dict | None = None
    ) -> None:
        if not api_keys or not all(key.startswith("sk_test_") for key in api_keys):
            raise ValueError("the fake Stripe takes test-mode keys (sk_test_…) only")
        self.api_keys, self.api_key = tuple(api_keys), api_keys[0]
        self.lock = threading.RLock()
        self.faults = Faults(self.lock)
        self._objects = Objects(DEFAULT_BALANCE if balance is None else balance)
        self._saved: dict[tuple[str, str], dict] = {}  # (api key, idempotency key) → answer
        self._posts: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self.url: str | None = None

    # running ------------------------------------------------------------------------------

    def serve(self, port: int = 0) -> BaseWSGIServer:
        """Bind 127.0.0.1:``port`` (0: any free port) and set ``url``; serve_forever() runs it."""
        self._server = make_server("127.0.0.1", port, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        return self._server

    def start(self, port: int = 0) -> FakeStripe:
        server = self.serve(port)
        # A short poll so that stop() returns at once (shutdown waits for the next poll).
        threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-stripe", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends stalls at once
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # control and counters -------------------------------------------------------------------

    def transfers(
        self, *, destination: str | None = None, transfer_group: str | None = None
    ) -> list[dict]:
        """Copies of the transfers made, oldest first, optionally filtered."""
        with self.lock:
            return [
                json.loads(json.dumps(t))
                for t in self._objects.transfers.values()
                if destination in (None, t["destination"])
                and transfer_group in (None, t["transfer_group"])
            ]

    def post_count(self, path: str | None = None) -> int:
        """POSTs received on /v1 (all, or on one path), whatever their answer."""
        with self.lock:
            return self._posts[path] if path else sum(self._posts.values())

    def accounts(self) -> list[dict]:
        """Copies of the connected accounts, oldest first."""
        with self.lock:
            return [json.loads(json.dumps(a)) for a in self._objects.accounts.values()]

    def account(self, account_id: str) -> dict:
        with self.lock:
            return json.loads(json.dumps(self._objects.accounts[account_id]))

    def set_account_state(self, account_id: str, state: str) -> None:
        """new, onboarded, restricted or deauthorized; no event is sent."""
        with self.lock:
            self._objects.set_state(account_id, state)

    def set_balance(self, currency: str, *, available: int, pending: int = 0) -> None:
        with self.lock:
            self._objects.balance[currency.lower()] = [available, pending]

    def available(self, currency: str) -> int:
        with self.lock:
            return self._objects.balance.get(currency.lower(), [0, 0])[0]

    def prune_idempotency_keys(self) -> None:
        """Forget every saved idempotent answer, as Stripe does after 24 hours."""
        with self.lock:
            self._saved.clear()

    # HTTP -----------------------------------------------------------------------------------

    def wsgi(self, environ: dict, start_response):
        request = Request(environ)
        response, stall = self._respond(request)
        if stall is not None:
            self._stopping.wait(stall.stall_seconds or 0)
        if stall is not None and stall.kind == "timeout_after_success":
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            # werkzeug treats a dropped connection as the client's doing: nothing is written.
            raise ConnectionAbortedError("fake Stripe: timeout_after_success")
        return response(environ, start_response)

    def _respond(self, request: Request) -> tuple[Response, Fault | None]:
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
        except HTTPException:
            message = f"Unrecognized request URL ({request.method}: {request.path})."
            return _json(404, StripeError(404, message).body), None
        if endpoint == "onboard":
            with self.lock:
                target = self._objects.visit_link(args["token"])
            return (redirect(target) if target else Response("Unknown link", 404)), None
        with self.lock:
            if request.method == "POST" and request.path.startswith("/v1/"):
                self._posts[request.path] += 1
            try:
                api_key = self._authenticate(request)
                if endpoint.startswith("fake_"):
                    return _json(200, self._control(endpoint, args, request)), None
                return self._api(request, api_key, endpoint, args)
            except StripeError as error:
                return _json(error.status, error.body), None

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        if not header:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        key = header.removeprefix("Bearer ").strip()
        if request.authorization and request.authorization.type == "basic":
            key = request.authorization.username or ""
        if key not in self.api_keys:
            raise StripeError(401, f"Invalid API Key provided: {key[:8]}****{key[-4:]}")
        return key

    def _api(
        self, request: Request, api_key: str, endpoint: str, args: dict
    ) -> tuple[Response, Fault | None]:
        method, path = request.method, request.path
        if self.faults.take("rate_limited", method, path):
            raise StripeError(
                429,
                "Too many requests hit the API too quickly. We recommend an exponential "
                "backoff of your requests.",
                code="rate_limit",
            )
        items = request.form if method == "POST" else request.args
        params = decode(list(items.items(multi=True)))
        key = request.headers.get("Idempotency-Key") if method == "POST" else None
        if key is not None and len(key) > 255:
            raise StripeError(400, "Idempotency keys are at most 255 characters long.")
        if key is not None and self.faults.take("idempotency_key_in_use", method, path):
            raise StripeError(
                409,
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                f"going through): {key}. Please try again later.",
                type="idempotency_error",
                code="idempotency_key_in_use",
            )
        if key is not None and self.faults.take("prune_idempotency_keys", method, path):
            self._saved.pop((api_key, key), None)
        saved = self._saved.get((api_key, key)) if key is not None else None
        if saved is not None:
            if (saved["method"], saved["path"], saved["params"]) != (method, path, params):
                raise StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                    type="idempotency_error",
                )
            response = _json(saved["status"], saved["body"], **{"Idempotent-Replayed": "true"})
        else:
            try:
                if self.faults.take("server_error", method, path):
                    raise StripeError(500, "An unknown error occurred.", type="api_error")
                status, body = 200, self._call(endpoint, args, params, request)
            except StripeError as error:
                if not error.saved:
                    raise
                status, body = error.status, error.body
            response = _json(status, body)
            if key is not None:
                self._saved[(api_key, key)] = {
                    "method": method,
                    "path": path,
                    "params": params,
                    "status": status,
                    "body": response.get_data(),
                }
        if key is not None:
            response.headers["Idempotency-Key"] = key
        stall = self.faults.take("timeout_after_success", method, path)
        return response, stall or self.faults.take("delay_after_success", method, path)

    def _call(self, endpoint: str, args: dict, params: dict, request: Request) -> dict:
        objects = self._objects
        if endpoint == "create_account":
            return objects.create_account(params)
        if endpoint == "create_account_link":
            return objects.create_account_link(params, request.host_url.rstrip("/"))
        if endpoint == "create_transfer":
            return objects.create_transfer(
                params,
                fault=lambda kind: self.faults.take(kind, "POST", "/v1/transfers") is not None,
            )
        if endpoint == "list_transfers":
            return objects.list_transfers(params)
        if endpoint == "reverse":
            return objects.reverse_transfer(args["transfer_id"], params)
        only(params, set())
        if endpoint == "account":
            return objects.account(args["account_id"])
        if endpoint == "transfer":
            return objects.transfer(args["transfer_id"])
        return objects.balance_object()

    def _control(self, endpoint: str, args: dict, request: Request) -> dict:
        """The in-process controls over HTTP, JSON in and out."""
        if endpoint == "fake_counters":
            with self.lock:
                return {"posts": dict(self._posts), "transfers": len(self._objects.transfers)}
        body = request.get_json(silent=True) if request.method == "POST" else {}
        if not isinstance(body, dict):
            raise StripeError(400, "Send a JSON object.", saved=False)
        try:
            if endpoint == "fake_faults" and request.method == "DELETE":
                self.faults.clear()
            elif endpoint == "fake_faults":
                self.faults.inject(**body)
            elif endpoint == "fake_state":
                self.set_account_state(args["account_id"], body.get("state"))
            elif endpoint == "fake_balance":
                self.set_balance(**body)
            else:
                self.prune_idempotency_keys()
        except (TypeError, ValueError, KeyError) as error:
            raise StripeError(400, f"Bad control request: {error}", saved=False) from error
        return {"ok": True}
