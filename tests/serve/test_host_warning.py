"""``price-bench serve --host``: a non-loopback address without a token gets one warning line.

The command runs in process with uvicorn's start replaced by a recorder, so
nothing binds a non-loopback address during the tests; what is checked is the
warning and that the host reaches the server unchanged.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'price-bench[serve]'")

WARNING = "without --token-env: anyone who can reach it can use it"


@pytest.fixture
def serve(fitted, monkeypatch, tmp_path):
    """``serve(*args, env=...)`` -> (result, the host uvicorn would have been started on)."""
    import price_bench.cli.serve as serve_cli
    from price_bench.cli.main import get_cli

    started: list[str] = []
    monkeypatch.setattr(serve_cli, "_run_uvicorn", lambda settings, env_name, *, host, **_: started.append(host))
    for name in ("PRICE_BENCH_HOME", "PRICE_BENCH_RESULTS"):
        monkeypatch.setenv(name, fitted.env[name])

    def run(*args: str, env: dict[str, str] | None = None) -> tuple[object, str | None]:
        result = CliRunner().invoke(get_cli(), ["serve", str(fitted.bundle), "--log-dir", str(tmp_path / "log"), *args], env=env)
        assert result.exit_code == 0, result.output
        return result, started[-1] if started else None

    return run


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.internal"])
def test_a_non_loopback_host_without_a_token_warns(serve, host):
    result, started_on = serve("--host", host)
    assert started_on == host
    assert [line for line in result.stderr.splitlines() if WARNING in line] == [f"warning: serving on {host} {WARNING}"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_a_loopback_host_does_not_warn(serve, host):
    result, started_on = serve("--host", host)
    assert started_on == host
    assert WARNING not in result.stderr


def test_a_token_silences_the_warning(serve):
    result, started_on = serve("--host", "0.0.0.0", "--token-env", "PRICE_BENCH_TEST_HOST_TOKEN", env={"PRICE_BENCH_TEST_HOST_TOKEN": "s3cret-token"})
    assert started_on == "0.0.0.0"
    assert WARNING not in result.stderr
    assert "s3cret-token" not in result.output
