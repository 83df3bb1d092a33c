"""``price-bench serve --host``: a non-loopback address without a token gets one warning line.

The real CLI runs in a subprocess with a log folder it cannot create, so it
stops with one error line right after the host check, before any worker
starts: nothing ever binds a non-loopback address during the tests.
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'price-bench[serve]'")

WARNING = "without --token-env: anyone who can reach it can use it"
TOKEN_ENV = "PRICE_BENCH_TEST_HOST_TOKEN"


@pytest.fixture
def serve(kit, fitted, tmp_path):
    """``serve(*args, env=...)`` -> stderr lines of ``price-bench serve BUNDLE *args`` that stops at the log-folder check."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    log_error = f"Error: --log-dir {blocker / 'log'}: cannot write the prediction log: Not a directory"

    def run(*args: str, env: dict[str, str] | None = None) -> list[str]:
        out = kit.run_cli("serve", str(fitted.bundle), "--log-dir", str(blocker / "log"), *args, env={**fitted.env, **(env or {})}, check=False)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 1 and lines[-1] == log_error, out.stderr  # stopped before any server started
        return lines[:-1]

    return run


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.internal"])
def test_a_non_loopback_host_without_a_token_warns(serve, host):
    assert serve("--host", host) == [f"warning: serving on {host} {WARNING}"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_a_loopback_host_does_not_warn(serve, host):
    assert serve("--host", host) == []


def test_a_token_silences_the_warning(serve):
    lines = serve("--host", "0.0.0.0", "--token-env", TOKEN_ENV, env={TOKEN_ENV: "s3cret-token-value"})
    assert lines == []
