"""The simulated CPE data model behaves as TR-069 Annex A says a CPE must."""

from __future__ import annotations

import pytest

from acs.faults import CwmpFault
from acs.messages import ParameterValue, SetParameterAttribute
from acs.values import BOOLEAN, DATETIME, INTEGER_TYPES, STRING
from tools.sim.datamodel import DataModel, check_value, make_identity
from tools.sim.template import BASE64, HEX_BINARY

IGD = "InternetGatewayDevice"
WCD = f"{IGD}.WANDevice.1.WANConnectionDevice.1"
WLAN = f"{IGD}.LANDevice.1.WLANConfiguration.1"
START = 1_700_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def igd(clock: Clock) -> DataModel:
    return DataModel.generate("tr098", 7, family="hgw-pppoe", clock=clock)


@pytest.fixture
def device(clock: Clock) -> DataModel:
    return DataModel.generate("tr181", 7, family="ont-gpon", clock=clock)


def fault_of(call: object, *args: object) -> CwmpFault:
    with pytest.raises(CwmpFault) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def names(infos: list) -> list[str]:
    return [i.name for i in infos]


# --- shape of the models ---------------------------------------------------------------


@pytest.mark.parametrize("model", ["tr098", "tr181"])
def test_each_model_has_a_few_hundred_parameters(model: str) -> None:
    count = len(DataModel.generate(model, 1).parameter_names())
    assert 300 <= count <= 800


@pytest.mark.parametrize("model", ["tr098", "tr181"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_value_is_valid_for_its_declared_type_and_constraints(model: str, seed: int) -> None:
    dm = DataModel.generate(model, seed)
    known = {STRING, BOOLEAN, DATETIME, HEX_BINARY, BASE64, *INTEGER_TYPES}
    for name in dm.parameter_names():
        value = dm.read(name)
        spec = dm.spec(name)
        assert spec.type in known, name
        assert value is not None
        if spec.hidden and value == "":
            continue  # an unset secret
        assert check_value(spec, value)[1] is None, (name, value)


def test_identities_differ_by_seed_and_are_stable_for_one_seed() -> None:
    serials = {make_identity("tr181", seed).serial_number for seed in range(2000)}
    assert len(serials) == 2000
    assert make_identity("tr098", 5) == make_identity("tr098", 5)
    assert make_identity("tr098", 5, serial_number="ABC123").serial_number == "ABC123"


def test_same_seed_and_clock_give_the_same_tree(clock: Clock) -> None:
    one = DataModel.generate("tr098", 11, clock=clock)
    two = DataModel.generate("tr098", 11, clock=clock)
    other = DataModel.generate("tr098", 12, clock=clock)
    assert one.get_parameter_values([""]) == two.get_parameter_values([""])
    mac = f"{IGD}.LANDevice.1.LANHostConfigManagement.MACAddress"
    assert one[mac] != other[mac]


# --- GetParameterNames (A.3.2.3) -------------------------------------------------------


def test_gpn_of_the_empty_path_with_next_level_names_only_the_root_object(igd: DataModel) -> None:
    assert names(igd.get_parameter_names("", True)) == [f"{IGD}."]


def test_gpn_of_the_empty_path_lists_every_object_and_parameter(igd: DataModel) -> None:
    listed = names(igd.get_parameter_names("", False))
    assert listed[0] == f"{IGD}."
    assert f"{WCD}.WANPPPConnection.1." in listed
    assert f"{WCD}.WANPPPConnection.1.Username" in listed
    assert [n for n in listed if not n.endswith(".")] == igd.parameter_names()


def test_gpn_next_level_lists_direct_children_only(igd: DataModel) -> None:
    listed = names(igd.get_parameter_names(f"{IGD}.DeviceInfo.", True))
    assert f"{IGD}.DeviceInfo.SerialNumber" in listed
    assert f"{IGD}.DeviceInfo.VendorConfigFile." in listed
    assert f"{IGD}.DeviceInfo.VendorConfigFile.1." not in listed
    assert f"{IGD}.DeviceInfo." not in listed


def test_gpn_next_level_of_a_table_lists_its_instances(igd: DataModel) -> None:
    listed = names(igd.get_parameter_names(f"{IGD}.LANDevice.1.WLANConfiguration.", True))
    assert listed == [f"{IGD}.LANDevice.1.WLANConfiguration.{n}." for n in (1, 2)]


def test_gpn_without_next_level_includes_the_object_and_all_descendants(igd: DataModel) -> None:
    listed = names(igd.get_parameter_names(f"{WCD}.WANPPPConnection.", False))
    assert listed[0] == f"{WCD}.WANPPPConnection."
    assert f"{WCD}.WANPPPConnection.1.Stats.EthernetBytesSent" in listed


def test_gpn_of_a_parameter_names_just_it(igd: DataModel) -> None:
    infos = igd.get_parameter_names(f"{WLAN}.SSID", False)
    assert [(i.name, i.writable) for i in infos] == [(f"{WLAN}.SSID", True)]


def test_gpn_of_a_parameter_with_next_level_is_invalid_arguments(igd: DataModel) -> None:
    assert fault_of(igd.get_parameter_names, f"{WLAN}.SSID", True).fault_code == 9003


@pytest.mark.parametrize(
    "path",
    [
        f"{IGD}.DeviceInfo.NoSuchThing",
        f"{IGD}.DeviceInfo",  # an object named without its trailing dot
        f"{IGD}.DeviceInfo.SerialNumber.",  # a parameter named as an object
        f"{IGD}.LANDevice.9.",
        f"{IGD}.LANDevice.01.",
        "Device.DeviceInfo.",
        f"{IGD}..DeviceInfo.",
    ],
)
def test_gpn_of_an_unknown_name_is_fault_9005(igd: DataModel, path: str) -> None:
    assert fault_of(igd.get_parameter_names, path, False).fault_code == 9005


def test_gpn_writable_follows_the_standard_for_parameters_tables_and_instances(
    igd: DataModel,
) -> None:
    writable = {i.name: i.writable for i in igd.get_parameter_names("", False)}
    assert writable[f"{WLAN}.SSID"] is True
    assert writable[f"{IGD}.DeviceInfo.SerialNumber"] is False
    assert writable[f"{IGD}.ManagementServer.ParameterKey"] is False
    assert writable[f"{IGD}.ManagementServer.PeriodicInformInterval"] is True
    assert writable[f"{WCD}.WANPPPConnection.1.ExternalIPAddress"] is False
    assert writable[f"{WCD}.WANIPConnection.1.ExternalIPAddress"] is True
    assert writable[f"{IGD}.LANDevice.1.LANEthernetInterfaceNumberOfEntries"] is False
    # Objects: AddObject allowed on the table, DeleteObject on its instances.
    assert writable[f"{WCD}.WANPPPConnection."] is True
    assert writable[f"{WCD}.WANPPPConnection.1."] is True
    assert writable[f"{IGD}.LANDevice."] is False
    assert writable[f"{IGD}.LANDevice.1."] is False
    assert writable[f"{IGD}.DeviceInfo."] is False


# --- GetParameterValues (A.3.2.2) ------------------------------------------------------


def test_gpv_returns_full_names_and_every_parameter_under_partial_paths(igd: DataModel) -> None:
    values = igd.get_parameter_values([f"{IGD}.DeviceInfo.SerialNumber", f"{IGD}.Time."])
    assert values[0] == ParameterValue(
        f"{IGD}.DeviceInfo.SerialNumber", igd.identity.serial_number, "xsd:string"
    )
    assert {v.name for v in values[1:]} == {
        n for n in igd.parameter_names() if n.startswith(f"{IGD}.Time.")
    }
    enable = next(v for v in values if v.name == f"{IGD}.Time.Enable")
    assert (enable.value, enable.type) == ("true", "xsd:boolean")


def test_gpv_of_the_empty_path_returns_the_whole_tree(device: DataModel) -> None:
    assert [v.name for v in device.get_parameter_values([""])] == device.parameter_names()


def test_gpv_with_one_unknown_name_fails_whole_request_with_9005(igd: DataModel) -> None:
    call = igd.get_parameter_values
    fault = fault_of(call, [f"{IGD}.DeviceInfo.SerialNumber", f"{IGD}.Nope"])
    assert fault.fault_code == 9005


@pytest.mark.parametrize(
    "name",
    [
        f"{IGD}.ManagementServer.Password",
        f"{IGD}.ManagementServer.ConnectionRequestPassword",
        f"{WCD}.WANPPPConnection.1.Password",
        f"{WLAN}.KeyPassphrase",
        f"{WLAN}.PreSharedKey.1.KeyPassphrase",
    ],
)
def test_hidden_values_read_back_as_empty_strings(igd: DataModel, name: str) -> None:
    igd.set_parameter_values([ParameterValue(name, "s3cret-value")])
    assert igd.get_parameter_values([name])[0].value == ""
    assert igd.read(name) == "s3cret-value"


def test_tr181_wifi_passphrase_is_hidden_and_set_through_security(device: DataModel) -> None:
    name = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"
    assert device.get_parameter_values([name])[0].value == ""
    device.set_parameter_values([ParameterValue(name, "correct horse")])
    assert device[name] == "correct horse"


# --- SetParameterValues (A.3.2.1) ------------------------------------------------------


def test_spv_applies_every_value_and_sets_the_parameter_key(igd: DataModel) -> None:
    status = igd.set_parameter_values(
        [
            ParameterValue(f"{WLAN}.SSID", "Home"),
            ParameterValue(
                f"{IGD}.ManagementServer.PeriodicInformInterval", "60", "xsd:unsignedInt"
            ),
            ParameterValue(f"{WLAN}.RadioEnabled", "0", "xsd:boolean"),
        ],
        "key-1",
    )
    assert status == 0
    assert igd[f"{WLAN}.SSID"] == "Home"
    assert igd[f"{IGD}.ManagementServer.PeriodicInformInterval"] == "60"
    assert igd[f"{WLAN}.RadioEnabled"] == "false"
    assert igd[f"{IGD}.ManagementServer.ParameterKey"] == "key-1"


def test_spv_is_all_or_nothing_and_names_every_failing_parameter(igd: DataModel) -> None:
    before = igd[f"{WLAN}.SSID"]
    fault = fault_of(
        igd.set_parameter_values,
        [
            ParameterValue(f"{WLAN}.SSID", "Applied-If-Alone"),
            ParameterValue(f"{IGD}.DeviceInfo.Nope", "x"),
            ParameterValue(f"{IGD}.DeviceInfo.SerialNumber", "X1"),
            ParameterValue(f"{WLAN}.Channel", "300", "xsd:unsignedInt"),
            ParameterValue(f"{WLAN}.TransmitPower", "50", "xsd:string"),
        ],
        "key-2",
    )
    assert fault.fault_code == 9003
    assert [(p.name, p.code) for p in fault.parameter_faults] == [
        (f"{IGD}.DeviceInfo.Nope", 9005),
        (f"{IGD}.DeviceInfo.SerialNumber", 9008),
        (f"{WLAN}.Channel", 9007),
        (f"{WLAN}.TransmitPower", 9006),
    ]
    assert all(p.string for p in fault.parameter_faults)
    assert igd[f"{WLAN}.SSID"] == before
    assert igd[f"{IGD}.ManagementServer.ParameterKey"] == ""


@pytest.mark.parametrize(
    ("name", "value", "type_"),
    [
        (f"{IGD}.ManagementServer.PeriodicInformInterval", "0", "xsd:unsignedInt"),
        (f"{IGD}.ManagementServer.PeriodicInformInterval", "-5", "xsd:unsignedInt"),
        (f"{IGD}.ManagementServer.PeriodicInformInterval", "often", "xsd:unsignedInt"),
        (f"{IGD}.ManagementServer.PeriodicInformInterval", "4294967296", "xsd:unsignedInt"),
        (f"{WLAN}.RadioEnabled", "yes", "xsd:boolean"),
        (f"{IGD}.ManagementServer.PeriodicInformTime", "tomorrow", "xsd:dateTime"),
        (f"{WLAN}.SSID", "x" * 33, "xsd:string"),
        (f"{WLAN}.BeaconType", "WPA4", "xsd:string"),
        (f"{WLAN}.KeyPassphrase", "short", "xsd:string"),
        (f"{IGD}.LANDevice.1.LANHostConfigManagement.DHCPLeaseTime", "-2", "xsd:int"),
    ],
)
def test_spv_of_a_value_its_type_does_not_allow_is_9007(
    igd: DataModel, name: str, value: str, type_: str
) -> None:
    fault = fault_of(igd.set_parameter_values, [ParameterValue(name, value, type_)])
    assert [(p.name, p.code) for p in fault.parameter_faults] == [(name, 9007)]


def test_spv_of_a_partial_path_is_an_unknown_parameter(igd: DataModel) -> None:
    fault = fault_of(igd.set_parameter_values, [ParameterValue(f"{IGD}.Time.", "x")])
    assert [p.code for p in fault.parameter_faults] == [9005]


def test_spv_naming_a_parameter_twice_is_invalid_arguments(igd: DataModel) -> None:
    values = [ParameterValue(f"{WLAN}.SSID", "a"), ParameterValue(f"{WLAN}.SSID", "b")]
    fault = fault_of(igd.set_parameter_values, values)
    assert fault.fault_code == 9003
    assert igd[f"{WLAN}.SSID"] != "b"


def test_spv_of_a_datetime_and_an_int_stores_them(igd: DataModel) -> None:
    igd.set_parameter_values(
        [
            ParameterValue(
                f"{IGD}.ManagementServer.PeriodicInformTime", "2024-05-01T10:00:00Z", DATETIME
            ),
            ParameterValue(
                f"{IGD}.LANDevice.1.LANHostConfigManagement.DHCPLeaseTime", " -1 ", "xsd:int"
            ),
        ]
    )
    assert igd[f"{IGD}.ManagementServer.PeriodicInformTime"] == "2024-05-01T10:00:00Z"
    assert igd[f"{IGD}.LANDevice.1.LANHostConfigManagement.DHCPLeaseTime"] == "-1"


# --- Get/SetParameterAttributes (A.3.2.4, A.3.2.5) -----------------------------------


def test_forced_active_notification_parameters_start_active(igd: DataModel) -> None:
    attributes = igd.get_parameter_attributes(
        [
            f"{IGD}.DeviceInfo.SoftwareVersion",
            f"{IGD}.ManagementServer.ConnectionRequestURL",
            f"{WLAN}.SSID",
        ]
    )
    assert [(a.notification, a.access_list) for a in attributes] == [(2, ()), (2, ()), (0, ())]


def test_spa_sets_notification_and_access_list(igd: DataModel) -> None:
    igd.set_parameter_attributes(
        [
            SetParameterAttribute(f"{WLAN}.SSID", True, 2, True, ("Subscriber",)),
            SetParameterAttribute(f"{WLAN}.Channel", False, 2, True, ()),
        ]
    )
    ssid, channel = igd.get_parameter_attributes([f"{WLAN}.SSID", f"{WLAN}.Channel"])
    assert (ssid.notification, ssid.access_list) == (2, ("Subscriber",))
    assert (channel.notification, channel.access_list) == (0, ())


def test_spa_refuses_active_notification_where_the_standard_lets_the_cpe_deny_it(
    igd: DataModel,
) -> None:
    items = [
        SetParameterAttribute(f"{WLAN}.SSID", True, 1, False),
        SetParameterAttribute(f"{IGD}.DeviceInfo.UpTime", True, 2, False),
    ]
    assert fault_of(igd.set_parameter_attributes, items).fault_code == 9009
    assert igd.get_parameter_attributes([f"{WLAN}.SSID"])[0].notification == 0


def test_spa_cannot_turn_off_forced_active_notification(igd: DataModel) -> None:
    item = SetParameterAttribute(f"{IGD}.DeviceInfo.SoftwareVersion", True, 0, False)
    assert fault_of(igd.set_parameter_attributes, [item]).fault_code == 9009


def test_spa_on_a_partial_path_applies_to_each_parameter_it_may(igd: DataModel) -> None:
    igd.set_parameter_attributes([SetParameterAttribute(f"{IGD}.DeviceInfo.", True, 2, False)])
    attributes = {
        a.name: a.notification for a in igd.get_parameter_attributes([f"{IGD}.DeviceInfo."])
    }
    assert attributes[f"{IGD}.DeviceInfo.ProvisioningCode"] == 2
    assert attributes[f"{IGD}.DeviceInfo.Manufacturer"] == 2
    assert attributes[f"{IGD}.DeviceInfo.UpTime"] == 0  # refuses active, skipped


def test_gpa_and_spa_of_unknown_names_are_9005(igd: DataModel) -> None:
    assert fault_of(igd.get_parameter_attributes, [f"{IGD}.Nope"]).fault_code == 9005
    item = SetParameterAttribute(f"{IGD}.Nope", True, 1, False)
    assert fault_of(igd.set_parameter_attributes, [item]).fault_code == 9005


# --- AddObject / DeleteObject (A.3.2.6, A.3.2.7) -------------------------------------


def test_add_object_creates_the_next_instance_with_its_default_children(igd: DataModel) -> None:
    number = igd.add_object(f"{WCD}.WANPPPConnection.", "add-1")
    assert number == 2
    instance = f"{WCD}.WANPPPConnection.2."
    listed = names(igd.get_parameter_names(instance, False))
    assert f"{instance}Username" in listed
    assert f"{instance}PortMapping." in listed
    assert igd[f"{instance}Enable"] == "false"
    assert igd[f"{instance}ConnectionType"] == "Unconfigured"
    assert igd[f"{instance}PortMappingNumberOfEntries"] == "0"
    assert igd[f"{WCD}.WANPPPConnectionNumberOfEntries"] == "2"
    assert igd[f"{IGD}.ManagementServer.ParameterKey"] == "add-1"


def test_objects_nest_inside_added_instances(igd: DataModel) -> None:
    device = igd.add_object(f"{IGD}.WANDevice.1.WANConnectionDevice.")
    path = f"{IGD}.WANDevice.1.WANConnectionDevice.{device}."
    assert igd[f"{path}WANIPConnectionNumberOfEntries"] == "0"
    assert igd.add_object(f"{path}WANIPConnection.") == 1
    assert igd.add_object(f"{path}WANIPConnection.1.PortMapping.") == 1
    assert igd[f"{path}WANIPConnection.1.PortMappingNumberOfEntries"] == "1"


@pytest.mark.parametrize(
    "name",
    [
        f"{IGD}.DeviceInfo.",  # a single-instance object
        f"{IGD}.LANDevice.",  # a table the ACS may not add to
        f"{WCD}.WANPPPConnection.1.",  # an instance, not a table
        f"{WCD}.WANPPPConnection",  # no trailing dot
        f"{WLAN}.SSID",
        f"{IGD}.NoSuchTable.",
    ],
)
def test_add_object_on_anything_but_a_writable_table_is_9005(igd: DataModel, name: str) -> None:
    assert fault_of(igd.add_object, name).fault_code == 9005
    assert igd[f"{IGD}.ManagementServer.ParameterKey"] == ""


def test_delete_object_removes_the_instance_and_its_subtree(igd: DataModel) -> None:
    forwarding = f"{IGD}.Layer3Forwarding.Forwarding."
    added = igd.add_object(forwarding)
    igd.set_parameter_values([ParameterValue(f"{forwarding}{added}.DestIPAddress", "10.0.0.0")])
    assert igd.delete_object(f"{forwarding}1.", "del-1") == 0
    assert igd.instance_numbers(forwarding) == [added]
    assert igd[f"{IGD}.Layer3Forwarding.ForwardNumberOfEntries"] == "1"
    assert fault_of(igd.get_parameter_values, [f"{forwarding}1.Enable"]).fault_code == 9005
    assert igd[f"{IGD}.ManagementServer.ParameterKey"] == "del-1"


def test_instance_numbers_are_never_reused(igd: DataModel) -> None:
    table = f"{WCD}.WANIPConnection."
    igd.delete_object(f"{table}1.")
    assert igd.instance_numbers(table) == []
    assert igd.add_object(table) == 2
    second = igd.add_object(table)
    igd.delete_object(f"{table}{second}.")
    assert igd.add_object(table) == 4


@pytest.mark.parametrize(
    "name",
    [
        f"{IGD}.LANDevice.1.",  # not deletable
        f"{WCD}.WANPPPConnection.",  # the table itself
        f"{WCD}.WANPPPConnection.7.",  # no such instance
        f"{IGD}.DeviceInfo.",
    ],
)
def test_delete_object_of_anything_but_a_deletable_instance_is_9005(
    igd: DataModel, name: str
) -> None:
    assert fault_of(igd.delete_object, name).fault_code == 9005


def is_table(name: str) -> bool:
    return name.endswith(".") and not name[:-1].rsplit(".", 1)[1].isdigit()


@pytest.mark.parametrize("model", ["tr098", "tr181"])
def test_number_of_entries_parameters_always_match_the_instances(model: str) -> None:
    dm = DataModel.generate(model, 3)

    def assert_counters_match() -> int:
        counters = [n for n in dm.parameter_names() if dm.spec(n).counts]
        for name in counters:
            table = f"{name.rsplit('.', 1)[0]}.{dm.spec(name).counts}."
            assert dm[name] == str(len(dm.get_parameter_names(table, True))), name
        return len(counters)

    assert assert_counters_match() >= 15
    for info in dm.get_parameter_names("", False):
        if info.writable and is_table(info.name):
            dm.add_object(info.name)
    assert_counters_match()
    for info in dm.get_parameter_names("", False):
        deletable = info.writable and info.name.endswith(".1.") and info.name in dm
        if deletable:
            dm.delete_object(info.name)
    assert_counters_match()


# --- Inform parameters -------------------------------------------------------------


def test_tr098_inform_carries_the_forced_parameters_and_the_default_wan_address(
    igd: DataModel,
) -> None:
    informed = [p.name for p in igd.inform_parameters()]
    assert informed == [
        f"{IGD}.DeviceSummary",
        f"{IGD}.DeviceInfo.SpecVersion",
        f"{IGD}.DeviceInfo.HardwareVersion",
        f"{IGD}.DeviceInfo.SoftwareVersion",
        f"{IGD}.DeviceInfo.ProvisioningCode",
        f"{IGD}.ManagementServer.ConnectionRequestURL",
        f"{IGD}.ManagementServer.ParameterKey",
        f"{WCD}.WANPPPConnection.1.ExternalIPAddress",
    ]
    igd.set_parameter_values(
        [
            ParameterValue(
                f"{IGD}.Layer3Forwarding.DefaultConnectionService", f"{WCD}.WANIPConnection.1"
            )
        ]
    )
    assert igd.inform_parameters()[-1].name == f"{WCD}.WANIPConnection.1.ExternalIPAddress"


def test_dhcp_family_informs_its_ip_connection_address() -> None:
    dm = DataModel.generate("tr098", 1, family="hgw-dhcp")
    assert dm.inform_parameters()[-1].name == f"{WCD}.WANIPConnection.1.ExternalIPAddress"


def test_tr181_inform_follows_the_default_route_interface(device: DataModel) -> None:
    informed = {p.name: p.value for p in device.inform_parameters()}
    assert set(informed) >= {
        "Device.RootDataModelVersion",
        "Device.DeviceInfo.HardwareVersion",
        "Device.DeviceInfo.SoftwareVersion",
        "Device.DeviceInfo.ProvisioningCode",
        "Device.ManagementServer.ParameterKey",
        "Device.ManagementServer.ConnectionRequestURL",
        "Device.ManagementServer.AliasBasedAddressing",
    }
    wan = "Device.IP.Interface.2.IPv4Address.1.IPAddress"
    assert informed[wan] == device[wan]
    device.set_parameter_values(
        [
            ParameterValue(
                "Device.Routing.Router.1.IPv4Forwarding.1.Interface", "Device.IP.Interface.1"
            )
        ]
    )
    assert device.inform_parameters()[-1] == ParameterValue(
        "Device.IP.Interface.1.IPv4Address.1.IPAddress", "192.168.1.1", "xsd:string"
    )


def test_inform_parameters_show_the_connection_request_url_and_parameter_key(
    igd: DataModel,
) -> None:
    igd.settings.connection_request_url = "http://127.0.0.1:5000/abc"
    igd.add_object(f"{IGD}.Layer3Forwarding.Forwarding.", "pk-9")
    informed = {p.name: p.value for p in igd.inform_parameters()}
    assert informed[f"{IGD}.ManagementServer.ConnectionRequestURL"] == "http://127.0.0.1:5000/abc"
    assert informed[f"{IGD}.ManagementServer.ParameterKey"] == "pk-9"


# --- time, reboot, factory reset, value changes -------------------------------------


def test_uptime_and_counters_advance_with_the_clock_and_restart_on_reboot(
    device: DataModel, clock: Clock
) -> None:
    counter = "Device.Optical.Interface.1.Stats.BytesReceived"
    assert device["Device.DeviceInfo.UpTime"] == "0"
    clock.now += 3600
    assert device["Device.DeviceInfo.UpTime"] == "3600"
    first = int(device[counter])
    clock.now += 60
    assert int(device[counter]) > first > 0
    device.reboot()
    assert device["Device.DeviceInfo.UpTime"] == "0"
    assert device[counter] == "0"


def test_optical_levels_are_in_a_plausible_gpon_range(device: DataModel, clock: Clock) -> None:
    for _ in range(5):
        clock.now += 777
        rx = int(device["Device.Optical.Interface.1.OpticalSignalLevel"])
        vendor = float(device["Device.Optical.Interface.1.X_0C7A15_RxPower"])
        assert -28000 < rx < -8000
        assert abs(vendor * 1000 - rx) < 10  # the vendor figure agrees with the standard one


def test_factory_reset_forgets_the_acs_changes_but_keeps_installed_firmware(
    igd: DataModel,
) -> None:
    original_ssid = igd[f"{WLAN}.SSID"]
    igd.set_parameter_values([ParameterValue(f"{WLAN}.SSID", "Changed")], "k")
    igd.add_object(f"{WCD}.WANPPPConnection.")
    igd.install_firmware("9.9.9")
    igd.factory_reset()
    assert igd[f"{WLAN}.SSID"] == original_ssid
    assert igd.instance_numbers(f"{WCD}.WANPPPConnection.") == [1]
    assert igd[f"{IGD}.ManagementServer.ParameterKey"] == ""
    assert igd[f"{IGD}.DeviceInfo.SoftwareVersion"] == "9.9.9"


def test_device_side_changes_are_remembered_for_notified_parameters(igd: DataModel) -> None:
    address = f"{WCD}.WANPPPConnection.1.ExternalIPAddress"
    igd.set_value(f"{WLAN}.SSID", "quiet")  # notification off: nothing to report
    assert igd.value_changes() == []
    igd.set_parameter_attributes([SetParameterAttribute(address, True, 1, False)])
    igd.set_value(address, "198.51.100.77")
    assert igd.value_changes() == [ParameterValue(address, "198.51.100.77", "xsd:string")]
    assert not igd.has_active_change()
    igd.set_value(f"{IGD}.DeviceInfo.ProvisioningCode", "NEW")  # forced active
    assert igd.has_active_change()
    igd.clear_value_changes([address, f"{IGD}.DeviceInfo.ProvisioningCode"])
    assert igd.value_changes() == []


def test_acs_changes_are_not_reported_back_as_value_changes(igd: DataModel) -> None:
    code = f"{IGD}.DeviceInfo.ProvisioningCode"
    igd.set_parameter_values([ParameterValue(code, "FROM-ACS")])
    assert igd.value_changes() == []
