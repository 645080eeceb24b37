"""The Gradio page: chat, lesson outline, tool palette, models and plugins. It only translates:
everything a reply means is decided in chat.py.

    app.py       build_app() from named parts (outline, chat, palette, panels); mount(); server_app()
    turns.py     the chat events: one learner's turn, Stop, the chat API, restore on reload
    render.py    Reply -> chat messages; safe markdown; history normalisation
    palette.py   a form per tool from its schema; form values -> a command line
    panels.py    the lesson outline, models and plugins panels
    uploads.py   uploaded files: the only files a web learner can name
    learners.py  who a request acts for: signed course logins (with expiry), server-issued sessions
    classroom.py identity, lanes, upload owners and Stop flags shared by one page's handlers
    safe_html.py markdown -> HTML (markdown-it) -> sanitised (nh3)
    api.py       /ask and one endpoint per tool (the MCP listing)
"""

import os

# Safe default: no usage analytics leave the machine (a deployer may opt in explicitly). Set
# before gradio is imported by any module of this package.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from .api import api_endpoints, tool_endpoint  # noqa: E402
from .app import CSS, JS, build_app, mount, server_app  # noqa: E402
from .learners import LEARNER_COOKIE, LEARNER_HEADER, sign_learner, signed_learner, verify_learner  # noqa: E402
from .palette import palette_command, palette_input  # noqa: E402
from .panels import models_markdown, outline_panel, plugins_markdown  # noqa: E402
from .render import (escape_learner_text, message_text, normalize_history, reply_markdown, reply_messages,  # noqa: E402
                     sanitize_markdown, spans_html)
from .uploads import accepted_suffixes, attach_upload, check_file_args, is_uploaded, upload_dir  # noqa: E402

__all__ = ["api_endpoints", "tool_endpoint", "CSS", "JS", "build_app", "mount", "server_app", "LEARNER_COOKIE",
           "LEARNER_HEADER", "sign_learner", "signed_learner", "verify_learner",
           "palette_command", "palette_input", "models_markdown", "outline_panel", "plugins_markdown",
           "escape_learner_text", "message_text", "normalize_history", "reply_markdown", "reply_messages",
           "sanitize_markdown", "spans_html", "accepted_suffixes", "attach_upload", "check_file_args", "is_uploaded",
           "upload_dir"]
