"""``python -m app.providers.fake_stripe --port N``: the fake Stripe as a process (the demo).
Prints its URL on the first line, then serves until interrupted or terminated."""

from __future__ import annotations

import argparse
import signal
import sys

from app.providers.fake_stripe.server import DEFAULT_API_KEY, FakeStripe


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.providers.fake_stripe")
    parser.add_argument("--port", type=int, default=12111, help="0: any free port")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help=f"a test-mode key clients must send; repeatable (default {DEFAULT_API_KEY})",
    )
    args = parser.parse_args(argv)
    server = FakeStripe(tuple(args.api_keys or (DEFAULT_API_KEY,))).serve(args.port)
    # SIGTERM ends it like Ctrl-C: serve_forever returns through KeyboardInterrupt.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"Fake Stripe (test mode) on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
