"""Everything that talks to the Hugging Face Hub, with timeouts and one-line errors when it can't.

The Hub client has no timeout of its own, so a dead endpoint would hang a run. `configure_hub`
gives it one; each entry point (the command line, `train.py`, both apps) calls it, and so does
`hub_unreachable`, which every Hub path asks first, so that the Python API gets it too. Nothing
here runs at import.
"""

import functools
import json
import logging
import os
import socket
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from .errors import EmotionCoreError

HUB_TIMEOUT_S = 10
PROBE_TIMEOUT_S = 3

logger = logging.getLogger(__name__)


@functools.cache
def configure_hub() -> None:
    """Give the Hub's HTTP client timeouts, and turn its telemetry off unless HF_HUB_DISABLE_TELEMETRY says otherwise.

    Once per process: setting the client factory closes the client in use.
    """
    from huggingface_hub import constants, set_client_factory

    if "HF_HUB_DISABLE_TELEMETRY" not in os.environ:
        constants.HF_HUB_DISABLE_TELEMETRY = True
    set_client_factory(client_with_timeouts)


def client_with_timeouts():
    """The Hub's HTTP client, with timeouts: a dead endpoint fails in seconds instead of hanging."""
    from huggingface_hub.utils._http import default_client_factory

    client = default_client_factory()
    # connect fast or fail; leave reads and writes long enough for a large upload
    client.timeout = type(client.timeout)(connect=HUB_TIMEOUT_S, read=120, write=600, pool=HUB_TIMEOUT_S)
    return client


OFFLINE_TRAINING_HINT = (
    "To train offline, use local data and the bundled backbone: "
    "python train.py --base-model minilm --data ../shared/data/emotion"
)


def hub_is_offline() -> bool:
    """True when the user asked the Hub libraries to stay offline (HF_HUB_OFFLINE=1)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def describe_hub_error(exc: BaseException) -> str:
    """Say in a few words why a Hub call failed, without echoing headers or tokens.

    transformers wraps the Hub's errors in an OSError: the cause chain is searched for the real one.
    """
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    cause, seen = exc, set()
    while cause is not None and not isinstance(cause, HfHubHTTPError) and id(cause) not in seen:
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    exc = cause if cause is not None and id(cause) not in seen else exc

    if isinstance(exc, GatedRepoError):
        return "the repository is gated: accept its terms on the Hub and log in"
    if isinstance(exc, RepositoryNotFoundError):
        return "not found on the Hub (or private and you are not logged in)"
    if isinstance(exc, HfHubHTTPError):
        status = getattr(exc.response, "status_code", None)
        if status in (401, 403):
            return f"the Hub refused the request (HTTP {status}): check HF_TOKEN or run `hf auth login`"
        return f"the Hub answered HTTP {status}"
    if hub_is_offline():
        return "HF_HUB_OFFLINE=1 is set and nothing usable is in the local cache"
    return f"the Hub could not be reached ({type(exc).__name__})"


def hub_unreachable() -> str | None:
    """Why the Hub can't be reached right now, or None: HF_HUB_OFFLINE, else a DNS lookup and TCP connect (to the
    proxy, when HTTPS_PROXY or HTTP_PROXY names one for the Hub).

    Without this probe an offline machine spends about 45 s in the Hub client's retries before
    any error; with it, every Hub path fails within seconds.
    """
    configure_hub()
    if hub_is_offline():
        return "HF_HUB_OFFLINE=1 is set"
    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    host, port = address(url)
    proxies = urllib.request.getproxies()
    proxy = None if urllib.request.proxy_bypass(host) else proxies.get(url.scheme) or proxies.get("all")
    what = f"the Hub ({host})"
    if proxy:  # the Hub client goes through it (HTTPS_PROXY, ALL_PROXY): it is what must answer
        try:
            host, port = address(urlsplit(proxy if "://" in proxy else f"http://{proxy}"))
        except ValueError:  # a port that is not a number
            return f"the proxy to the Hub ({proxy}) is not a URL with a port number"
        what = f"the proxy to the Hub ({host})"
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"{what} could not be reached ({exc.strerror or type(exc).__name__})"
    return None


def address(url) -> tuple[str, int]:
    """The host and port a split URL connects to (its scheme's port when it names none)."""
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


def hub_failure(what: str, exc: BaseException | None, hint: str = OFFLINE_TRAINING_HINT,
                unreachable: str | None = None) -> EmotionCoreError:
    """Wrap a failed Hub call in an error that names what was wanted and what to do instead.

    `unreachable` is `hub_unreachable()`'s answer when the call only looked in the local cache.
    """
    reason = f"{unreachable} and nothing usable is in the local cache" if unreachable else describe_hub_error(exc)
    return EmotionCoreError(f"Could not load {what}: {reason}. {hint}")


def push_model(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """Upload a finished model folder to the Hub and return its URL.

    The token comes from HF_TOKEN or the saved `hf auth login`; it is never printed.
    """
    from huggingface_hub import HfApi

    problem = hub_unreachable()
    if problem:
        raise EmotionCoreError(f"Could not push to {repo_id}: {problem}.")
    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload emotion model")
    except Exception as exc:  # every failure becomes one clear line; the traceback may carry headers
        raise EmotionCoreError(f"Could not push to {repo_id}: {describe_hub_error(exc)}.") from None
    url = f"https://huggingface.co/{repo_id}"
    logger.info("pushed %s to %s", folder, url)
    return url


class HubMirror:
    """Corrections appended, in batches, to a private Hub dataset repo: a Space's disk is wiped on restart.

    Each process appends JSON lines to a file of its own in `folder`, and `CommitScheduler` (the
    Hub's way of logging from a Space) commits what is new every `every_minutes`, in the
    background; the token comes from HF_TOKEN and is never printed.
    """

    def __init__(self, repo_id: str, folder: Path, every_minutes: float = 5):
        from huggingface_hub import CommitScheduler, HfApi
        from huggingface_hub.errors import RepositoryNotFoundError

        problem = hub_unreachable()
        if problem:
            raise EmotionCoreError(f"Could not reach the corrections repo {repo_id}: {problem}.")
        own = Path(folder) / uuid.uuid4().hex  # this process's folder: a scheduler commits only its own, whole lines
        self.file = own / f"corrections-{own.name}.jsonl"
        token = os.environ.get("HF_TOKEN")
        try:
            try:
                public = not HfApi(token=token).repo_info(repo_id, repo_type="dataset").private
            except RepositoryNotFoundError:
                public = False  # the scheduler creates it, private
            if not public:
                self.scheduler = CommitScheduler(repo_id=repo_id, repo_type="dataset", folder_path=own, every=every_minutes,
                                                 path_in_repo="corrections", private=True, token=token)
        except Exception as exc:  # one clear line; the traceback may carry headers
            raise EmotionCoreError(f"Could not open the corrections repo {repo_id}: {describe_hub_error(exc)}.") from None
        if public:
            raise EmotionCoreError(f"The corrections repo {repo_id} is public: people's texts would be published. "
                                   "Make it private, or name another.")

    def append(self, row: dict) -> None:
        """Add one correction to this process's file; the next scheduled commit takes it."""
        with self.scheduler.lock, self.file.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def download_corrections(repo_id: str, folder: Path) -> list[Path]:
    """The files of corrections a Space's `HubMirror`s committed to `repo_id`, downloaded into `folder`: how a
    Space's corrections, which its own disk loses on restart, come back to be trained on (`feedback pull`)."""
    from huggingface_hub import HfApi

    problem = hub_unreachable()
    if problem:
        raise EmotionCoreError(f"Could not reach the corrections repo {repo_id}: {problem}.")
    api = HfApi(token=os.environ.get("HF_TOKEN"))
    try:
        names = [name for name in api.list_repo_files(repo_id, repo_type="dataset")
                 if name.startswith("corrections/") and name.endswith(".jsonl")]
        return [Path(api.hf_hub_download(repo_id, name, repo_type="dataset", local_dir=folder)) for name in names]
    except Exception as exc:  # one clear line; the traceback may carry headers
        raise EmotionCoreError(f"Could not read the corrections repo {repo_id}: {describe_hub_error(exc)}.") from None
