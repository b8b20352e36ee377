"""Configuration models shared by every role; loading them is `controller.settings`' job.

Defaults run as they are: `chronos up` needs no configuration file at all.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(_Section):
    # None means: run an embedded PostgreSQL under data_dir (`chronos up` only).
    url: SecretStr | None = None
    pool_min: int = Field(2, ge=1)
    pool_max: int = Field(20, ge=1)
    command_timeout: float = Field(30.0, gt=0)


class AcsConfig(_Section):
    host: str = "0.0.0.0"
    port: int = Field(7547, ge=0, le=65535)
    # Seconds a session may sit between two messages; a CPE's cwmp:SessionTimeout wins.
    session_timeout: int = Field(30, ge=1, le=3600)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=4096)
    # Faulted tasks are retried after retry_delay * 2**retries seconds, at most max_retries.
    retry_delay: int = Field(300, ge=1)
    max_retries: int = Field(8, ge=0)
    # Most RPCs one session may send before it is ended with a fault (a loop guard).
    max_rpcs_per_session: int = Field(255, ge=1)


class ApiConfig(_Section):
    host: str = "0.0.0.0"
    port: int = Field(7557, ge=0, le=65535)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # How long POST /devices/{id}/tasks?connection_request waits when no timeout is given.
    task_wait_ms: int = Field(4000, ge=0)
    # GET collections answer at most this many items when no limit is given.
    max_page: int = Field(10000, ge=1)


class FileServerConfig(_Section):
    host: str = "0.0.0.0"
    port: int = Field(7567, ge=0, le=65535)
    # The base URL CPEs are told to download from and upload to, as the CPEs reach this
    # server (e.g. "http://acs.example.net:7567"). Unset: http://<host>:<port>, with
    # 127.0.0.1 for a wildcard host, which only CPEs on this machine can reach.
    public_url: str | None = Field(None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$")
    # Largest file PUT /files/{name} accepts, and largest upload a CPE may send.
    max_file_bytes: int = Field(512 * 1024 * 1024, ge=1)
    max_upload_bytes: int = Field(64 * 1024 * 1024, ge=1)
    # How long a download/upload link stays valid after the RPC that carries it (plus
    # the RPC's DelaySeconds); a transfer that has started may finish after it.
    link_seconds: int = Field(3600, ge=1)
    # A download or upload task that got no TransferComplete this many seconds after its
    # RPC is faulted (or done, for devices with options.transfer_timeout_is_success).
    # Replaced or deleted files are kept as long, so transfers in flight can finish.
    download_timeout: int = Field(3600, ge=1)
    # How often the ACS looks for such tasks and for files to remove.
    sweep_interval: float = Field(30.0, gt=0)

    def base_url(self) -> str:
        """What CPEs are told: public_url, else this server's own address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{shown}:{self.port}"


class ConnectionRequestConfig(_Section):
    timeout: float = Field(2.0, gt=0, le=60)
    retries: int = Field(1, ge=0, le=5)
    allow_basic: bool = False
    # Used when a device has not reported ConnectionRequestUsername/Password.
    username: str = ""
    password: SecretStr = SecretStr("")


class FleetConfig(_Section):
    """The agent fleet as controllers run it (agents take their settings from the CLI)."""

    # Agents heartbeat this often; an agent whose lease (renewed by each heartbeat) runs
    # out is dead, and its targets go to others. Agents stop polling a little before.
    heartbeat_ms: int = Field(1000, ge=50, le=60_000)
    lease_ms: int = Field(6000, ge=300, le=600_000)
    # The leader recomputes assignments when woken, and at least this often.
    pass_interval: float = Field(1.0, gt=0, le=60)
    # A controller re-sends every agent its full assignment this often (a safety net
    # for a missed notification).
    resync_interval: float = Field(30.0, gt=0)
    # Largest frame an agent may send (a report of many samples).
    max_frame_bytes: int = Field(8 * 1024 * 1024, ge=64 * 1024)
    # Agents whose lease ended this long ago and that own nothing are forgotten.
    forget_after_s: int = Field(7 * 86400, ge=60)


class TimeseriesConfig(_Section):
    """Samples, rollups and events (controller/ingest.py, controller/timeseries.py)."""

    # How often the leader runs time-series maintenance (partitions, rollups, retention).
    maintenance_interval: float = Field(60.0, gt=0)
    # Partitions exist this far ahead of now (a write that needs another creates it).
    partitions_ahead_days: int = Field(3, ge=1, le=366)
    # Retention in days: a whole partition is dropped once its end is older than this.
    retention_raw_days: int = Field(30, ge=1)
    retention_5m_days: int = Field(90, ge=1)
    retention_1h_days: int = Field(366, ge=1)
    retention_1d_days: int = Field(1096, ge=1)
    retention_events_days: int = Field(90, ge=1)
    # Records of stored reports, which make a resent report a no-op: keep them longer
    # than any agent may hold a report unacknowledged (its spool, a long outage).
    retention_reports_days: int = Field(7, ge=1)
    # A bucket is rolled up this long after its end; samples arriving later are rolled
    # up again by the next run.
    rollup_delay_s: int = Field(120, ge=0, le=86400)
    # Samples stamped further ahead of the controller's clock are refused (a bad clock).
    max_future_s: int = Field(86400, ge=0)
    # Series ids each controller process remembers (then it starts over).
    series_cache: int = Field(1_000_000, ge=0)


class LogConfig(_Section):
    level: str = "INFO"
    format: str = Field("json", pattern="^(json|text)$")


class Config(_Section):
    data_dir: Path = Path("var")
    # Key that seals secrets at rest (Fernet, urlsafe base64 of 32 bytes). `chronos up`
    # creates one under data_dir; production roles must be given one.
    secret_key: SecretStr | None = None
    database: DatabaseConfig = DatabaseConfig()
    acs: AcsConfig = AcsConfig()
    api: ApiConfig = ApiConfig()
    files: FileServerConfig = FileServerConfig()
    connection_request: ConnectionRequestConfig = ConnectionRequestConfig()
    fleet: FleetConfig = FleetConfig()
    log: LogConfig = LogConfig()
    timeseries: TimeseriesConfig = TimeseriesConfig()
