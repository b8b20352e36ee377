"""The TR-181 `Device:2` tree of a simulated ONT with a home gateway inside.

Names, types and access follow TR-181 Issue 2: DeviceInfo, ManagementServer, Time,
Ethernet (four LAN ports, links, the WAN VLAN termination), WiFi (two radios, SSIDs and
access points with their Security objects), PPP over the VLAN, IP interfaces (LAN and
the PPP-backed WAN) with their IPv4 addresses, Routing (the default route names the
WAN interface), the DHCPv4 server, Hosts, and Optical.Interface.1: the PON port with
its standard signal levels in dBm/1000 and a vendor's RX/TX power, temperature, voltage
and bias current. Manufacturers, OUIs and versions are invented.
"""

from __future__ import annotations

import functools

from tools.sim.template import (
    Ctx,
    Family,
    Notify,
    Obj,
    Param,
    Profile,
    Reader,
    Table,
    boolean,
    boot_time,
    decimal_wave,
    entries,
    hex_binary,
    identity_field,
    integer,
    local_time,
    mac,
    private_ip,
    public_ip,
    secret,
    string,
    timestamp,
    traffic,
    unsigned,
    unsigned_long,
    uptime,
    wave,
)
from tools.sim.tr098 import instances_between, management_server

ROOT = "Device"
WAN_INTERFACE = f"{ROOT}.IP.Interface.2"

FAMILIES: tuple[Family, ...] = (
    Family(
        name="ont-gpon",
        manufacturer="Veloxa Networks",
        oui="0C7A15",
        product_class="VX-G4AX",
        model_name="VX-G4AX",
        description="GPON ONT with Wi-Fi 6 home gateway",
        hardware_versions=("G4AX.A", "G4AX.B"),
        software_versions=("V5R21C10S115", "V5R22C00S020"),
        serial_prefix="VLXA",
        vendor_prefix="X_0C7A15_",
    ),
    Family(
        name="ont-xgspon",
        manufacturer="Calyx Telecom",
        oui="5C9A3E",
        product_class="CX-X10",
        model_name="CX-X10",
        description="XGS-PON ONT with Wi-Fi 6 home gateway",
        hardware_versions=("X10-r1",),
        software_versions=("4.2.0.18", "4.3.1.2"),
        serial_prefix="CLYX",
        vendor_prefix="X_CALYX-TEL_",
        traits=frozenset({"xgs-pon"}),
    ),
)

_STATUS = ("Up", "Down", "Unknown", "Dormant", "NotPresent", "LowerLayerDown", "Error")
_HOST_NAMES = ("android-phone", "laptop", "smart-tv", "desktop", "tablet", "printer", "console")
_SECURITY_MODES = (
    "None",
    "WEP-64",
    "WEP-128",
    "WPA-Personal",
    "WPA2-Personal",
    "WPA3-Personal",
    "WPA-WPA2-Personal",
    "WPA3-Personal-Transition",
    "WPA-Enterprise",
    "WPA2-Enterprise",
    "WPA3-Enterprise",
    "WPA-WPA2-Enterprise",
)


def _alias(kind: str) -> Param:
    # TR-181 Alias data type: a non-empty handle; CPE-assigned ones start with "cpe-".
    return string(lambda ctx: f"cpe-{kind}-{ctx.instance()}", w=True, max_length=64)


def _interface_head(
    kind: str, lower: str | Param = "", *, upstream: bool = False
) -> dict[str, Param]:
    """The parameters every TR-181 interface object starts with; Name is `kind`N."""
    return {
        "Enable": boolean(True, w=True),
        "Status": string("Up", enum=_STATUS),
        "Alias": _alias(kind),
        "Name": string(lambda ctx: f"{kind}{ctx.instance() - 1}", max_length=64),
        "LastChange": unsigned(uptime(), notify=Notify.CAN_DENY),
        "LowerLayers": (
            lower if isinstance(lower, Param) else string(lower, w=True, max_length=1024)
        ),
        "Upstream": boolean(upstream),
    }


def _stats(rate: float) -> Obj:
    return Obj(
        {
            "BytesSent": unsigned_long(traffic(rate, 64), notify=Notify.CAN_DENY),
            "BytesReceived": unsigned_long(traffic(rate * 6, 64), notify=Notify.CAN_DENY),
            "PacketsSent": unsigned_long(traffic(rate / 700, 64), notify=Notify.CAN_DENY),
            "PacketsReceived": unsigned_long(traffic(rate / 200, 64), notify=Notify.CAN_DENY),
            "ErrorsSent": unsigned(0, notify=Notify.CAN_DENY),
            "ErrorsReceived": unsigned(traffic(0.001), notify=Notify.CAN_DENY),
            "DiscardPacketsSent": unsigned(0, notify=Notify.CAN_DENY),
            "DiscardPacketsReceived": unsigned(traffic(0.002), notify=Notify.CAN_DENY),
        }
    )


def _device_info(family: Family) -> Obj:
    vp = family.vendor_prefix
    return Obj(
        {
            "Manufacturer": string(identity_field("manufacturer"), max_length=64),
            "ManufacturerOUI": string(identity_field("oui"), max_length=6),
            "ModelName": string(identity_field("model_name"), max_length=64),
            "Description": string(identity_field("description")),
            "ProductClass": string(identity_field("product_class"), max_length=64),
            "SerialNumber": string(identity_field("serial_number"), max_length=64),
            "HardwareVersion": string(identity_field("hardware_version"), max_length=64),
            "SoftwareVersion": string(
                identity_field("software_version"), max_length=64, notify=Notify.FORCED
            ),
            "AdditionalHardwareVersion": string(""),
            "AdditionalSoftwareVersion": string(""),
            "ProvisioningCode": string("", w=True, max_length=64, notify=Notify.FORCED),
            "UpTime": unsigned(uptime(), notify=Notify.CAN_DENY),
            "FirstUseDate": timestamp(boot_time),
            "VendorConfigFileNumberOfEntries": entries("VendorConfigFile"),
            "VendorConfigFile": Table(
                Obj(
                    {
                        "Alias": _alias("vcf"),
                        "Name": string("factory-defaults", max_length=64),
                        "Version": string("1", max_length=16),
                        "Date": timestamp("2024-01-15T00:00:00Z"),
                        "Description": string("Factory configuration"),
                    }
                )
            ),
            "MemoryStatus": Obj(
                {
                    "Total": unsigned(524288),
                    "Free": unsigned(wave(262144, 40000, 1800), notify=Notify.CAN_DENY),
                }
            ),
            "ProcessStatus": Obj({"CPUUsage": unsigned(wave(15, 10, 300), notify=Notify.CAN_DENY)}),
            f"{vp}Temperature": string(decimal_wave(55, 5, 3600, 1), notify=Notify.CAN_DENY),
        }
    )


def _management_server() -> Obj:
    tr098 = management_server()
    return Obj(
        {
            "EnableCWMP": boolean(True, w=True),
            **tr098.children,
            "ScheduleReboot": timestamp(w=True),
            "DelayReboot": integer(-1, w=True, low=-1),
            "AliasBasedAddressing": boolean(False),
            "InstanceMode": string(
                "InstanceNumber", w=True, enum=("InstanceNumber", "InstanceAlias")
            ),
            "AutoCreateInstances": boolean(False, w=True),
            "ManageableDeviceNumberOfEntries": unsigned(0),
            "ManageableDeviceNotificationLimit": unsigned(0, w=True),
        }
    )


def _time() -> Obj:
    return Obj(
        {
            "Enable": boolean(True, w=True),
            "Status": string(
                "Synchronized",
                enum=(
                    "Disabled",
                    "Unsynchronized",
                    "Synchronized",
                    "Error_FailedToSynchronize",
                    "Error",
                ),
            ),
            "NTPServer1": string("0.pool.ntp.org", w=True, max_length=64),
            "NTPServer2": string("1.pool.ntp.org", w=True, max_length=64),
            "NTPServer3": string("", w=True, max_length=64),
            "CurrentLocalTime": timestamp(local_time),
            "LocalTimeZone": string("<-03>3", w=True),
        }
    )


def _ethernet() -> Obj:
    interface = Obj(
        {
            **_interface_head("eth"),
            "Status": string(
                lambda ctx: "Up" if ctx.instance() == 1 or ctx.rng().random() < 0.4 else "Down",
                enum=_STATUS,
            ),
            "MACAddress": string(mac(), max_length=17),
            "MaxBitRate": integer(-1, w=True, low=-1),
            "CurrentBitRate": unsigned(1000),
            "DuplexMode": string("Auto", w=True, enum=("Half", "Full", "Auto")),
            "Stats": _stats(30_000),
        }
    )
    link = Obj(
        {
            **_interface_head(
                "link",
                string(
                    lambda ctx: (
                        "Device.Ethernet.Interface.1"
                        if ctx.instance() == 1
                        else "Device.Optical.Interface.1"
                    ),
                    w=True,
                    max_length=1024,
                ),
            ),
            "MACAddress": string(mac("link"), max_length=17),
            "Stats": _stats(45_000),
        }
    )
    vlan = Obj(
        {
            **_interface_head("veip", "Device.Ethernet.Link.2", upstream=True),
            "VLANID": unsigned(100, w=True, low=1, high=4094),
            "TPID": unsigned(33024, w=True),
            "Stats": _stats(45_000),
        }
    )
    return Obj(
        {
            "InterfaceNumberOfEntries": entries("Interface"),
            "LinkNumberOfEntries": entries("Link"),
            "VLANTerminationNumberOfEntries": entries("VLANTermination"),
            "Interface": Table(interface, 4),
            "Link": Table(link, 2, writable=True),
            "VLANTermination": Table(vlan, 1, writable=True),
        }
    )


def _band(ctx: Ctx, two_four: str, five: str) -> str:
    return two_four if ctx.instance() == 1 else five


def _wifi() -> Obj:
    radio = Obj(
        {
            **_interface_head("wifi"),
            "MaxBitRate": unsigned(lambda ctx: _band(ctx, "574", "2402")),
            "SupportedFrequencyBands": string(lambda ctx: _band(ctx, "2.4GHz", "5GHz")),
            "OperatingFrequencyBand": string(
                lambda ctx: _band(ctx, "2.4GHz", "5GHz"), w=True, enum=("2.4GHz", "5GHz")
            ),
            "SupportedStandards": string(lambda ctx: _band(ctx, "b,g,n,ax", "a,n,ac,ax")),
            "OperatingStandards": string(lambda ctx: _band(ctx, "g,n,ax", "a,n,ac,ax"), w=True),
            "PossibleChannels": string(
                lambda ctx: _band(ctx, "1-13", "36,40,44,48,52,56,60,64,100,104,108,112")
            ),
            "ChannelsInUse": string(lambda ctx: _band(ctx, "6", "36")),
            "Channel": unsigned(lambda ctx: _band(ctx, "6", "36"), w=True, low=1, high=255),
            "AutoChannelSupported": boolean(True),
            "AutoChannelEnable": boolean(True, w=True),
            "OperatingChannelBandwidth": string(
                lambda ctx: _band(ctx, "20MHz", "80MHz"),
                w=True,
                enum=("20MHz", "40MHz", "80MHz", "160MHz", "Auto"),
            ),
            "TransmitPowerSupported": string("-1,25,50,75,100"),
            "TransmitPower": integer(100, w=True, low=-1, high=100),
            "RegulatoryDomain": string("BR ", w=True, max_length=3),
            "Stats": Obj(
                {
                    "BytesSent": unsigned_long(traffic(90_000, 64), notify=Notify.CAN_DENY),
                    "BytesReceived": unsigned_long(traffic(20_000, 64), notify=Notify.CAN_DENY),
                    "PacketsSent": unsigned_long(traffic(80, 64), notify=Notify.CAN_DENY),
                    "PacketsReceived": unsigned_long(traffic(30, 64), notify=Notify.CAN_DENY),
                    "Noise": integer(wave(-92, 3, 600), notify=Notify.CAN_DENY),
                }
            ),
        }
    )
    ssid = Obj(
        {
            **_interface_head(
                "wl",
                string(lambda ctx: f"Device.WiFi.Radio.{ctx.instance()}", w=True, max_length=1024),
            ),
            "BSSID": string(mac("bssid"), max_length=17),
            "MACAddress": string(mac("bssid"), max_length=17),
            "SSID": string(_ssid, w=True, max_length=32),
            "Stats": _stats(20_000),
        }
    )
    passphrase = secret(10)
    access_point = Obj(
        {
            "Enable": boolean(True, w=True),
            "Status": string("Enabled", enum=("Disabled", "Enabled", "Error_Misconfigured")),
            "Alias": _alias("ap"),
            "SSIDReference": string(
                lambda ctx: f"Device.WiFi.SSID.{ctx.instance()}", w=True, max_length=256
            ),
            "SSIDAdvertisementEnabled": boolean(True, w=True),
            "WMMCapability": boolean(True),
            "UAPSDCapability": boolean(True),
            "WMMEnable": boolean(True, w=True),
            "UAPSDEnable": boolean(False, w=True),
            "AssociatedDeviceNumberOfEntries": entries("AssociatedDevice"),
            "MaxAssociatedDevices": unsigned(32, w=True),
            "IsolationEnable": boolean(False, w=True),
            "Security": Obj(
                {
                    "ModesSupported": string(",".join(_SECURITY_MODES)),
                    "ModeEnabled": string("WPA2-Personal", w=True, enum=_SECURITY_MODES),
                    "WEPKey": hex_binary(w=True, max_length=26),
                    "PreSharedKey": hex_binary(w=True, max_length=64),
                    "KeyPassphrase": string(
                        passphrase, w=True, hidden=True, min_length=8, max_length=63
                    ),
                    "RekeyingInterval": unsigned(3600, w=True),
                    "RadiusServerIPAddr": string("", w=True, max_length=45),
                    "RadiusServerPort": unsigned(1812, w=True, low=0, high=65535),
                    "RadiusSecret": string("", w=True, hidden=True),
                }
            ),
            "WPS": Obj(
                {
                    "Enable": boolean(False, w=True),
                    "ConfigMethodsSupported": string("PushButton,PIN"),
                    "ConfigMethodsEnabled": string("PushButton", w=True),
                }
            ),
            "AssociatedDevice": Table(
                Obj(
                    {
                        "MACAddress": string(mac("station"), max_length=17),
                        "AuthenticationState": boolean(True),
                        "LastDataDownlinkRate": unsigned(wave(300_000, 100_000, 120)),
                        "LastDataUplinkRate": unsigned(wave(150_000, 50_000, 120)),
                        "SignalStrength": integer(wave(-55, 10, 90), notify=Notify.CAN_DENY),
                        "Retransmissions": unsigned(traffic(0.5), notify=Notify.CAN_DENY),
                        "Active": boolean(True),
                    }
                ),
                instances_between(0, 3),
            ),
        }
    )
    return Obj(
        {
            "RadioNumberOfEntries": entries("Radio"),
            "SSIDNumberOfEntries": entries("SSID"),
            "AccessPointNumberOfEntries": entries("AccessPoint"),
            "Radio": Table(radio, 2),
            "SSID": Table(ssid, 2, writable=True),
            "AccessPoint": Table(access_point, 2, writable=True),
        }
    )


def _ssid(ctx: Ctx) -> str:
    band = "" if ctx.instance() == 1 else "-5G"
    brand = ctx.device.identity.manufacturer.split()[0].upper()
    return f"{brand}-{ctx.device.identity.serial_number[-4:]}{band}"


def _ppp(up: bool) -> Obj:
    head = _interface_head("ppp", "Device.Ethernet.VLANTermination.1" if up else "")
    head["Enable"] = boolean(up, w=True)
    head["Status"] = string("Up" if up else "Down", enum=_STATUS)
    return Obj(
        {
            **head,
            "Reset": boolean(False, w=True),
            "ConnectionStatus": string(
                "Connected" if up else "Unconfigured",
                enum=(
                    "Unconfigured",
                    "Connecting",
                    "Authenticating",
                    "Connected",
                    "PendingDisconnect",
                    "Disconnecting",
                    "Disconnected",
                ),
            ),
            "LastConnectionError": string("ERROR_NONE"),
            "AutoDisconnectTime": unsigned(0, w=True),
            "IdleDisconnectTime": unsigned(0, w=True),
            "WarnDisconnectDelay": unsigned(0, w=True),
            "Username": string(
                (lambda ctx: f"{ctx.device.identity.serial_number.lower()}@isp.example")
                if up
                else "",
                w=True,
                max_length=64,
            ),
            "Password": string(secret(12) if up else "", w=True, hidden=True, max_length=64),
            "EncryptionProtocol": string("None", enum=("None", "MPPE")),
            "CompressionProtocol": string("None", enum=("None", "Van Jacobson", "STAC LZS")),
            "AuthenticationProtocol": string("CHAP", enum=("PAP", "CHAP", "MS-CHAP")),
            "MaxMRUSize": unsigned(1492, w=True, low=64, high=65535),
            "CurrentMRUSize": unsigned(1492 if up else 0),
            "ConnectionTrigger": string(
                "AlwaysOn", w=True, enum=("OnDemand", "AlwaysOn", "Manual")
            ),
            "LCPEcho": unsigned(30),
            "LCPEchoRetry": unsigned(3),
            "PPPoE": Obj(
                {
                    "SessionID": unsigned(lambda ctx: str(ctx.rng().randint(1, 65534))),
                    "ACName": string("", w=True),
                    "ServiceName": string("", w=True),
                }
            ),
            "IPCP": Obj(
                {
                    "LocalIPAddress": string(public_ip if up else "", max_length=15),
                    "RemoteIPAddress": string("100.64.0.1" if up else "", max_length=15),
                    "DNSServers": string("100.64.0.53" if up else "", max_length=64),
                    "PassthroughEnable": boolean(False, w=True),
                }
            ),
            "Stats": _stats(45_000),
        }
    )


def _ipv4_address(ctx: Ctx) -> str:
    return "192.168.1.1" if ctx.instance(0) == 1 else public_ip(ctx)


def _ip() -> Obj:
    address = Obj(
        {
            "Enable": boolean(True, w=True),
            "Status": string(
                "Enabled", enum=("Disabled", "Enabled", "Error_Misconfigured", "Error")
            ),
            "Alias": _alias("ipv4"),
            "IPAddress": string(_ipv4_address, w=True, max_length=15),
            "SubnetMask": string(
                lambda ctx: "255.255.255.0" if ctx.instance(0) == 1 else "255.255.255.255",
                w=True,
                max_length=15,
            ),
            "AddressingType": string(
                lambda ctx: "Static" if ctx.instance(0) == 1 else "IPCP",
                enum=("DHCP", "AutoIP", "IPCP", "Static"),
            ),
        }
    )
    added_address = Obj(
        {
            **address.children,
            "Enable": boolean(False, w=True),
            "Status": string("Disabled", enum=("Disabled", "Enabled", "Error_Misconfigured")),
            "IPAddress": string("", w=True, max_length=15),
            "SubnetMask": string("", w=True, max_length=15),
            "AddressingType": string("Static", enum=("DHCP", "AutoIP", "IPCP", "Static")),
        }
    )
    interface_fields = {
        **_interface_head(
            "ip",
            string(
                lambda ctx: (
                    "Device.Ethernet.Link.1" if ctx.instance() == 1 else "Device.PPP.Interface.1"
                ),
                w=True,
                max_length=1024,
            ),
        ),
        "IPv4Enable": boolean(True, w=True),
        "IPv6Enable": boolean(False, w=True),
        "Router": string("Device.Routing.Router.1", w=True),
        "Reset": boolean(False, w=True),
        "MaxMTUSize": unsigned(
            lambda ctx: "1500" if ctx.instance() == 1 else "1492", w=True, low=64, high=65535
        ),
        "Type": string("Normal", enum=("Normal", "Loopback", "Tunnel", "Tunneled")),
        "Loopback": boolean(False, w=True),
        "IPv4AddressNumberOfEntries": entries("IPv4Address"),
        "IPv4Address": Table(address, 1, writable=True, added=added_address),
        "Stats": _stats(40_000),
    }
    interface_fields["Upstream"] = boolean(lambda ctx: "false" if ctx.instance() == 1 else "true")
    interface = Obj(interface_fields)
    added_interface = Obj(
        {
            **interface_fields,
            "Enable": boolean(False, w=True),
            "Status": string("Down", enum=_STATUS),
            "LowerLayers": string("", w=True, max_length=1024),
            "IPv4Address": Table(address, 0, writable=True, added=added_address),
        }
    )
    return Obj(
        {
            "IPv4Capable": boolean(True),
            "IPv4Enable": boolean(True, w=True),
            "IPv4Status": string("Enabled", enum=("Disabled", "Enabled", "Error")),
            "IPv6Capable": boolean(True),
            "IPv6Enable": boolean(False, w=True),
            "IPv6Status": string("Disabled", enum=("Disabled", "Enabled", "Error")),
            "ULAPrefix": string("", w=True, max_length=49),
            "InterfaceNumberOfEntries": entries("Interface"),
            "Interface": Table(interface, 2, writable=True, added=added_interface),
        }
    )


def _routing() -> Obj:
    forwarding = Obj(
        {
            "Enable": boolean(True, w=True),
            "Status": string("Enabled", enum=("Disabled", "Enabled", "Error_Misconfigured")),
            "Alias": _alias("route"),
            "StaticRoute": boolean(False),
            "DestIPAddress": string("", w=True, max_length=15),
            "DestSubnetMask": string("", w=True, max_length=15),
            "ForwardingPolicy": integer(-1, w=True, low=-1),
            "GatewayIPAddress": string("100.64.0.1", w=True, max_length=15),
            "Interface": string(WAN_INTERFACE, w=True),
            "Origin": string("IPCP", enum=("DHCPv4", "OSPF", "IPCP", "RIP", "Static")),
            "ForwardingMetric": integer(0, w=True, low=-1),
        }
    )
    added = Obj(
        {
            **forwarding.children,
            "Enable": boolean(False, w=True),
            "StaticRoute": boolean(True),
            "GatewayIPAddress": string("", w=True, max_length=15),
            "Interface": string("", w=True),
            "Origin": string("Static", enum=("DHCPv4", "OSPF", "IPCP", "RIP", "Static")),
        }
    )
    router = Obj(
        {
            "Enable": boolean(True, w=True),
            "Status": string("Enabled", enum=("Disabled", "Enabled", "Error")),
            "Alias": _alias("router"),
            "IPv4ForwardingNumberOfEntries": entries("IPv4Forwarding"),
            "IPv4Forwarding": Table(forwarding, 1, writable=True, added=added),
        }
    )
    return Obj({"RouterNumberOfEntries": entries("Router"), "Router": Table(router, 1)})


def _dhcpv4() -> Obj:
    static = Obj(
        {
            "Enable": boolean(False, w=True),
            "Alias": _alias("static"),
            "Chaddr": string("", w=True, max_length=17),
            "Yiaddr": string("", w=True, max_length=15),
        }
    )
    pool = Obj(
        {
            "Enable": boolean(True, w=True),
            "Status": string("Enabled", enum=("Disabled", "Enabled", "Error_Misconfigured")),
            "Alias": _alias("pool"),
            "Order": unsigned(lambda ctx: str(ctx.instance()), w=True, low=1),
            "Interface": string("Device.IP.Interface.1", w=True),
            "MinAddress": string("192.168.1.2", w=True, max_length=15),
            "MaxAddress": string("192.168.1.254", w=True, max_length=15),
            "ReservedAddresses": string("", w=True),
            "SubnetMask": string("255.255.255.0", w=True, max_length=15),
            "DNSServers": string("192.168.1.1", w=True, max_length=64),
            "DomainName": string("home", w=True, max_length=64),
            "IPRouters": string("192.168.1.1", w=True, max_length=64),
            "LeaseTime": integer(86400, w=True, low=-1),
            "StaticAddressNumberOfEntries": entries("StaticAddress"),
            "StaticAddress": Table(static, 0, writable=True),
        }
    )
    return Obj(
        {
            "ClientNumberOfEntries": unsigned(0),
            "Server": Obj(
                {
                    "Enable": boolean(True, w=True),
                    "PoolNumberOfEntries": entries("Pool"),
                    "Pool": Table(pool, 1, writable=True),
                }
            ),
        }
    )


def _hosts() -> Obj:
    host = Obj(
        {
            "Alias": _alias("host"),
            "PhysAddress": string(mac("host"), max_length=64),
            "IPAddress": string(private_ip("192.168.1", 100, 199), max_length=45),
            "AddressSource": string("DHCP", enum=("DHCP", "Static", "AutoIP", "None")),
            "LeaseTimeRemaining": integer(lambda ctx: str(86400 - int(ctx.uptime) % 86400), low=-1),
            "Layer1Interface": string(
                lambda ctx: ctx.rng("if").choice(
                    ("Device.Ethernet.Interface.1", "Device.WiFi.SSID.1", "Device.WiFi.SSID.2")
                )
            ),
            "Layer3Interface": string("Device.IP.Interface.1"),
            "HostName": string(
                lambda ctx: f"{ctx.rng().choice(_HOST_NAMES)}-{ctx.instance()}", max_length=64
            ),
            "Active": boolean(True),
            "IPv4AddressNumberOfEntries": entries("IPv4Address"),
            "IPv4Address": Table(
                Obj({"IPAddress": string(private_ip("192.168.1", 100, 199), max_length=15)})
            ),
        }
    )
    return Obj(
        {"HostNumberOfEntries": entries("Host"), "Host": Table(host, instances_between(1, 6))}
    )


def _optical(family: Family) -> Obj:
    vp = family.vendor_prefix
    xgs = "xgs-pon" in family.traits
    rx_base = -21.0 if xgs else -19.5
    tx_base = 6.0 if xgs else 2.3
    interface = Obj(
        {
            **_interface_head("pon", upstream=True),
            # TR-181 Dbm1000: thousandths of a dBm.
            "OpticalSignalLevel": integer(
                wave(rx_base, 0.8, 3600, 1000, key="rx"), notify=Notify.CAN_DENY
            ),
            "LowerOpticalThreshold": integer(-28000 if not xgs else -29000),
            "UpperOpticalThreshold": integer(-8000),
            "TransmitOpticalLevel": integer(
                wave(tx_base, 0.2, 7200, 1000, key="tx"), notify=Notify.CAN_DENY
            ),
            "LowerTransmitPowerThreshold": integer(500 if not xgs else 4000),
            "UpperTransmitPowerThreshold": integer(5000 if not xgs else 9000),
            "Stats": _stats(50_000),
            f"{vp}PONMode": string("XGS-PON" if xgs else "GPON"),
            f"{vp}RxPower": string(
                decimal_wave(rx_base, 0.8, 3600, 2, key="rx"), notify=Notify.CAN_DENY
            ),
            f"{vp}TxPower": string(
                decimal_wave(tx_base, 0.2, 7200, 2, key="tx"), notify=Notify.CAN_DENY
            ),
            f"{vp}Temperature": string(decimal_wave(48, 6, 5400, 1), notify=Notify.CAN_DENY),
            f"{vp}Voltage": string(decimal_wave(3.3, 0.02, 600, 2), notify=Notify.CAN_DENY),
            f"{vp}BiasCurrent": string(decimal_wave(12.5, 1.5, 3600, 2), notify=Notify.CAN_DENY),
        }
    )
    return Obj({"InterfaceNumberOfEntries": entries("Interface"), "Interface": Table(interface)})


@functools.cache
def schema(family: Family) -> Obj:
    """The Device:2 tree of `family` (cached: templates are immutable)."""
    return Obj(
        {
            "RootDataModelVersion": string("2.12", max_length=32),
            "DeviceInfo": _device_info(family),
            "ManagementServer": _management_server(),
            "Time": _time(),
            "Ethernet": _ethernet(),
            "WiFi": _wifi(),
            "PPP": Obj(
                {
                    "InterfaceNumberOfEntries": entries("Interface"),
                    "SupportedNCPs": string("IPCP"),
                    "Interface": Table(_ppp(up=True), 1, writable=True, added=_ppp(up=False)),
                }
            ),
            "IP": _ip(),
            "Routing": _routing(),
            "DHCPv4": _dhcpv4(),
            "Hosts": _hosts(),
            "Optical": _optical(family),
        }
    )


def _default_route_address(model: Reader) -> str | None:
    """The IPv4 address of the interface the enabled default route goes out of."""
    router = f"{ROOT}.Routing.Router.1.IPv4Forwarding."
    for number in model.instance_numbers(router):
        route = f"{router}{number}."
        if model.read(route + "Enable") != "true":
            continue
        if (model.read(route + "DestIPAddress") or "0.0.0.0") != "0.0.0.0":
            continue
        interface = (model.read(route + "Interface") or "").rstrip(".")
        if not interface:
            continue
        for address in model.instance_numbers(f"{interface}.IPv4Address."):
            name = f"{interface}.IPv4Address.{address}.IPAddress"
            if model.read(name) is not None:
                return name
    return None


def inform_names(model: Reader) -> list[str]:
    """TR-181 Forced Inform parameters, plus the default route interface's address."""
    names = [
        f"{ROOT}.RootDataModelVersion",
        f"{ROOT}.DeviceInfo.HardwareVersion",
        f"{ROOT}.DeviceInfo.SoftwareVersion",
        f"{ROOT}.DeviceInfo.ProvisioningCode",
        f"{ROOT}.ManagementServer.ParameterKey",
        f"{ROOT}.ManagementServer.ConnectionRequestURL",
        f"{ROOT}.ManagementServer.AliasBasedAddressing",
    ]
    address = _default_route_address(model)
    if address:
        names.append(address)
    return names


PROFILE = Profile(
    name="tr181",
    root=ROOT,
    families=FAMILIES,
    schema=schema,
    inform_names=inform_names,
    default_cwmp_version=2,
)
