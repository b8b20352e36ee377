"""The TR-098 `InternetGatewayDevice:1` tree of a simulated home gateway.

Object and parameter names, types and access follow TR-098 (IGD:1.x): DeviceInfo,
ManagementServer, Time, Layer3Forwarding, IPPingDiagnostics, one LANDevice (host
configuration, four Ethernet ports, two WLANs with WEP and pre-shared keys, the hosts
table) and one WANDevice with an Ethernet WAN and one WANConnectionDevice holding a
WANIPConnection and a WANPPPConnection. Two families: a PPPoE gateway and a DHCP-WAN
gateway; the default connection service (and so the Inform's ExternalIPAddress) differs.
Manufacturers, OUIs and versions are invented; the structure is the standard's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from tools.sim.template import (
    Ctx,
    Device,
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
    identity_field,
    integer,
    local_time,
    mac,
    private_ip,
    public_ip,
    secret,
    setting,
    string,
    timestamp,
    traffic,
    unsigned,
    uptime,
    wave,
)

ROOT = "InternetGatewayDevice"
_WCD = f"{ROOT}.WANDevice.1.WANConnectionDevice.1"
DEFAULT_PPP_SERVICE = f"{_WCD}.WANPPPConnection.1"
DEFAULT_IP_SERVICE = f"{_WCD}.WANIPConnection.1"

FAMILIES: tuple[Family, ...] = (
    Family(
        name="hgw-pppoe",
        manufacturer="Veloxa Networks",
        oui="0C7A15",
        product_class="VX2200",
        model_name="VX-2200AC",
        description="Dual-band 802.11ac home gateway, Ethernet WAN",
        hardware_versions=("VX2200.A1", "VX2200.B2"),
        software_versions=("3.4.12", "3.5.2", "3.6.0"),
        serial_prefix="VX22",
        vendor_prefix="X_0C7A15_",
    ),
    Family(
        name="hgw-dhcp",
        manufacturer="Calyx Telecom",
        oui="5C9A3E",
        product_class="CX-R300",
        model_name="CX-R300",
        description="Home router with DHCP WAN",
        hardware_versions=("R300v1", "R300v2"),
        software_versions=("1.9.8-r412", "2.0.1-r520"),
        serial_prefix="CXR3",
        vendor_prefix="X_CALYX-TEL_",
        traits=frozenset({"dhcp-wan"}),
    ),
)

_HOST_NAMES = ("android-phone", "laptop", "smart-tv", "desktop", "tablet", "printer", "console")


def _ro(value: str) -> Param:
    return string(value)


def instances_between(low: int, high: int) -> Callable[[Device], int]:
    """A table size that varies per device between `low` and `high` (hosts, stations)."""
    return lambda device: low + device.seed % (high - low + 1)


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
            "AdditionalHardwareVersion": _ro(""),
            "AdditionalSoftwareVersion": _ro(""),
            "SpecVersion": string("1.0", max_length=16),
            "ProvisioningCode": string("", w=True, max_length=64, notify=Notify.FORCED),
            "UpTime": unsigned(uptime(), notify=Notify.CAN_DENY),
            "FirstUseDate": timestamp(boot_time),
            "DeviceLog": string(
                lambda ctx: (
                    f"kernel: boot complete after {min(int(ctx.uptime), 42)} s\n"
                    "cwmp: session with ACS established"
                ),
                max_length=32768,
                notify=Notify.CAN_DENY,
            ),
            "VendorConfigFileNumberOfEntries": entries("VendorConfigFile"),
            "VendorConfigFile": Table(
                Obj(
                    {
                        "Name": _ro("factory-defaults"),
                        "Version": _ro("1"),
                        "Date": timestamp("2024-01-15T00:00:00Z"),
                        "Description": _ro("Factory configuration"),
                    }
                )
            ),
            f"{vp}CPUUsage": unsigned(wave(18, 12, 300), notify=Notify.CAN_DENY),
            f"{vp}MemoryUsage": unsigned(wave(46, 6, 1800), notify=Notify.CAN_DENY),
            f"{vp}Temperature": string(decimal_wave(52, 4, 3600, 1), notify=Notify.CAN_DENY),
        }
    )


def management_server() -> Obj:
    """TR-098 ManagementServer (shared by TR-181's, which adds a few parameters)."""
    return Obj(
        {
            "URL": string(setting("acs_url"), w=True),
            "Username": string(setting("acs_username"), w=True),
            "Password": string(setting("acs_password"), w=True, hidden=True),
            "PeriodicInformEnable": boolean(setting("periodic_inform_enable"), w=True),
            "PeriodicInformInterval": unsigned(setting("periodic_inform_interval"), w=True, low=1),
            "PeriodicInformTime": timestamp(w=True),
            "ParameterKey": string("", max_length=32, notify=Notify.CAN_DENY),
            "ConnectionRequestURL": string(setting("connection_request_url"), notify=Notify.FORCED),
            "ConnectionRequestUsername": string(setting("connection_request_username"), w=True),
            "ConnectionRequestPassword": string(
                setting("connection_request_password"), w=True, hidden=True
            ),
            "UpgradesManaged": boolean(False, w=True),
            "KickURL": _ro(""),
            "DownloadProgressURL": _ro(""),
            "DefaultActiveNotificationThrottle": unsigned(0, w=True),
            "CWMPRetryMinimumWaitInterval": unsigned(5, w=True, low=1, high=65535),
            "CWMPRetryIntervalMultiplier": unsigned(2000, w=True, low=1000, high=65535),
            "UDPConnectionRequestAddress": _ro(""),
            "UDPConnectionRequestAddressNotificationLimit": unsigned(0, w=True),
            "STUNEnable": boolean(False, w=True),
            "STUNServerAddress": string("", w=True),
            "STUNServerPort": unsigned(3478, w=True, low=0, high=65535),
            "STUNUsername": string("", w=True),
            "STUNPassword": string("", w=True, hidden=True),
            "STUNMaximumKeepAlivePeriod": integer(-1, w=True, low=-1),
            "STUNMinimumKeepAlivePeriod": unsigned(0, w=True),
            "NATDetected": boolean(False),
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
            "LocalTimeZone": string("+00:00", w=True, max_length=6),
            "LocalTimeZoneName": string("UTC", w=True, max_length=64),
            "DaylightSavingsUsed": boolean(False, w=True),
        }
    )


def _layer3(default_service: str) -> Obj:
    forwarding = Obj(
        {
            "Enable": boolean(True, w=True),
            "Status": string("Enabled", enum=("Disabled", "Enabled", "Error")),
            "Type": string("Default", w=True, enum=("Default", "Network", "Host")),
            "DestIPAddress": string("", w=True, max_length=15),
            "DestSubnetMask": string("", w=True, max_length=15),
            "SourceIPAddress": string("", w=True, max_length=15),
            "SourceSubnetMask": string("", w=True, max_length=15),
            "GatewayIPAddress": string(private_ip("100.64.0", 1, 1), w=True, max_length=15),
            "Interface": string(default_service, w=True),
            "ForwardingMetric": integer(-1, w=True, low=-1),
        }
    )
    added = Obj({**forwarding.children, "Enable": boolean(False, w=True)})
    return Obj(
        {
            "DefaultConnectionService": string(default_service, w=True),
            "ForwardNumberOfEntries": entries("Forwarding"),
            "Forwarding": Table(forwarding, 1, writable=True, added=added),
        }
    )


def _ip_ping() -> Obj:
    return Obj(
        {
            "DiagnosticsState": string(
                "None",
                w=True,
                enum=(
                    "None",
                    "Requested",
                    "Complete",
                    "Error_CannotResolveHostName",
                    "Error_Internal",
                    "Error_Other",
                ),
            ),
            "Interface": string("", w=True),
            "Host": string("", w=True),
            "NumberOfRepetitions": unsigned(4, w=True, low=1),
            "Timeout": unsigned(1000, w=True, low=1),
            "DataBlockSize": unsigned(56, w=True, low=1, high=65535),
            "DSCP": unsigned(0, w=True, low=0, high=64),
            "SuccessCount": unsigned(0),
            "FailureCount": unsigned(0),
            "AverageResponseTime": unsigned(0),
            "MinimumResponseTime": unsigned(0),
            "MaximumResponseTime": unsigned(0),
        }
    )


def _ethernet_stats(prefix: str = "") -> Obj:
    return Obj(
        {
            f"{prefix}BytesSent": unsigned(traffic(40_000), notify=Notify.CAN_DENY),
            f"{prefix}BytesReceived": unsigned(traffic(250_000), notify=Notify.CAN_DENY),
            f"{prefix}PacketsSent": unsigned(traffic(60), notify=Notify.CAN_DENY),
            f"{prefix}PacketsReceived": unsigned(traffic(200), notify=Notify.CAN_DENY),
        }
    )


def _lan_ethernet() -> Obj:
    return Obj(
        {
            "Enable": boolean(True, w=True),
            "Status": string(
                lambda ctx: "Up" if ctx.instance() == 1 or ctx.rng().random() < 0.4 else "NoLink",
                enum=("Up", "NoLink", "Error", "Disabled"),
            ),
            "MACAddress": string(mac(), max_length=17),
            "MACAddressControlEnabled": boolean(False, w=True),
            "MaxBitRate": string("Auto", w=True, enum=("10", "100", "1000", "Auto")),
            "DuplexMode": string("Auto", w=True, enum=("Half", "Full", "Auto")),
            "Name": string(lambda ctx: f"eth{ctx.instance() - 1}", max_length=16),
            "Stats": _ethernet_stats(),
        }
    )


_ENCRYPTION_MODES = (
    "WEPEncryption",
    "TKIPEncryption",
    "WEPandTKIPEncryption",
    "AESEncryption",
    "WEPandAESEncryption",
    "TKIPandAESEncryption",
    "WEPandTKIPandAESEncryption",
)


def _ssid(ctx: Ctx) -> str:
    band = "" if ctx.instance() == 1 else "-5G"
    brand = ctx.device.identity.manufacturer.split()[0].upper()
    return f"{brand}-{ctx.device.identity.serial_number[-4:]}{band}"


def _wlan() -> Obj:
    passphrase = secret(10)
    return Obj(
        {
            "Enable": boolean(True, w=True),
            "Status": string("Up", enum=("Up", "Error", "Disabled")),
            "Name": string(lambda ctx: f"wl{ctx.instance() - 1}", max_length=16),
            "BSSID": string(mac("bssid"), max_length=17),
            "MaxBitRate": string("Auto", w=True, max_length=4),
            "Channel": unsigned(
                lambda ctx: "6" if ctx.instance() == 1 else "36", w=True, low=0, high=255
            ),
            "AutoChannelEnable": boolean(True, w=True),
            "SSID": string(_ssid, w=True, max_length=32),
            "BeaconType": string(
                "11i",
                w=True,
                enum=(
                    "None",
                    "Basic",
                    "WPA",
                    "11i",
                    "BasicandWPA",
                    "Basicand11i",
                    "WPAand11i",
                    "BasicandWPAand11i",
                ),
            ),
            "MACAddressControlEnabled": boolean(False, w=True),
            "Standard": string(lambda ctx: "n" if ctx.instance() == 1 else "ac"),
            "WEPKeyIndex": unsigned(1, w=True, low=1, high=4),
            "KeyPassphrase": string(passphrase, w=True, hidden=True, min_length=8, max_length=63),
            "WEPEncryptionLevel": _ro("Disabled,40-bit,104-bit"),
            "BasicEncryptionModes": string("None", w=True, enum=("None", "WEPEncryption")),
            "BasicAuthenticationMode": string(
                "None", w=True, enum=("None", "EAPAuthentication", "SharedAuthentication")
            ),
            "WPAEncryptionModes": string("TKIPEncryption", w=True, enum=_ENCRYPTION_MODES),
            "WPAAuthenticationMode": string(
                "PSKAuthentication", w=True, enum=("PSKAuthentication", "EAPAuthentication")
            ),
            "IEEE11iEncryptionModes": string("AESEncryption", w=True, enum=_ENCRYPTION_MODES),
            "IEEE11iAuthenticationMode": string(
                "PSKAuthentication",
                w=True,
                enum=("PSKAuthentication", "EAPAuthentication", "EAPandPSKAuthentication"),
            ),
            "PossibleChannels": _ro("1-13"),
            "BasicDataTransmitRates": string("1,2,5.5,11", w=True),
            "OperationalDataTransmitRates": string("1,2,5.5,6,9,11,12,18,24,36,48,54", w=True),
            "PossibleDataTransmitRates": _ro("1,2,5.5,6,9,11,12,18,24,36,48,54"),
            "RadioEnabled": boolean(True, w=True),
            "SSIDAdvertisementEnabled": boolean(True, w=True),
            "AutoRateFallBackEnabled": boolean(True, w=True),
            "RegulatoryDomain": string("BR ", w=True, max_length=3),
            "TransmitPowerSupported": _ro("20,40,60,80,100"),
            "TransmitPower": unsigned(100, w=True, low=0, high=100),
            "TotalBytesSent": unsigned(traffic(90_000), notify=Notify.CAN_DENY),
            "TotalBytesReceived": unsigned(traffic(20_000), notify=Notify.CAN_DENY),
            "TotalPacketsSent": unsigned(traffic(80), notify=Notify.CAN_DENY),
            "TotalPacketsReceived": unsigned(traffic(30), notify=Notify.CAN_DENY),
            "TotalAssociations": entries("AssociatedDevice"),
            "AssociatedDevice": Table(
                Obj(
                    {
                        "AssociatedDeviceMACAddress": string(mac("station"), max_length=17),
                        "AssociatedDeviceIPAddress": string(
                            private_ip("192.168.1", 100, 199), max_length=15
                        ),
                        "AssociatedDeviceAuthenticationState": boolean(True),
                    }
                ),
                instances_between(0, 3),
            ),
            "WEPKey": Table(Obj({"WEPKey": string("", w=True, hidden=True, max_length=128)}), 4),
            "PreSharedKey": Table(
                Obj(
                    {
                        "PreSharedKey": string("", w=True, hidden=True, max_length=64),
                        "KeyPassphrase": string(
                            lambda ctx: passphrase(ctx) if ctx.instance() == 1 else "",
                            w=True,
                            hidden=True,
                            max_length=63,
                        ),
                        "AssociatedDeviceMACAddress": string("", w=True, max_length=17),
                    }
                ),
                10,
            ),
        }
    )


def _host_config() -> Obj:
    ip_interface = Obj(
        {
            "Enable": boolean(True, w=True),
            "IPInterfaceIPAddress": string("192.168.1.1", w=True, max_length=15),
            "IPInterfaceSubnetMask": string("255.255.255.0", w=True, max_length=15),
            "IPInterfaceAddressingType": string(
                "Static", w=True, enum=("DHCP", "Static", "AutoIP")
            ),
        }
    )
    added_interface = Obj(
        {
            **ip_interface.children,
            "Enable": boolean(False, w=True),
            "IPInterfaceIPAddress": string("", w=True, max_length=15),
            "IPInterfaceSubnetMask": string("", w=True, max_length=15),
        }
    )
    return Obj(
        {
            "MACAddress": string(mac("lan"), max_length=17),
            "DHCPServerConfigurable": boolean(True, w=True),
            "DHCPServerEnable": boolean(True, w=True),
            "DHCPRelay": boolean(False),
            "MinAddress": string("192.168.1.2", w=True, max_length=15),
            "MaxAddress": string("192.168.1.254", w=True, max_length=15),
            "ReservedAddresses": string("", w=True),
            "SubnetMask": string("255.255.255.0", w=True, max_length=15),
            "DNSServers": string("192.168.1.1", w=True, max_length=64),
            "DomainName": string("home", w=True, max_length=64),
            "IPRouters": string("192.168.1.1", w=True, max_length=64),
            "DHCPLeaseTime": integer(86400, w=True, low=-1),
            "UseAllocatedWAN": string(
                "Normal", w=True, enum=("Normal", "UseAllocatedSubnet", "Passthrough")
            ),
            "AssociatedConnection": string("", w=True),
            "PassthroughLease": unsigned(600, w=True),
            "PassthroughMACAddress": string("", w=True, max_length=17),
            "AllowedMACAddresses": string("", w=True),
            "IPInterfaceNumberOfEntries": entries("IPInterface"),
            "IPInterface": Table(ip_interface, 1, writable=True, added=added_interface),
        }
    )


def _hosts() -> Obj:
    return Obj(
        {
            "HostNumberOfEntries": entries("Host"),
            "Host": Table(
                Obj(
                    {
                        "IPAddress": string(private_ip("192.168.1", 100, 199), max_length=15),
                        "AddressSource": string("DHCP", enum=("DHCP", "Static", "AutoIP")),
                        "LeaseTimeRemaining": integer(
                            lambda ctx: str(86400 - int(ctx.uptime) % 86400), low=-1
                        ),
                        "MACAddress": string(mac("host"), max_length=17),
                        "HostName": string(
                            lambda ctx: f"{ctx.rng().choice(_HOST_NAMES)}-{ctx.instance()}",
                            max_length=64,
                        ),
                        "InterfaceType": string(
                            lambda ctx: ctx.rng("if").choice(("Ethernet", "802.11")),
                            enum=("Ethernet", "USB", "802.11", "HomePNA", "HomePlug", "Other"),
                        ),
                        "Active": boolean(True),
                    }
                ),
                instances_between(1, 6),
            ),
        }
    )


def _lan_device() -> Obj:
    return Obj(
        {
            "LANEthernetInterfaceNumberOfEntries": entries("LANEthernetInterfaceConfig"),
            "LANUSBInterfaceNumberOfEntries": unsigned(0),
            "LANWLANConfigurationNumberOfEntries": entries("WLANConfiguration"),
            "LANHostConfigManagement": _host_config(),
            "LANEthernetInterfaceConfig": Table(_lan_ethernet(), 4),
            "WLANConfiguration": Table(_wlan(), 2),
            "Hosts": _hosts(),
        }
    )


def _port_mapping() -> Table:
    return Table(
        Obj(
            {
                "PortMappingEnabled": boolean(False, w=True),
                "PortMappingLeaseDuration": unsigned(0, w=True),
                "RemoteHost": string("", w=True, max_length=15),
                "ExternalPort": unsigned(0, w=True, low=0, high=65535),
                "InternalPort": unsigned(0, w=True, low=0, high=65535),
                "PortMappingProtocol": string("TCP", w=True, enum=("TCP", "UDP")),
                "InternalClient": string("", w=True, max_length=15),
                "PortMappingDescription": string("", w=True),
            }
        ),
        0,
        writable=True,
    )


_CONNECTION_STATUS = (
    "Unconfigured",
    "Connecting",
    "Authenticating",
    "Connected",
    "PendingDisconnect",
    "Disconnecting",
    "Disconnected",
)
_TRIGGERS = ("OnDemand", "AlwaysOn", "Manual")


def _connection_common(up: bool) -> dict[str, Param]:
    return {
        "Enable": boolean(up, w=True),
        "ConnectionStatus": string("Connected" if up else "Unconfigured", enum=_CONNECTION_STATUS),
        "Name": string("", w=True),
        "Uptime": unsigned(uptime(20) if up else "0", notify=Notify.CAN_DENY),
        "LastConnectionError": string("ERROR_NONE"),
        "AutoDisconnectTime": unsigned(0, w=True),
        "IdleDisconnectTime": unsigned(0, w=True),
        "WarnDisconnectDelay": unsigned(0, w=True),
        "RSIPAvailable": boolean(False),
        "NATEnabled": boolean(True, w=True),
    }


def _ip_connection(internet: bool, up: bool) -> Obj:
    address = public_ip if internet else private_ip("100.64.12", 2, 250)
    common = _connection_common(up)
    common["Name"] = string("INTERNET_R_DHCP" if internet else "MGMT_R_DHCP", w=True)
    return Obj(
        {
            **common,
            "PossibleConnectionTypes": _ro("IP_Routed,IP_Bridged"),
            "ConnectionType": string(
                "IP_Routed" if up else "Unconfigured",
                w=True,
                enum=("Unconfigured", "IP_Routed", "IP_Bridged"),
            ),
            "AddressingType": string("DHCP", w=True, enum=("DHCP", "Static")),
            "ExternalIPAddress": string(address if up else "", w=True, max_length=15),
            "SubnetMask": string("255.255.255.0" if up else "", w=True, max_length=15),
            "DefaultGateway": string(
                (lambda ctx: address(ctx).rsplit(".", 1)[0] + ".1") if up else "",
                w=True,
                max_length=15,
            ),
            "DNSEnabled": boolean(True, w=True),
            "DNSOverrideAllowed": boolean(False, w=True),
            "DNSServers": string("8.8.8.8,1.1.1.1" if up else "", w=True, max_length=64),
            "MaxMTUSize": unsigned(1500, w=True, low=1, high=1540),
            "MACAddress": string(mac("wan-ip"), w=True, max_length=17),
            "MACAddressOverride": boolean(False, w=True),
            "ConnectionTrigger": string("AlwaysOn", w=True, enum=_TRIGGERS),
            "RouteProtocolRx": string("Off", w=True, enum=("Off", "RIPv1", "RIPv2", "OSPF")),
            "PortMappingNumberOfEntries": entries("PortMapping"),
            "PortMapping": _port_mapping(),
            "Stats": _ethernet_stats("Ethernet"),
        }
    )


def _ppp_connection(up: bool) -> Obj:
    return Obj(
        {
            **_connection_common(up),
            "PossibleConnectionTypes": _ro("IP_Routed,PPPoE_Bridged"),
            "ConnectionType": string(
                "IP_Routed" if up else "Unconfigured",
                w=True,
                enum=(
                    "Unconfigured",
                    "IP_Routed",
                    "DHCP_Spoofed",
                    "PPPoE_Bridged",
                    "PPTP_Relay",
                    "L2TP_Relay",
                    "PPPoE_Relay",
                ),
            ),
            "Username": string(
                (lambda ctx: f"{ctx.device.identity.serial_number.lower()}@isp.example")
                if up
                else "",
                w=True,
                max_length=64,
            ),
            "Password": string(secret(12) if up else "", w=True, hidden=True, max_length=64),
            "PPPEncryptionProtocol": string("None", enum=("None", "MPPE")),
            "PPPCompressionProtocol": string("None", enum=("None", "Van Jacobsen", "STAC LZS")),
            "PPPAuthenticationProtocol": string("CHAP", enum=("PAP", "CHAP", "MS-CHAP")),
            "ExternalIPAddress": string(public_ip if up else "", max_length=15),
            "RemoteIPAddress": string("100.64.0.1" if up else "", max_length=15),
            "MaxMRUSize": unsigned(1492, w=True, low=1, high=1540),
            "CurrentMRUSize": unsigned(1492 if up else 0),
            "DNSEnabled": boolean(True, w=True),
            "DNSOverrideAllowed": boolean(False, w=True),
            "DNSServers": string("100.64.0.53" if up else "", w=True, max_length=64),
            "MACAddress": string(mac("wan-ppp"), w=True, max_length=17),
            "MACAddressOverride": boolean(False, w=True),
            "TransportType": string("PPPoE", enum=("PPPoA", "PPPoE", "L2TP", "PPTP")),
            "PPPoEACName": string("", w=True),
            "PPPoEServiceName": string("", w=True),
            "ConnectionTrigger": string("AlwaysOn", w=True, enum=_TRIGGERS),
            "RouteProtocolRx": string("Off", w=True, enum=("Off", "RIPv1", "RIPv2", "OSPF")),
            "PPPLCPEcho": unsigned(30),
            "PPPLCPEchoRetry": unsigned(3),
            "PortMappingNumberOfEntries": entries("PortMapping"),
            "PortMapping": _port_mapping(),
            "Stats": _ethernet_stats("Ethernet"),
        }
    )


def _connection_device(dhcp_wan: bool, factory: bool) -> Obj:
    ip_count, ppp_count = (1, 1) if factory else (0, 0)
    return Obj(
        {
            "WANIPConnectionNumberOfEntries": entries("WANIPConnection"),
            "WANPPPConnectionNumberOfEntries": entries("WANPPPConnection"),
            "WANIPConnection": Table(
                _ip_connection(internet=dhcp_wan, up=True),
                ip_count,
                writable=True,
                added=_ip_connection(internet=False, up=False),
            ),
            "WANPPPConnection": Table(
                _ppp_connection(up=not dhcp_wan),
                ppp_count,
                writable=True,
                added=_ppp_connection(up=False),
            ),
        }
    )


def _wan_device(dhcp_wan: bool) -> Obj:
    return Obj(
        {
            "WANConnectionNumberOfEntries": entries("WANConnectionDevice"),
            "WANCommonInterfaceConfig": Obj(
                {
                    "EnabledForInternet": boolean(True, w=True),
                    "WANAccessType": string("Ethernet", enum=("DSL", "Ethernet", "POTS")),
                    "Layer1UpstreamMaxBitRate": unsigned(1_000_000_000),
                    "Layer1DownstreamMaxBitRate": unsigned(1_000_000_000),
                    "PhysicalLinkStatus": string(
                        "Up", enum=("Up", "Down", "Initializing", "Unavailable")
                    ),
                    "WANAccessProvider": _ro(""),
                    "TotalBytesSent": unsigned(traffic(45_000), notify=Notify.CAN_DENY),
                    "TotalBytesReceived": unsigned(traffic(300_000), notify=Notify.CAN_DENY),
                    "TotalPacketsSent": unsigned(traffic(70), notify=Notify.CAN_DENY),
                    "TotalPacketsReceived": unsigned(traffic(240), notify=Notify.CAN_DENY),
                    "MaximumActiveConnections": unsigned(8),
                    "NumberOfActiveConnections": unsigned(1),
                }
            ),
            "WANEthernetInterfaceConfig": Obj(
                {
                    "Enable": boolean(True, w=True),
                    "Status": string("Up", enum=("Up", "NoLink", "Error", "Disabled")),
                    "MACAddress": string(mac("wan"), max_length=17),
                    "MaxBitRate": string("Auto", w=True, enum=("10", "100", "1000", "Auto")),
                    "DuplexMode": string("Auto", w=True, enum=("Half", "Full", "Auto")),
                    "Stats": _ethernet_stats(),
                }
            ),
            "WANConnectionDevice": Table(
                _connection_device(dhcp_wan, factory=True),
                1,
                writable=True,
                added=_connection_device(dhcp_wan, factory=False),
            ),
        }
    )


def _vendor() -> Obj:
    return Obj(
        {
            "RemoteAccess": Obj(
                {
                    "Enable": boolean(False, w=True),
                    "Port": unsigned(8080, w=True, low=1, high=65535),
                    "AllowedSources": string("", w=True),
                }
            ),
            "LED": Obj({"Enable": boolean(True, w=True)}),
            "FactoryResetButton": boolean(True, w=True),
        }
    )


@functools.cache
def schema(family: Family) -> Obj:
    """The InternetGatewayDevice tree of `family` (cached: templates are immutable)."""
    dhcp_wan = "dhcp-wan" in family.traits
    default_service = DEFAULT_IP_SERVICE if dhcp_wan else DEFAULT_PPP_SERVICE
    summary = (
        "InternetGatewayDevice:1.4[](Baseline:2, EthernetLAN:1, WiFiLAN:2, "
        "EthernetWAN:1, Time:2, IPPing:1)"
    )
    return Obj(
        {
            "DeviceSummary": string(summary, max_length=1024),
            "LANDeviceNumberOfEntries": entries("LANDevice"),
            "WANDeviceNumberOfEntries": entries("WANDevice"),
            "DeviceInfo": _device_info(family),
            "ManagementServer": management_server(),
            "Time": _time(),
            "Layer3Forwarding": _layer3(default_service),
            "IPPingDiagnostics": _ip_ping(),
            "LANDevice": Table(_lan_device(), 1),
            "WANDevice": Table(_wan_device(dhcp_wan), 1),
            f"{family.vendor_prefix}Config": _vendor(),
        }
    )


def inform_names(model: Reader) -> list[str]:
    """TR-098 2.4.1 Forced Inform parameters, plus the default connection's address."""
    names = [
        f"{ROOT}.DeviceSummary",
        f"{ROOT}.DeviceInfo.SpecVersion",
        f"{ROOT}.DeviceInfo.HardwareVersion",
        f"{ROOT}.DeviceInfo.SoftwareVersion",
        f"{ROOT}.DeviceInfo.ProvisioningCode",
        f"{ROOT}.ManagementServer.ConnectionRequestURL",
        f"{ROOT}.ManagementServer.ParameterKey",
    ]
    service = model.read(f"{ROOT}.Layer3Forwarding.DefaultConnectionService") or ""
    if service:
        address = service.rstrip(".") + ".ExternalIPAddress"
        if model.read(address) is not None:
            names.append(address)
    return names


PROFILE = Profile(
    name="tr098",
    root=ROOT,
    families=FAMILIES,
    schema=schema,
    inform_names=inform_names,
    default_cwmp_version=0,
)
