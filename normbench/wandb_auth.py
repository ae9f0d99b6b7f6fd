"""Whether W&B credentials are there, decided without a network call (runs and the report publisher)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["DEFAULT_BASE_URL", "wandb_login_available"]

DEFAULT_BASE_URL = "https://api.wandb.ai"


def _netrc_has_login(host: str) -> bool:
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    if not path.is_file():
        return False
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError):
        return False
    return bool(entry and entry[2])


def wandb_login_available() -> bool:
    """Credentials W&B would use: WANDB_API_KEY, an identity token file, or a netrc entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY", "").strip():
        return True
    if os.environ.get("WANDB_IDENTITY_TOKEN_FILE", "").strip():
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).hostname or ""
    return _netrc_has_login(host)
