"""learn2learn, imported without gym's notice.

learn2learn's ``__init__`` imports its gym module, which imports ``gym``; gym
0.26 prints a four-line "Gym has been unmaintained" notice to stderr on import,
on every run and in every sweep worker. Nothing of gym is used here. The notice
is the exact text gym takes from ``gym_notices``, so it is removed from what the
import writes and anything else (a real warning, an error message) is passed on
unchanged. Import learn2learn in this package only through this module.

    from .l2l import l2l
    maml = l2l.algorithms.MAML(net, lr=0.01)
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from types import ModuleType

__all__ = ["l2l", "import_learn2learn", "gym_notice"]


def gym_notice() -> str:
    """The notice gym prints for the installed version ("" when gym_notices has none)."""
    try:
        import gym_notices.notices as notices
        from gym.version import VERSION
    except Exception:  # no gym, or a gym without notices: nothing to remove
        return ""
    return str(notices.notices.get(VERSION) or "")


def import_learn2learn() -> ModuleType:
    """Import learn2learn with gym's import notice removed from stderr (other output is kept)."""
    if "learn2learn" in sys.modules:
        return sys.modules["learn2learn"]
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="gym")
            import learn2learn
    finally:
        text = captured.getvalue()
        notice = gym_notice()
        if notice:
            text = text.replace(notice + "\n", "").replace(notice, "")
        if text:
            sys.stderr.write(text)
    return learn2learn


l2l = import_learn2learn()
