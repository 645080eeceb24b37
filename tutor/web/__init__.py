"""The Gradio page: chat, lesson outline, tool palette, models and plugins. It only translates:
everything a reply means is decided in chat.py.

    app.py       build_app() from named parts (outline, chat, palette, panels); mount(); server_app()
    turns.py     the chat events: one learner's turn, Stop, the chat API, restore on reload
    render.py    Reply -> chat messages; safe markdown; history normalisation
    palette.py   a form per tool from its schema; form values -> a command line
    panels.py    the lesson outline, models and plugins panels
    uploads.py   uploaded files: the only files a web learner can name
    learners.py  signed learner header/cookie, browser ids, turns per learner
    api.py       /ask and one endpoint per tool (the MCP listing)
"""

import os

# Safe default: no usage analytics leave the machine (a deployer may opt in explicitly). Set
# before gradio is imported by any module of this package.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from .api import api_endpoints, tool_endpoint  # noqa: E402
from .app import CSS, JS, build_app, mount, server_app  # noqa: E402
from .learners import (LEARNER_COOKIE, LEARNER_HEADER, TurnSlots, learner_id, sign_learner, signed_learner,  # noqa: E402
                       verify_learner)
from .palette import palette_command, palette_input  # noqa: E402
from .panels import models_markdown, outline_panel, plugins_markdown  # noqa: E402
from .render import (escape_learner_text, message_text, normalize_history, reply_markdown, reply_messages,  # noqa: E402
                     sanitize_markdown, spans_html)
from .uploads import accepted_suffixes, attach_upload, check_file_args, is_uploaded, upload_dir  # noqa: E402

__all__ = ["api_endpoints", "tool_endpoint", "CSS", "JS", "build_app", "mount", "server_app", "LEARNER_COOKIE",
           "LEARNER_HEADER", "TurnSlots", "learner_id", "sign_learner", "signed_learner", "verify_learner",
           "palette_command", "palette_input", "models_markdown", "outline_panel", "plugins_markdown",
           "escape_learner_text", "message_text", "normalize_history", "reply_markdown", "reply_messages",
           "sanitize_markdown", "spans_html", "accepted_suffixes", "attach_upload", "check_file_args", "is_uploaded",
           "upload_dir"]
