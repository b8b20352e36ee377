"""Bodies of the campaign API (`/api/v1/campaigns`): what an operator POSTs.

A campaign runs a list of actions, in order, on every device a query matched when it
started, in waves, a bounded number of devices at a time, and halts by itself when too
many of the devices that finished have failed. An action is a task template (any body
`POST /devices/{id}/tasks` accepts; checked by `controller.taskbodies`) or a provision
(`{"provision": "name", "args": [...]}`). Unknown keys are refused: a misspelt option
must not silently fall back to its default on a firmware rollout.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
JsonScalar = bool | int | float | str | None

MAX_ACTIONS = 20
MAX_WAVES = 100
DEVICE_STATES = ("waiting", "queued", "running", "succeeded", "failed", "skipped")
CAMPAIGN_STATES = ("pending", "running", "paused", "halted", "cancelled", "completed")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Wave(_Body):
    """One wave: a number of devices, or a percentage of the frozen device set."""

    size: int | None = Field(None, ge=1, le=10_000_000)
    percent: float | None = Field(None, gt=0, le=100)

    @model_validator(mode="after")
    def _one_of(self) -> Wave:
        if (self.size is None) == (self.percent is None):
            raise ValueError("a wave has either 'size' or 'percent'")
        return self


class ProvisionAction(_Body):
    """Run a provision by name with arguments (queued as a `provisions` task)."""

    provision: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    args: list[JsonScalar] = Field(default_factory=list, max_length=100)


class CampaignSpec(_Body):
    """`POST /api/v1/campaigns`."""

    name: Name
    # A device query in GenieACS's language ({} is every device), evaluated once at start.
    query: dict[str, Any]
    # Task templates or provisions, run in this order on each device: the next is queued
    # when the previous is done (a download is done at its TransferComplete).
    actions: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ACTIONS)
    # Consecutive slices of the device set; the last one repeats until every device has
    # a wave. Empty: one wave of everything.
    waves: list[Wave] = Field(default_factory=list, max_length=MAX_WAVES)
    maxConcurrent: int = Field(50, ge=1, le=100_000)
    # Ask each device to connect at once when its tasks are queued, instead of waiting
    # for its next periodic Inform.
    connectionRequest: bool = False
    # A device query a device must match once its tasks are done (e.g. the target
    # SoftwareVersion), within successGraceSeconds (the post-reboot Inform). None: done
    # tasks are success.
    successCriterion: dict[str, Any] | None = None
    successGraceSeconds: float = Field(300.0, ge=0, le=7 * 86400)
    # From its first task queued to its last task done; past it the device has failed.
    deviceTimeoutSeconds: float = Field(3600.0, gt=0, le=30 * 86400)
    # Halt when failed / finished exceeds this, once minFinished devices have finished,
    # or at maxFailures failed devices (whichever comes first).
    maxFailureRatio: float = Field(0.05, ge=0, le=1)
    minFinished: int = Field(10, ge=1)
    maxFailures: int | None = Field(None, ge=1)
    # On halt, withdraw the tasks of devices that were queued but had not started.
    cancelQueuedOnHalt: bool = True
    # False: a failed device's open tasks are withdrawn (its fault is kept in the
    # outcome). True: they stay, and the ACS retries them with its backoff.
    retryFailedTasks: bool = False
    # Pause after each wave until an operator resumes; or wait this long between waves.
    pauseBetweenWaves: bool = False
    waveDelaySeconds: float = Field(0.0, ge=0, le=30 * 86400)
    # Not before this time (None: at once).
    startAt: datetime | None = None


class ResumeRequest(_Body):
    """`POST /api/v1/campaigns/{id}/resume` (optional): new halting thresholds, so a
    halted campaign can go on after an operator has looked at its failures."""

    maxFailureRatio: float | None = Field(None, ge=0, le=1)
    minFinished: int | None = Field(None, ge=1)
    maxFailures: int | None = Field(None, ge=1)


CampaignAction = Literal["pause", "resume", "cancel"]
