"""One typed settings object, from TUTOR_* environment variables and CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "tutor"


class Settings(BaseSettings):
    """Every knob in one place. `tutor serve --help` and startup print the resolved values."""

    model_config = SettingsConfigDict(env_prefix="TUTOR_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="data dir: assets, models, progress")
    assets_dir: Path | None = Field(None, description="verified downloaded assets; default HOME/assets")
    host: str = "127.0.0.1"
    port: int = 7860
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="model weights dtype; auto: bfloat16 on a GPU, float32 on CPU")
    memory_budget_gb: float | None = Field(None, description="model cache budget per device; default: 60% of RAM, 80% of GPU memory")
    plugins: str | None = Field(None, description="comma-separated allowlist of plugin names to load")
    plugins_dir: list[Path] = Field(default_factory=list, description="folders whose .py files are plugins")
    offline: Literal["auto", "yes", "no"] = Field("auto", description="skip the hub and tiktoken's download host")
    max_input_chars: int = Field(200_000, description="longest message or text a tool accepts")
    max_upload_mb: float = Field(10.0, description="largest file a learner can upload")
    max_new_tokens: int = Field(512, description="most tokens one /generate may produce")
    decoder_max_batch: int = Field(16, ge=1, description="most requests one model's decoder steps together; more "
                                                         "wait for a free row (each row adds to every step's time)")
    torch_threads: int | None = Field(None, ge=1, description="CPU threads per torch operation; default: torch's "
                                      "choice (the cores). On a busy shared machine 1 can be several times faster")
    generation_url: str | None = Field(None, description="an OpenAI-compatible server (vLLM, SGLang, transformers "
                                       "serve) for /generate, e.g. http://127.0.0.1:8000/v1; unset: the local decoder")
    generation_model: str | None = Field(None, description="the model's name on that server; default: the first "
                                         "it lists at /v1/models")
    generation_key: SecretStr | None = Field(None, description="API key for that server, if it wants one")
    finetune_max_steps: int = Field(2000, description="most optimizer steps one fine-tune job may take")
    finetune_max_minutes: float = Field(30.0, description="wall time limit of one fine-tune job")
    finetune_concurrent_jobs: int = Field(1, description="fine-tune jobs running at once on this machine")
    # Web safety defaults (tutor/web/): cross-origin callers must be listed; each learner may run
    # a few turns at once; a course login can vouch for the learner with a signed value.
    cors_origins: list[str] = Field(default_factory=list,
                                    description="origins allowed to call the web app from another site (CORS)")
    learner_concurrent_jobs: int = Field(2, description="turns one learner may have running at once in the web app")
    # Lanes (tutor/lanes.py): quick tools never wait behind model tools or long jobs.
    lane_quick: int = Field(16, description="quick turns (tokenizers, lessons, questions) running at once")
    lane_model: int = Field(4, description="turns running a model at once")
    lane_long: int = Field(8, description="turns following long work (a fine-tune) at once")
    lane_queue: int = Field(16, description="turns that may wait in a full lane; more are told the server is busy")
    time_limit_quick_s: float = Field(30.0, description="time limit of a quick turn (seconds)")
    time_limit_model_s: float = Field(300.0, description="time limit of a model turn (seconds); long jobs have none")
    # Resources: uploads have a per-learner quota and expire; idle sessions are forgotten.
    upload_quota_mb: float = Field(50.0, description="uploads one learner may hold at once (MB)")
    upload_server_cap_mb: float = Field(2000.0, description="uploads all learners together may hold (MB)")
    upload_max_age_hours: float = Field(24.0, description="uploads are deleted after this many hours")
    session_idle_minutes: float = Field(240.0, description="an idle learner session is forgotten after this")
    max_sessions: int = Field(5000, description="most learner sessions kept in memory (oldest go first)")
    web_state_sessions: int = Field(1000, description="browser tabs whose Gradio state is kept in memory (oldest go first)")
    learner_secret: SecretStr | None = Field(None, description="HMAC key: when set, the web app only serves learners "
                                       "whose course login sent a signed X-Tutor-Learner header or cookie")
    # The explainer (tutor/explainer.py): who writes the answer to a free question.
    llm: Literal["none", "server", "local"] | None = Field(
        None, description="free-question answers: none (the lesson passage itself), server (TUTOR_LLM_URL), "
                          "local (SmolLM2-135M, a small model that is often wrong); default: server when "
                          "TUTOR_LLM_URL is set, else none")
    llm_url: str | None = Field(None, description="an OpenAI-compatible server's base URL, e.g. http://127.0.0.1:8000/v1")
    llm_model: str | None = Field(None, description="the model name the server knows; default: the first it lists")
    llm_api_key: SecretStr | None = Field(None, description="the server's API key, if it needs one")
    llm_timeout: float = Field(30.0, gt=0, description="seconds one explanation may take in all (connecting, "
                                                       "waiting, streaming) before the tutor falls back")

    @property
    def assets(self) -> Path:
        return self.assets_dir or self.home / "assets"

    def public(self) -> dict:
        """The resolved settings as plain JSON (printed at startup, stored with saved models)."""
        return self.model_dump(mode="json")
