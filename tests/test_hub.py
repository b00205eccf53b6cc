"""Hub paths fail fast and clearly offline, and never print the token."""

import time

import pytest

from emotion_core import EmotionCoreError
from emotion_core.hub import push_model

SECRET = "hf_thisIsNotARealTokenButMustNeverBePrinted"


@pytest.mark.parametrize("offline", [True, False])
def test_push_fails_fast_with_one_line_and_no_token(tmp_path, monkeypatch, capsys, caplog, offline):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_TOKEN", SECRET)
    # False: a real attempt, sent to a closed port on loopback standing in for an unreachable Hub
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    (tmp_path / "config.json").write_text("{}")
    start = time.monotonic()
    with pytest.raises(EmotionCoreError) as err:
        push_model(tmp_path, "someone/emotion-model")
    assert time.monotonic() - start < 30
    message = str(err.value)
    assert message.startswith("Could not push to someone/emotion-model: ") and "\n" not in message
    captured = capsys.readouterr()
    assert SECRET not in message + captured.out + captured.err + caplog.text
    assert ("HF_HUB_OFFLINE=1" in message) == offline


def run_python(code: str, env: dict) -> list:
    """Run code in a fresh interpreter (nothing imported yet) and return the JSON its last line prints."""
    import json
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_importing_the_package_changes_neither_the_environment_nor_the_hub_client():
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT", "HF_HUB_DISABLE_TELEMETRY")}
    assert run_python(
        "import json, os\n"
        "import sklearn.metrics, transformers  # these set variables of their own at import (KMP_..., TORCHINDUCTOR_...)\n"
        "from transformers import Trainer\n"
        "before = dict(os.environ)\n"
        "import emotion_core, emotion_core.cli, emotion_core.predict, emotion_core.training, emotion_core.space\n"
        "from huggingface_hub import constants\n"
        "from huggingface_hub.utils import _http\n"
        "print(json.dumps([dict(os.environ) == before, _http._GLOBAL_CLIENT_FACTORY is _http.default_client_factory, "
        "constants.HF_HUB_DISABLE_TELEMETRY]))", env) == [True, True, False]


def test_configure_hub_gives_the_client_timeouts_and_turns_telemetry_off():
    import os

    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_TELEMETRY"}
    connect, telemetry_off = run_python(
        "import json\n"
        "from emotion_core.hub import configure_hub\n"
        "configure_hub(); configure_hub()\n"
        "from huggingface_hub import constants, get_session\n"
        "print(json.dumps([get_session().timeout.connect, constants.HF_HUB_DISABLE_TELEMETRY]))", env)
    assert connect == 10 and telemetry_off is True


def test_behind_a_proxy_the_probe_asks_the_proxy_not_the_hub(monkeypatch):
    """Where the Hub is reached through HTTPS_PROXY, a direct connection says nothing: the proxy must answer."""
    import socket

    from emotion_core.hub import hub_unreachable

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with socket.create_server(("127.0.0.1", 0)) as proxy:  # listening: it accepts the probe's connection
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        assert hub_unreachable() is None
        closed = proxy.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed}")
    assert hub_unreachable().startswith("the proxy to the Hub (127.0.0.1) could not be reached")

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:abc")  # a typo is a message, not a traceback
    assert hub_unreachable() == "the proxy to the Hub (http://proxy.invalid:abc) is not a URL with a port number"
