"""Prometheus metrics of the CWMP server (process-wide, registered once)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SESSIONS = Counter(
    "chronos_cwmp_sessions_total",
    "CWMP sessions by how they ended",
    ["outcome"],  # ok | refused | timeout | error | lease_lost
)
SESSIONS_ACTIVE = Gauge("chronos_cwmp_sessions_active", "CWMP sessions open in this process")
RPCS = Counter("chronos_cwmp_rpcs_total", "RPCs sent to CPEs, by method", ["method"])
CPE_REQUESTS = Counter(
    "chronos_cwmp_cpe_requests_total", "Requests received from CPEs, by method", ["method"]
)
FAULTS = Counter("chronos_cwmp_faults_total", "Faults recorded, by code", ["code"])
BAD_REQUESTS = Counter(
    "chronos_cwmp_bad_requests_total", "HTTP requests refused as bad input", ["reason"]
)
INFORM_SECONDS = Histogram(
    "chronos_cwmp_inform_seconds",
    "Time to handle an Inform, from body received to InformResponse ready",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
