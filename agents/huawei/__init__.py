"""Huawei SmartAX OLTs (MA5600T/MA5800) over the SSH CLI: the CLI as data, the session, the pool."""
