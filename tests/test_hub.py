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
