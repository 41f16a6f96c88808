"""The web chat channel: a page at ``/chat`` talking to the dialogue core over a WebSocket.

See :mod:`bots.web.protocol` for the frames, :mod:`bots.web.server` for the routes.
"""

from .messenger import WebMessenger
from .protocol import MAX_FRAME_BYTES, FrameError, render_message
from .server import (
    DEFAULT_MAX_UPLOAD,
    WEB_MESSENGER,
    DialogueEngine,
    create_web_app,
    setup_web_chat,
)
from .uploads import UploadStore, sniff_image_mime

__all__ = [
    "DEFAULT_MAX_UPLOAD",
    "MAX_FRAME_BYTES",
    "WEB_MESSENGER",
    "DialogueEngine",
    "FrameError",
    "UploadStore",
    "WebMessenger",
    "create_web_app",
    "render_message",
    "setup_web_chat",
    "sniff_image_mime",
]
