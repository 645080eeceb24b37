"""A small course site that embeds the tutor three ways: a mounted route, the <gradio-app> web
component and an iframe. Run it:  python examples/course_site/app.py  (then open http://127.0.0.1:8000/)

The course's own login (here a toy one: /login?name=ada) vouches for the learner with a signed
cookie; the tutor, mounted with the same secret, trusts only that signature (tutor.web.signed_learner).
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import gradio
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tutor import web
from tutor.context import Tutor
from tutor.settings import Settings

# The course server and the tutor share this secret; learners never see it. Set it in production.
SECRET = os.environ.get("COURSE_TUTOR_SECRET", "change-me-course-secret")
PAGE = (Path(__file__).parent / "course.html").read_text(encoding="utf-8")


def create_site(tutor: Tutor | None = None) -> FastAPI:
    tutor = tutor or Tutor(Settings())
    site = FastAPI(title="LLM course")

    @site.get("/login")
    def login(name: str = "learner") -> Response:
        """A toy login: a real course uses its own accounts and sets the same signed cookie."""
        learner = re.sub(r"[^A-Za-z0-9_-]", "", name)[:40] or "learner"
        out = RedirectResponse("/", status_code=303)
        out.set_cookie(web.LEARNER_COOKIE, web.sign_learner(SECRET, learner), httponly=True, samesite="lax")
        return out

    @site.get("/", response_class=HTMLResponse)
    def course(request: Request) -> str:
        learner = web.verify_learner(SECRET, request.cookies.get(web.LEARNER_COOKIE))
        if learner is None:
            return '<p>Please <a href="/login?name=ada">log in</a> to the course first.</p>'
        base = str(request.base_url).rstrip("/")
        return PAGE.replace("{{learner}}", html.escape(learner)).replace("{{tutor_url}}", base + "/tutor/")

    @site.get("/tutor-component.js")
    def component_js() -> Response:
        """Gradio's web-component loader, pointed at the mounted tutor's own assets (no CDN)."""
        loader = Path(gradio.__file__).parent / "templates" / "frontend" / "gradio.js"
        js = loader.read_text(encoding="utf-8").replace("./assets/", "/tutor/assets/")
        return Response(js, media_type="text/javascript")

    # The tutor at /tutor: only learners the course login signed for get in (401 otherwise).
    web.mount(site, "/tutor", tutor, learner_from=web.signed_learner(SECRET))
    return site


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_site(), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
