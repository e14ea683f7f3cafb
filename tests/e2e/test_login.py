"""``wrapupd login`` as an operator runs it, against the emulator's authorization-code grant: the
printed URL, fetched the way a browser would, lands on the command's loopback listener."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from test_commands import SUPPORT_QUEUE, free_port, write_config

from genesys_emulator.testing import RunningEmulator

LOGIN_CLIENT = ("wrapupd-login", "login-secret-do-not-use-in-production")
LOGIN_USER_NAME = "wrapupd Integration"


def login_config(emulator: RunningEmulator, tmp_path: Path, port: int) -> Path:
    """Settings for the authorization-code grant, the redirect on ``port``."""
    config = write_config(tmp_path / "w.toml", emulator, SUPPORT_QUEUE, client=LOGIN_CLIENT)
    text = config.read_text().replace(
        "[genesys]\n",
        '[genesys]\ngrant = "authorization_code"\n'
        f'redirect_uri = "http://127.0.0.1:{port}/callback"\n',
    )
    config.write_text(text)
    return config


def start_login(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wrapupd", "login", "--config", str(config), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def printed_url(process: subprocess.Popen[str]) -> str:
    """The authorization URL: the first stdout line that is a URL and nothing else."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("http"):
            return line.strip()
    raise AssertionError(f"no URL printed; stderr: {process.communicate()[1]}")


def fetch(url: str) -> tuple[int, str]:
    """What a browser does with the URL: follow the redirect to the listener."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_login_stores_the_refresh_token_when_the_printed_url_is_fetched(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    port = free_port()
    process = start_login(login_config(emulator, tmp_path, port))
    try:
        url = printed_url(process)
        assert "code_challenge=" in url and "state=" in url and "code_challenge_method=S256" in url
        status, body = fetch(url)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert status == 200 and "signed in" in body
    assert f"logged in as {LOGIN_USER_NAME}" in out
    token_file = tmp_path / "state" / "refresh_token"
    token = token_file.read_text().strip()
    assert token and token not in out + err + body
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    issued = emulator.control("GET", "/_emulator/tokens")
    assert token in str(issued), "the stored token is one the platform issued"


def test_a_redirect_with_the_wrong_state_is_refused_and_the_login_still_completes(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    port = free_port()
    process = start_login(login_config(emulator, tmp_path, port))
    try:
        url = printed_url(process)
        forged, _ = fetch(f"http://127.0.0.1:{port}/callback?code=forged&state=not-ours")
        assert forged == 400
        status, _ = fetch(url)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert status == 200 and process.returncode == 0, err
    assert f"logged in as {LOGIN_USER_NAME}" in out


def test_login_with_the_client_credentials_grant_is_refused_with_exit_78(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "w.toml", emulator, SUPPORT_QUEUE)
    result = subprocess.run(
        [sys.executable, "-m", "wrapupd", "login", "--config", str(config), "--no-browser"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 78
    assert 'grant = "authorization_code"' in result.stderr


def test_login_opens_the_url_in_the_browser_unless_told_not_to(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """``$BROWSER`` (honoured by Python's webbrowser) names a "browser" that fetches the URL."""
    browser = tmp_path / "browser.py"
    browser.write_text(
        "import sys, urllib.request\nurllib.request.urlopen(sys.argv[1], timeout=10).read()\n"
    )
    config = login_config(emulator, tmp_path, free_port())
    result = subprocess.run(
        [sys.executable, "-m", "wrapupd", "login", "--config", str(config), "--timeout", "30"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "BROWSER": f"{sys.executable} {browser} %s"},
    )
    assert result.returncode == 0, result.stderr
    assert f"logged in as {LOGIN_USER_NAME}" in result.stdout
    assert (tmp_path / "state" / "refresh_token").read_text().strip()
