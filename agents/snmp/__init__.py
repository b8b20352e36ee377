"""SNMP driver of the agent: v2c through our own BER codec, v3 through pysnmp.

Importing this package registers the driver under kind "snmp" (`agents.driver.register`).
"""

from agents.snmp import driver as driver

__all__ = ["driver"]
