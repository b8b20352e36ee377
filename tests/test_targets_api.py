"""Targets over the API: CRUD, all-or-nothing imports, and credentials that never leak."""

from __future__ import annotations

import json
import logging

import pytest

from tests import fleet_stack
from tests.fleet_stack import Fleet

fleet = fleet_stack.fleet

OLT = {
    "name": "olt-centro-01",
    "kind": "snmp",
    "address": "10.20.0.5",
    "credentials": {"version": "2c", "community": "n0c-pr1vate"},
    "labels": {"zone": "pop1", "vendor": "huawei"},
    "profile": {"if": {"class": "normal"}, "optics": {"interval": 60}},
}
V3 = {
    "name": "switch-v3",
    "kind": "snmp",
    "address": "10.20.0.6",
    "port": 1161,
    "credentials": {
        "version": "3",
        "user": "noc",
        "auth_protocol": "SHA256",
        "auth_key": "auth-s3cret",
        "priv_protocol": "AES",
        "priv_key": "priv-s3cret",
    },
}


async def test_a_target_is_created_shown_replaced_and_deleted(fleet: Fleet) -> None:
    created = await fleet.api("POST", "/api/v1/targets", data=OLT)
    assert created.status == 201, created.body
    doc = created.body
    assert doc["port"] == 161 and doc["labels"]["zone"] == "pop1"
    assert doc["credentials"] == {"version": "2c", "community": "********"}
    shown = await fleet.api("GET", f"/api/v1/targets/{doc['id']}")
    assert shown.body["name"] == "olt-centro-01" and "n0c" not in json.dumps(shown.body)
    replaced = await fleet.api(
        "PUT",
        f"/api/v1/targets/{doc['id']}",
        data={**OLT, "address": "10.20.0.9", "credentials": None},
    )
    assert replaced.status == 200 and replaced.body["address"] == "10.20.0.9"
    assert replaced.body["credentials"]["version"] == "2c"  # left out: the stored ones kept
    listed = await fleet.api("GET", "/api/v1/targets?zone=pop1")
    assert listed.headers["total"] == "1" and listed.body[0]["id"] == doc["id"]
    assert (await fleet.api("DELETE", f"/api/v1/targets/{doc['id']}")).status == 200
    assert (await fleet.api("GET", f"/api/v1/targets/{doc['id']}")).status == 404


async def test_credentials_are_sealed_at_rest_and_never_logged(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await fleet.api("POST", "/api/v1/targets", data=V3)
    raw = await fleet.pool.fetchval("SELECT credentials FROM targets WHERE name = 'switch-v3'")
    assert raw and "s3cret" not in raw and "noc" not in raw
    shown = (await fleet.api("GET", "/api/v1/targets?name=switch-v3")).body[0]
    assert shown["credentials"] == {
        "version": "3",
        "user": "noc",
        "auth_protocol": "SHA256",
        "priv_protocol": "AES",
    }
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**OLT, "kind": "cisco"}, "kind"),
        ({**OLT, "address": "10.0.0.1; rm -rf /"}, "address"),
        ({**OLT, "port": 70000}, "port"),
        ({**OLT, "credentials": {"username": "x"}}, "an snmp target takes SNMP credentials"),
        ({**OLT, "kind": "huawei-olt"}, "takes a login"),
        ({**OLT, "profile": {"if": {"interval": 1}}}, "profile.if.interval"),
        ({**OLT, "surprise": 1}, "surprise"),
    ],
)
async def test_an_invalid_target_is_refused_by_field(fleet: Fleet, body: dict, field: str) -> None:
    reply = await fleet.api("POST", "/api/v1/targets", data=body)
    assert reply.status == 400 and reply.body["error"]["code"] == "INVALID_TARGET"
    assert field in json.dumps(reply.body["error"])
    assert await fleet.pool.fetchval("SELECT count(*) FROM targets") == 0


async def test_bad_json_and_duplicates_get_clear_errors(fleet: Fleet) -> None:
    bad = await fleet.api(
        "POST", "/api/v1/targets", data="{nope", headers={"Content-Type": "application/json"}
    )
    assert bad.status == 400
    assert (await fleet.api("POST", "/api/v1/targets", data=OLT)).status == 201
    dup = await fleet.api("POST", "/api/v1/targets", data=OLT)
    assert dup.status == 409 and dup.body["error"]["code"] == "TARGET_EXISTS"


CSV = """name,kind,address,port,zone,vendor,community,profile
olt-a,snmp,10.0.0.1,,pop1,huawei,c0mm-a,
olt-b,snmp,10.0.0.2,1161,pop2,huawei,c0mm-b,"{""if"": {""interval"": 60}}"
"""


async def test_a_csv_import_creates_then_updates_by_name(fleet: Fleet) -> None:
    headers = {"Content-Type": "text/csv"}
    first = await fleet.api("POST", "/api/v1/targets/import", data=CSV, headers=headers)
    assert first.status == 200 and first.body == {"created": 2, "updated": 0}
    again = await fleet.api(
        "POST", "/api/v1/targets/import", data=CSV.replace("10.0.0.2", "10.0.0.3"), headers=headers
    )
    assert again.body == {"created": 0, "updated": 2}
    rows = {r["name"]: r for r in (await fleet.api("GET", "/api/v1/targets")).body}
    assert rows["olt-b"]["address"] == "10.0.0.3" and rows["olt-b"]["port"] == 1161
    assert rows["olt-b"]["profile"] == {"if": {"interval": 60.0, "enabled": True, "options": {}}}
    assert rows["olt-a"]["labels"] == {"zone": "pop1", "vendor": "huawei"}


async def test_an_import_with_one_bad_target_imports_nothing(fleet: Fleet) -> None:
    text = "targets:\n" + "".join(
        f"  - {{name: t{i}, kind: snmp, address: 10.1.0.{i}, labels: {{zone: pop1}}}}\n"
        for i in range(1, 50)
    )
    text += "  - {name: broken, kind: snmp, address: 'not an address!'}\n"
    reply = await fleet.api(
        "POST", "/api/v1/targets/import", data=text, headers={"Content-Type": "application/yaml"}
    )
    assert reply.status == 400 and reply.body["error"]["code"] == "INVALID_IMPORT"
    assert reply.body["error"]["details"]["problems"][0]["name"] == "broken"
    assert await fleet.pool.fetchval("SELECT count(*) FROM targets") == 0
    ok = await fleet.api(
        "POST",
        "/api/v1/targets/import",
        data=text.rsplit("  - {name: broken", 1)[0],
        headers={"Content-Type": "application/yaml"},
    )
    assert ok.body == {"created": 49, "updated": 0}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("just a string", "application/yaml"),
        ("a: [1, 2", "application/yaml"),
        ("kind,address\nsnmp,10.0.0.1\n", "text/csv"),
        ("name,kind\nx,snmp\nx,snmp\n", "text/csv"),
    ],
)
async def test_malformed_import_files_are_refused(fleet: Fleet, text: str, kind: str) -> None:
    reply = await fleet.api(
        "POST", "/api/v1/targets/import", data=text, headers={"Content-Type": kind}
    )
    assert reply.status == 400, reply.body
    assert await fleet.pool.fetchval("SELECT count(*) FROM targets") == 0


async def test_viewers_read_targets_but_do_not_change_them(fleet: Fleet) -> None:
    from controller.auth import create_token
    from tests.test_nbi import Api

    viewer = Api(fleet.url, await create_token(fleet.pool, "v", "viewer"))
    try:
        assert (await viewer("GET", "/api/v1/targets")).status == 200
        assert (await viewer("POST", "/api/v1/targets", data=OLT)).status == 403
    finally:
        await viewer.close()
